"""Emulated devices: every driver's twin, reachable the way the hardware is.

Each emulator is an ``async with`` object with a small control API, and a command
``edgectl emulate <name>`` that prints one JSON line saying where to connect.
"""

__all__: list[str] = []
