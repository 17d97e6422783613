"""The beacon-serial conformance case, and the harness the beacon driver tests share.

The twin is :class:`~emulators.beacons.emulator.BeaconEmulator` on a real pty behind a
stable symlink (``link``), so a restarted emulator is found at the same path, as a udev
``/dev/serial/by-id`` link finds a replugged receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from drivers.beacon_serial import BeaconSerialDriver
from drivers.beacon_serial.codec import Telemetry, TelemetryFlags
from edgesdk import driver
from edgesdk.driver import DriverState
from emulators.beacons.emulator import BeaconEmulator
from tests.drivers.conformance import Twin
from tests.drivers.feed import Feed

__all__ = ["CASE", "FAST", "Feed", "eventually", "open_driver", "state", "tele"]

FAST: dict[str, Any] = {"reconnect_min": 0.05, "reconnect_max": 0.3}
"""Driver options that keep reconnection quick in tests."""


NO_FLAGS = TelemetryFlags(0)


def tele(flags: TelemetryFlags = NO_FLAGS, **kw: object) -> Telemetry:
    """A firefighter's telemetry frame with plausible values; ``kw`` overrides any field."""
    values: dict[str, object] = {
        "heart_rate": 142,
        "skin_temperature": 36.55,
        "ambient_temperature": 48.2,
        "motion": 734,
        "scba_pressure": 241.3,
        "battery": 87,
        "flags": flags,
        "rssi": -67,
    }
    values.update(kw)
    return Telemetry(**values)  # type: ignore[arg-type]


async def eventually(check: Callable[[], bool], *, within: float = 10.0, what: str = "") -> None:
    """Wait until ``check()`` holds, polling; fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"{what or 'condition'} not met within {within}s")
        await asyncio.sleep(0.02)


def state(drv: BeaconSerialDriver) -> DriverState:
    """The driver's state now (a call, so a type checker does not pin it between awaits)."""
    return drv.state


@contextlib.asynccontextmanager
async def open_driver(port: str, **options: Any) -> AsyncIterator[BeaconSerialDriver]:
    """The driver built through the registry (as the gateway builds it), opened."""
    drv = driver.create("beacon-serial", {"port": port, **FAST, **options}, instance="crew")
    assert isinstance(drv, BeaconSerialDriver)
    async with drv:
        yield drv


class _BeaconCase:
    driver = "beacon-serial"
    bad_options: list[dict[str, Any]] = [
        {},
        {"port": ""},
        {"port": "/dev/ttyACM0", "baudrate": 0},
        {"port": "/dev/ttyACM0", "reconnect_min": 5.0, "reconnect_max": 1.0},
        {"port": "/dev/ttyACM0", "max_frame_length": 5},
        {"port": "/dev/ttyACM0", "silence_timeout": -1},
        {"port": "/dev/ttyACM0", "parity": "E"},
    ]

    @contextlib.asynccontextmanager
    async def twin(self) -> AsyncIterator[Twin]:
        directory = Path(tempfile.mkdtemp(prefix="edgesdk-beacons-"))
        link = directory / "receiver"

        def make() -> BeaconEmulator:
            return BeaconEmulator(crew=3, seed=11, time_scale=20, link=link)

        current = make()
        await current.__aenter__()

        async def restart() -> None:
            nonlocal current
            await current.__aexit__(None, None, None)
            await asyncio.sleep(0.2)  # the receiver is away for a moment
            current = make()
            await current.__aenter__()

        async def stimulate() -> None:
            current.press_distress(current.beacon_ids[0])

        try:
            yield Twin(
                options={"port": str(link), **FAST},
                restart=restart,
                stimulate=stimulate,
                bad_command=("no-such-point", "evacuate"),
                extra={"emulator": lambda: current},
            )
        finally:
            await current.__aexit__(None, None, None)
            shutil.rmtree(directory, ignore_errors=True)


CASE = _BeaconCase()
