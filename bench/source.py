"""A synthetic driver for benchmarks: readings at a set rate (or flat out), alarms on demand.

It is a real :class:`edgesdk.driver.Driver`, so what it yields takes the gateway's real
path: intake, rules, lanes, sealing, store, uplink.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from edgesdk import driver
from edgesdk.config import Field
from edgesdk.model import Event, EventState, Item, Reading, Severity


class SourceConfig(driver.DriverConfig):
    rate: float = Field(
        default=0.0, ge=0, description="readings per second; 0 = as fast as possible"
    )
    points: int = Field(default=200, ge=1, description="distinct reading names")
    limit: int = Field(default=0, ge=0, description="stop after this many readings (0 = no limit)")


class BenchSource(driver.Driver[SourceConfig]):
    name = "bench-source"
    config_type = SourceConfig

    def __init__(self, config: SourceConfig, *, instance: str | None = None) -> None:
        super().__init__(config, instance=instance)
        self.alarms: asyncio.Queue[Event] = asyncio.Queue()
        self.produced = 0
        self._names = [f"u1/l1/d{i:03d}/smoke" for i in range(config.points)]

    async def _open(self) -> None:
        pass

    async def _close(self) -> None:
        pass

    def alarm(self) -> None:
        """Queue an alarm stamped with the wall time it is yielded at (data.sent)."""
        self.alarms.put_nowait(
            Event("fire", Severity.FIRE, EventState.ACTIVE, self.instance, data={"zone": 1})
        )

    async def _stream(self) -> AsyncIterator[Item]:
        names = self._names
        n_names = len(names)
        device = self.instance
        rate = self.config.rate
        limit = self.config.limit
        chunk = 1000 if rate == 0 else max(1, int(rate / 100))  # 10 ms worth
        start = time.perf_counter()
        i = 0
        while not limit or i < limit:
            while not self.alarms.empty():
                ev = self.alarms.get_nowait()
                yield Event(
                    ev.kind,
                    ev.severity,
                    ev.state,
                    ev.source,
                    data={**ev.data, "sent": time.time()},
                    id=ev.id,
                )
            now = time.time()
            for _ in range(chunk):
                yield Reading(device, names[i % n_names], float(i % 1000) * 0.01, "%/m", now)
                i += 1
            self.produced = i
            if rate:
                due = start + i / rate
                delay = due - time.perf_counter()
                await asyncio.sleep(max(0.0, delay))
            else:
                await asyncio.sleep(0)
        while True:  # limit reached: keep serving alarms
            ev = await self.alarms.get()
            yield Event(
                ev.kind,
                ev.severity,
                ev.state,
                ev.source,
                data={**ev.data, "sent": time.time()},
                id=ev.id,
            )
