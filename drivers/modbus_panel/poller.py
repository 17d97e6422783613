"""Polling on schedule: status and analog blocks, retries, offline units, reconnection.

Two fixed-rate loops run while a stream is consumed: status blocks every
``status_interval`` and analog blocks every ``analog_interval``. Each keeps its own
deadline and steps it by the interval (never "now + interval"), so polls do not drift; a
cycle that runs past its next deadline skips the missed slots and counts them
(``overruns``). Both share the link, whose lock interleaves their requests one by one.

A failed request is retried ``retries`` times; every attempt's fault is counted by kind.
A unit whose requests fail ``offline_after`` times in a row raises ``device-offline``
(cleared by its next answer); a heartbeat register that stops moving while reads succeed
raises ``heartbeat-stuck``. A lost link is reopened by the status loop with capped,
jittered exponential backoff; every failed attempt counts as a failure of every unit.

With ``point_scan_interval`` > 0 each unit's status blocks, and its analog blocks when the
profile has ``absent`` analog words, are read only as far as their installed points between
whole-map reads (:class:`~drivers.modbus_panel.scan.PointScan`, one per unit and map). The
analog map is read whole on its own first poll, on a new link, when its unit answers again,
every interval, and whenever the status scan read the whole status map or saw a watched
register change since the last whole analog read: a new detector shows in status first.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from drivers.modbus_panel.config import ModbusPanelConfig
from drivers.modbus_panel.profile import Block, BlockKind, PointAddress, Profile
from drivers.modbus_panel.scan import PointScan
from drivers.modbus_panel.state import UnitState
from drivers.modbus_panel.transport import (
    CrcError,
    FramingError,
    Link,
    ModbusExceptionError,
)
from edgesdk.driver import DriverState
from edgesdk.errors import ConnectionLostError, DeviceTimeoutError, EdgeError, ProtocolError
from edgesdk.model import (
    Event,
    EventKind,
    EventState,
    RawItem,
    Reading,
    ReadingBlock,
    Severity,
)

__all__ = ["COUNTERS", "Poller", "Schedule", "UnitHealth"]

COUNTERS = (
    "requests",
    "registers",
    "timeouts",
    "exceptions",
    "crc_errors",
    "framing_errors",
    "retries",
    "failures",
    "status_cycles",
    "analog_cycles",
    "full_reports",
    "overruns",
    "status_overruns",
    "analog_overruns",
    "analog_skipped",
    "events",
    "readings",
    "offline_raised",
    "units_offline",
    "heartbeat_stuck",
    "connects",
    "connect_failures",
    "disconnects",
    "commands_sent",
    "internal_errors",
)
"""Every counter the driver keeps besides the base class's (``items``, ``commands``,
``command_errors``, ``errors``) and the link's (``line_*``); all start at 0."""

log = logging.getLogger(__name__)

_QUEUE_SIZE = 10_000  # items waiting for the consumer; beyond that the pollers wait


class Schedule:
    """Fixed-rate deadlines: the next one is the previous one plus the interval."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.next = 0.0

    def start(self, now: float) -> None:
        self.next = now

    def advance(self, now: float) -> int:
        """Step past the slot just served; return how many later slots ``now`` has
        already passed (they are skipped, not run late in a burst)."""
        self.next += self.interval
        if now <= self.next:
            return 0
        missed = int((now - self.next) // self.interval) + 1
        self.next += missed * self.interval
        return missed


@dataclass(slots=True)
class UnitHealth:
    """One unit's run of failures and the trouble events it holds active."""

    failures: int = 0
    offline: Event | None = None
    probes: int = 0  # failed probes while offline
    next_probe: float = 0.0  # loop time of the next probe while offline
    stuck: Event | None = None
    error: str = ""


