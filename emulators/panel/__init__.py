"""The fire alarm panel emulator: the ``modbus-panel`` driver's twin.

Panels (loops of detectors and modules, zones, panel conditions, seeded scenarios) served
as Modbus units over TCP and RTU on a pty, with register maps from the shared profiles in
``drivers/modbus_panel/profiles``. Start with :class:`~emulators.panel.emulator.PanelEmulator`;
``docs/emulators.md`` shows a test rig.

Submodules: ``model`` (the panel), ``scenarios``, ``store`` (live registers, faults,
counters), ``rtu`` (RTU on a pty), ``emulator``, ``control`` (JSON control lines), ``cli``.
They are imported on use, so ``edgectl --help`` does not load pymodbus.
"""

__all__: list[str] = []
