"""The broker emulator."""

__all__: list[str] = []