class Poller:
    """The polling loops of one driver instance (see the module doc).

    ``counters`` is the driver's own counter (shared, not copied); items go to ``queue``.
    ``previous`` is the poller of the driver's last open: its conditions carry over.
    """

    def __init__(
        self,
        config: ModbusPanelConfig,
        profile: Profile,
        link: Link,
        source: str,
        counters: Counter[str],
        record_error: Callable[[BaseException | str], None],
        set_state: Callable[[DriverState], None],
        *,
        previous: Poller | None = None,
        pressure: Callable[[], bool] = lambda: False,
    ) -> None:
        self.config = config
        self.profile = profile
        self.link = link
        self.source = source
        self.counters = counters
        self._record_error = record_error
        self._set_state = set_state
        self.queue: asyncio.Queue[RawItem] = asyncio.Queue(_QUEUE_SIZE)
        self._pressure = pressure  # the consumer lags: skip analog polls (status goes on)
        zone_map = config.zone_map()
        channels = profile.analog.channels if profile.analog is not None else []
        bands = config.analog_deadband
        deadbands = [bands.get(c.name, bands.get(c.quantity.value, 0.0)) for c in channels]
        self.units: dict[int, UnitState] = {}
        self.health: dict[int, UnitHealth] = {}
        self.status_blocks: dict[int, list[Block]] = {}
        self.scans: dict[int, PointScan] = {}  # which status blocks each poll reads
        self.analog_blocks: dict[int, list[Block]] = {}
        # which analog blocks each poll reads: only with a scan interval and a profile whose
        # analog channels have an 'absent' word (else every block, every poll, as before)
        self.analog_scans: dict[int, PointScan] = {}
        # per unit, the status scan's (scans, news) when its analog map was last read whole
        self._analog_marks: dict[int, tuple[int, int]] = {}
        trim_analog = config.point_scan_interval > 0 and profile.trimmable(BlockKind.ANALOG)
        for unit in config.units:
            zones: dict[PointAddress, int] = {p: z for (u, p), z in zone_map.items() if u == 0}
            zones.update({p: z for (u, p), z in zone_map.items() if u == unit})
            self.units[unit] = UnitState(
                unit,
                profile,
                source,
                zones=zones,
                deadbands=deadbands,
                every_poll=config.analog_every_poll,
            )
            self.health[unit] = UnitHealth()
            loops = config.loops_for(unit, profile)
            size = config.max_registers
            self.status_blocks[unit] = profile.read_blocks(size, kind=BlockKind.STATUS, loops=loops)
            self.scans[unit] = PointScan(
                profile, self.status_blocks[unit], config.point_scan_interval
            )
            self.analog_blocks[unit] = profile.read_blocks(size, kind=BlockKind.ANALOG, loops=loops)
            if trim_analog and self.analog_blocks[unit]:
                self.analog_scans[unit] = PointScan(
                    profile, self.analog_blocks[unit], config.point_scan_interval
                )
        if previous is not None:
            # the same driver opened again: what it reported stays reported (and items
            # not consumed yet stay queued)
            self.units, self.health, self.queue = previous.units, previous.health, previous.queue
        self._attempts = 0  # failed connects since the link was lost
        self._lost_generation = 0  # the link generation whose loss was counted last
        self._jitter = random.Random()

    @property
    def has_analog(self) -> bool:
        return any(self.analog_blocks.values()) or self.profile.panel.heartbeat is not None

    # -- the loops ----------------------------------------------------------------------
    async def run_status(self) -> None:
        loop = asyncio.get_running_loop()
        schedule = Schedule(self.config.status_interval)
        schedule.start(loop.time())
        self._restart(loop.time())
        while True:
            if not self.link.connected:
                try:
                    await self._lost("connection closed")
                    reconnected = await self._reconnect()
                except Exception as exc:  # a bug must not stop the polling: count, go on
                    self._internal(exc)
                    await asyncio.sleep(self.config.backoff_min)
                    reconnected = False
                if reconnected:
                    schedule.start(loop.time())  # read the whole state at once
                    self._restart(loop.time())
                continue
            try:
                await self._status_cycle()
            except Exception as exc:  # a bug must not stop the polling: count, go on
                self._internal(exc)
            missed = schedule.advance(loop.time())
            if missed:
                self.counters["status_overruns"] += missed
                self.counters["overruns"] += missed
            delay = schedule.next - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)

    async def run_analog(self) -> None:
        loop = asyncio.get_running_loop()
        schedule = Schedule(self.config.analog_interval)
        schedule.start(loop.time())
        full = Schedule(self.config.full_report_interval)
        full.start(loop.time() + self.config.full_report_interval)
        while True:
            if self._pressure():
                self.counters["analog_skipped"] += 1  # telemetry only; status polls go on
            elif self.link.connected:
                try:
                    await self._analog_cycle()
                    if loop.time() >= full.next:
                        full.advance(loop.time())
                        await self._full_report()
                except Exception as exc:  # a bug must not stop the polling: count, go on
                    self._internal(exc)
            missed = schedule.advance(loop.time())
            if missed:
                self.counters["analog_overruns"] += missed
                self.counters["overruns"] += missed
            delay = schedule.next - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)

    def _internal(self, exc: Exception) -> None:
        self.counters["internal_errors"] += 1
        self._record_error(exc)
        log.error("%s: polling cycle failed", self.source, exc_info=exc)

    async def _full_report(self) -> None:
        self.counters["full_reports"] += 1
        wall = time.time()
        for unit, state in self.units.items():
            if self.health[unit].offline is not None:
                continue  # its last values are stale: report them when it answers again
            for item in state.full_report(wall):
                await self._emit(item)

    async def _status_cycle(self) -> None:
        loop = asyncio.get_running_loop()
        self.counters["status_cycles"] += 1
        timeout = self.config.heartbeat_timeout
        for unit, state in self.units.items():
            health = self.health[unit]
            probing = health.offline is not None
            if probing and loop.time() < health.next_probe:
                continue  # an offline unit is only probed now and then (see _probe_later)
            scan = self.scans[unit]
            blocks = scan.plan(loop.time(), self.link.generation, whole=probing)
            done = await self._read_status(unit, state, blocks, probing)
            if done and scan.changed:  # the panel shows news: read the rest of the map now
                done = await self._read_status(unit, state, scan.rest(), False)
            if done:
                scan.done(loop.time(), self.link.generation)
                if timeout and state.heartbeat is not None:
                    await self._check_heartbeat(unit, state, loop.time() - state.heartbeat_since)
            if not self.link.connected:
                return

    async def _read_status(
        self, unit: int, state: UnitState, blocks: list[Block], probing: bool
    ) -> bool:
        """Read status ``blocks`` of ``unit`` and emit what changed; False when a read
        failed (the rest of the unit waits for the next poll)."""
        loop = asyncio.get_running_loop()
        health, scan = self.health[unit], self.scans[unit]
        for block in blocks:
            words = await self.read(unit, block, retry=not probing)
            if words is None:
                if health.offline is not None:
                    self._probe_later(health)
                return False
            probing = False
            scan.note(block, words)
            items = state.status_block(block, words, loop.time(), time.time())
            for item in items:
                await self._emit(item)
        return True

    def _probe_later(self, health: UnitHealth) -> None:
        """An offline unit gets one attempt (no retries) per backoff interval, doubling
        from backoff_min to backoff_max: a dead panel must not hold a shared line for
        (retries + 1) timeouts every cycle while the others wait."""
        health.next_probe = asyncio.get_running_loop().time() + self._backoff(health.probes)
        health.probes += 1

    def _backoff(self, attempts: int) -> float:
        """Exponential from backoff_min, capped at backoff_max, jittered to 50-100%."""
        cfg = self.config
        ceiling = min(cfg.backoff_max, cfg.backoff_min * 2.0 ** min(attempts, 32))
        return self._jitter.uniform(ceiling / 2.0, ceiling)

    async def _analog_cycle(self) -> None:
        self.counters["analog_cycles"] += 1
        for unit, state in self.units.items():
            if self.health[unit].offline is not None:
                self._analog_marks.pop(unit, None)  # read its analog map whole once back
                continue  # the status loop probes it
            scan = self.analog_scans.get(unit)
            if scan is None:
                await self._read_analog(unit, state, self.analog_blocks[unit], None)
            else:
                await self._scan_analog(unit, state, scan)
            if not self.link.connected:
                return

    async def _scan_analog(self, unit: int, state: UnitState, scan: PointScan) -> None:
        """One analog poll of ``unit`` through its scan: the whole analog map when the
        scan is due or the status scan has read the whole status map or seen news since
        the last whole analog read, else the installed part."""
        loop = asyncio.get_running_loop()
        status = self.scans[unit]
        mark = (status.scans, status.news)
        whole = self._analog_marks.get(unit) != mark
        blocks = scan.plan(loop.time(), self.link.generation, whole=whole)
        if await self._read_analog(unit, state, blocks, scan):
            scans = scan.scans
            scan.done(loop.time(), self.link.generation)
            if scan.scans != scans:  # that poll read the whole analog map
                self._analog_marks[unit] = mark

    async def _read_analog(
        self, unit: int, state: UnitState, blocks: list[Block], scan: PointScan | None
    ) -> bool:
        """Read analog ``blocks`` of ``unit`` and emit the readings; False when a read
        failed (the rest of the unit waits for the next poll)."""
        for block in blocks:
            words = await self.read(unit, block)
            if words is None:
                return False
            if scan is not None:
                scan.note(block, words)
            for item in state.analog_block(block, words, time.time()):
                await self._emit(item)
        return True

    # -- one request, with retries ------------------------------------------------------
    async def read(self, unit: int, block: Block, *, retry: bool = True) -> array[int] | None:
        """The block's words, or None after every attempt failed (counted, reported)."""
        cfg, counters = self.config, self.counters
        error: EdgeError | None = None
        for attempt in range(cfg.retries + 1 if retry else 1):
            if attempt:
                counters["retries"] += 1
            counters["requests"] += 1
            try:
                words = await self.link.read(
                    block.function, block.address, block.count, unit, cfg.timeout
                )
            except DeviceTimeoutError as exc:
                counters["timeouts"] += 1
                error = exc
            except ModbusExceptionError as exc:
                counters["exceptions"] += 1
                error = exc
            except CrcError as exc:
                counters["crc_errors"] += 1
                error = exc
            except (FramingError, ProtocolError) as exc:
                counters["framing_errors"] += 1
                error = exc
            except ConnectionLostError as exc:
                await self._lost(exc)
                return None
            else:
                counters["registers"] += block.count
                health = self.health[unit]
                if health.failures:
                    await self._answered(unit, health)
                return words
            self._record_error(error)
        assert error is not None
        await self._failed(unit, error)
        return None

    # -- faults -------------------------------------------------------------------------
    async def _failed(self, unit: int, error: BaseException | str) -> None:
        health = self.health[unit]
        health.failures += 1
        health.error = str(error)
        self.counters["failures"] += 1
        if health.failures >= self.config.offline_after and health.offline is None:
            self.counters["offline_raised"] += 1
            health.offline = Event(
                kind=EventKind.DEVICE_OFFLINE,
                severity=Severity.TROUBLE,
                state=EventState.ACTIVE,
                source=self.source,
                data={"unit": unit, "failures": health.failures, "error": health.error},
            )
            await self._emit(health.offline)
        self._update_state()

    async def _answered(self, unit: int, health: UnitHealth) -> None:
        health.failures = health.probes = 0
        offline, health.offline = health.offline, None
        if offline is not None:
            await self._emit(offline.with_state(EventState.CLEARED))
        self._update_state()

    async def _check_heartbeat(self, unit: int, state: UnitState, age: float) -> None:
        health = self.health[unit]
        if age >= self.config.heartbeat_timeout and health.stuck is None:
            self.counters["heartbeat_stuck"] += 1
            self._record_error(f"unit {unit}: heartbeat stuck at {state.heartbeat} for {age:.1f}s")
            health.stuck = Event(
                kind=EventKind.HEARTBEAT_STUCK,
                severity=Severity.TROUBLE,
                state=EventState.ACTIVE,
                source=self.source,
                data={"unit": unit, "heartbeat": state.heartbeat, "seconds": round(age, 1)},
            )
            await self._emit(health.stuck)
            self._update_state()
        elif age < self.config.heartbeat_timeout and health.stuck is not None:
            stuck, health.stuck = health.stuck, None
            await self._emit(stuck.with_state(EventState.CLEARED))
            self._update_state()

    def _restart(self, now: float) -> None:
        """Polling (re)starts: read every unit at once, give each heartbeat a full
        timeout to move again."""
        for state in self.units.values():
            state.heartbeat_since = now
        for health in self.health.values():
            health.next_probe = 0.0

    async def _lost(self, error: BaseException | str) -> None:
        """The link failed (under a request, or closed by the peer): close it, count one
        disconnect and one failure per unit, once per connection; the status loop
        reopens it."""
        self.link.close()
        if self._lost_generation == self.link.generation:
            return  # this connection's loss is counted already (or it never opened)
        self._lost_generation = self.link.generation
        self.counters["disconnects"] += 1
        self._record_error(error)
        self._attempts = 0
        self._set_state(DriverState.OFFLINE)
        for unit in self.units:
            await self._failed(unit, error)

    async def _reconnect(self) -> bool:
        """Wait out the backoff, try once; a failure counts against every unit."""
        await asyncio.sleep(self._backoff(self._attempts))
        try:
            if await self.link.connect():
                self.counters["connects"] += 1
        except ConnectionLostError as exc:
            self._attempts += 1
            self.counters["connect_failures"] += 1
            self._record_error(exc)
            for unit in self.units:
                await self._failed(unit, exc)
            return False
        self._attempts = 0
        self._update_state()
        return True

    def _update_state(self) -> None:
        offline = sum(1 for h in self.health.values() if h.offline is not None)
        self.counters["units_offline"] = offline
        if not self.link.connected or offline == len(self.health):
            self._set_state(DriverState.OFFLINE)
        elif offline or any(h.failures or h.stuck is not None for h in self.health.values()):
            self._set_state(DriverState.DEGRADED)
        else:
            self._set_state(DriverState.ONLINE)

    async def _emit(self, item: RawItem) -> None:
        if type(item) is ReadingBlock:
            self.counters["readings"] += len(item.values)
        else:
            self.counters["readings" if isinstance(item, Reading) else "events"] += 1
        await self.queue.put(item)
