"""The panel emulator."""

__all__: list[str] = []
