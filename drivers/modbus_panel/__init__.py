"""Fire alarm control panels over Modbus TCP and RTU.

The register maps (profiles) and their sans-I/O codec live in :mod:`drivers.modbus_panel.profile`;
the emulator (``emulators.panel``) and the driver share them, so a register layout has one
source of truth. :class:`ModbusPanelDriver` (entry point ``modbus-panel``) polls panels with
pymodbus' async clients; importing this package loads pymodbus.
"""

from drivers.modbus_panel.driver import ModbusPanelDriver

__all__ = ["ModbusPanelDriver"]
