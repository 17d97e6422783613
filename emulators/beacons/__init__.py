"""The beacons emulator."""

__all__: list[str] = []
