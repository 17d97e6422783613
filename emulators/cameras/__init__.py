"""The cameras emulator."""

__all__: list[str] = []
