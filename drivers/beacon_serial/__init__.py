"""Firefighter beacon receiver on a USB serial port.

The wire format lives in :mod:`drivers.beacon_serial.codec` (sans-I/O, shared with the
emulator in ``emulators.beacons``) and is specified in ``docs/protocols/beacon-serial.md``.
:class:`BeaconSerialDriver` (entry point ``beacon-serial``) reads it with
pyserial-asyncio-fast; importing it costs pyserial and pyserial-asyncio-fast, nothing more.
"""

from drivers.beacon_serial.driver import BeaconSerialDriver

__all__ = ["BeaconSerialDriver"]
