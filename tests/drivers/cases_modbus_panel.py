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
from edgesdk.model import Event, EventState, Item, Reading
from emulators.panel.emulator import PanelEmulator
from tests.drivers.conformance import Twin

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


class Feed:
    """Consumes ``drv.stream()`` in a task, keeping every item, until the block ends."""

    def __init__(self, drv: ModbusPanelDriver) -> None:
        self.drv = drv
        self.items: list[Item] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Feed:
        self._task = asyncio.create_task(self._pump(), name="panel-feed")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _pump(self) -> None:
        async with contextlib.aclosing(self.drv.stream()) as stream:
            async for item in stream:
                self.items.append(item)

    async def until(
        self, check: Callable[[], bool], *, within: float = 10.0, what: str = ""
    ) -> None:
        """Wait (bounded) until ``check()`` holds; fail early if the stream died."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not check():
            if self._task is not None and self._task.done():
                self._task.result()
                raise AssertionError("the stream ended")
            if loop.time() > deadline:
                raise AssertionError(
                    f"{what or 'condition'} not met within {within}s: {len(self.items)} items, "
                    f"state {self.drv.state}, counters {dict(self.drv.health.counters)}, "
                    f"events {[(e.kind, e.state.value, dict(e.data)) for e in self.events()]}"
                )
            await asyncio.sleep(0.01)

    async def event(
        self,
        kind: str,
        state: EventState = EventState.ACTIVE,
        *,
        within: float = 5.0,
        since: int = 0,
        **data: Any,
    ) -> Event:
        """The first ``kind`` event in ``state`` whose data holds ``data``, waiting for it."""
        found: list[Event] = []

        def check() -> bool:
            found[:] = self.events(kind, state, since=since, **data)
            return bool(found)

        await self.until(check, within=within, what=f"{kind} {state.value} {data}")
        return found[0]

    def events(
        self,
        kind: str | None = None,
        state: EventState | None = None,
        *,
        since: int = 0,
        **data: Any,
    ) -> list[Event]:
        return [
            i
            for i in self.items[since:]
            if isinstance(i, Event)
            and (kind is None or i.kind == kind)
            and (state is None or i.state is state)
            and all(i.data.get(k) == v for k, v in data.items())
        ]

    def readings(self, name: str | None = None, *, since: int = 0) -> list[Reading]:
        return [
            i
            for i in self.items[since:]
            if isinstance(i, Reading) and (name is None or i.name == name)
        ]


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
