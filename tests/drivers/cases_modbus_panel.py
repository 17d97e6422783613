"""The modbus-panel conformance case, and the harness the panel driver tests share.

The twin is :class:`~emulators.panel.emulator.PanelEmulator` over Modbus TCP on a fixed
loopback port, so a restarted emulator is found at the same address, as a panel's gateway
card that rebooted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from drivers.modbus_panel import ModbusPanelDriver
from edgesdk import driver
from emulators.panel.emulator import PanelEmulator
from tests.drivers.conformance import Twin
from tests.drivers.feed import Feed

__all__ = ["CASE", "FAST", "Feed", "eventually", "open_driver", "url_of"]

FAST: dict[str, Any] = {
    "profile": "notifier-gw",
    "loops": 2,
    "status_interval": 0.1,
    "analog_interval": 5.0,
    "timeout": 0.3,
    "retries": 1,
    "offline_after": 3,
    "backoff_min": 0.05,
    "backoff_max": 0.3,
    "heartbeat_timeout": 0,
}
"""Driver options that keep tests quick: 100 ms status polls, quick reconnects."""


def url_of(emu: PanelEmulator, transport: str) -> str:
    """The driver url reaching ``emu`` over ``tcp`` or ``rtu`` (its pty)."""
    if transport == "tcp":
        assert emu.tcp_address is not None
        host, port = emu.tcp_address
        return f"tcp://{host}:{port}"
    assert emu.rtu_path is not None
    return f"rtu://{emu.rtu_path}?baudrate=115200&parity=N"


async def eventually(check: Callable[[], bool], *, within: float = 10.0, what: str = "") -> None:
    """Wait until ``check()`` holds, polling; fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"{what or 'condition'} not met within {within}s")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def open_driver(url: str, **options: Any) -> AsyncIterator[ModbusPanelDriver]:
    """The driver built through the registry (as the gateway builds it), opened."""
    drv = driver.create("modbus-panel", {**FAST, "url": url, **options}, instance="panel1")
    assert isinstance(drv, ModbusPanelDriver)
    async with drv:
        yield drv


class _PanelCase:
    driver = "modbus-panel"
    bad_options: list[dict[str, Any]] = [
        {},
        {"url": "tcp://127.0.0.1:502"},  # no profile
        {"url": "udp://127.0.0.1:502", "profile": "notifier-gw"},
        {"url": "tcp://127.0.0.1:502", "profile": "no-such-panel"},
        {"url": "tcp://127.0.0.1:502", "profile": "notifier-gw", "units": [0]},
        {"url": "tcp://127.0.0.1:502", "profile": "notifier-gw", "status_interval": 0.01},
        {"url": "rtu:///dev/ttyUSB0?parity=X", "profile": "notifier-gw"},
        {"url": "tcp://127.0.0.1:502", "profile": "gst-compact", "loops": 3},
    ]

    @contextlib.asynccontextmanager
    async def twin(self) -> AsyncIterator[Twin]:
        def make(port: int) -> PanelEmulator:
            return PanelEmulator(units=1, tcp=("127.0.0.1", port), time_scale=1.0, seed=3)

        current = make(0)
        await current.__aenter__()
        assert current.tcp_address is not None
        host, port = current.tcp_address
        toggles = 0

        async def restart() -> None:
            nonlocal current
            await current.__aexit__(None, None, None)
            await asyncio.sleep(0.2)  # the panel's gateway card reboots
            current = make(port)
            await current.__aenter__()

        async def stimulate() -> None:
            nonlocal toggles
            toggles += 1  # a point trouble on, then off: one event each time
            current.set_point(1, 1, 4, kind="module", trouble=toggles % 2 == 1)

        try:
            yield Twin(
                options={
                    **FAST,
                    "url": f"tcp://{host}:{port}",
                    "analog_interval": 1.0,
                    "heartbeat_timeout": 10.0,
                },
                restart=restart,
                stimulate=stimulate,
                bad_command=("u1/l1/d999", "disable"),
                extra={"emulator": lambda: current},
            )
        finally:
            await current.__aexit__(None, None, None)


CASE = _PanelCase()
