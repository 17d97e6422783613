"""``edgectl demo``: the whole stack on emulators, with a live dashboard."""

__all__: list[str] = []
