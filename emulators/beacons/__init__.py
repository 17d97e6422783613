"""The beacons emulator: a USB beacon receiver on a pty with a simulated crew.

``emulators.beacons.emulator.BeaconEmulator`` is the ``async with`` object;
``emulators.beacons.simulation.Simulation`` the same crew without I/O;
``emulators.beacons.physiology`` and ``emulators.beacons.faults`` the models behind them.
Nothing is imported here, so ``edgectl --help`` stays fast.
"""

__all__: list[str] = []
