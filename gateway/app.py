"""The gateway runtime: drivers -> rules -> lanes -> sealed batches -> store -> uplink.

One asyncio loop. Readings go to the telemetry lane (sealed at ``telemetry_max_records``
or ``telemetry_max_age``); events of severity fire..trouble go to the alarm lane, signed at
once on the loop and published while their commit runs (the alarm stream is an early stream
of the store: see ``gateway/store.py``), so an alarm never waits for an fsync. The store
runs on its own single thread so fsyncs never stall the loop; batches are group-committed
when the loop produces faster than one commit at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from edgesdk import __version__
from edgesdk import driver as driver_api
from edgesdk.errors import EdgeError
from edgesdk.model import Event, EventKind, EventState, RawItem, Reading, ReadingBlock, Severity
from gateway import systemd
from gateway.config import GatewayConfig
from gateway.health import HealthServer
from gateway.identity import Identity, load_identity
from gateway.rules import RuleEngine
from gateway.store import Lane, Prepared, SealRequest, SealResult, Store, Stored
from gateway.uplink import Uplink

__all__ = ["Gateway", "GatewayCounters", "chunk_readings"]

log = logging.getLogger("edgesdk.gateway")
T = TypeVar("T")

ALARM_STREAM = "alarm"
TELEMETRY_STREAM = "telemetry"
STATE_STREAM = "state"
SNAPSHOT_STREAM = "snapshot"
# Readings buffered beyond this make the drivers wait (backpressure), bounding memory.
HIGH_WATER = 200_000
# Telemetry batches sealed but not yet published while connected: past PRESSURE_ON the
# drivers are asked to skip optional telemetry work (Driver.set_pressure) until the uplink
# is back under PRESSURE_OFF. Alarms and events are never held back; during a broker outage
# nothing is (the store buffers durably).
PRESSURE_ON = 192
PRESSURE_OFF = 48


@dataclass(slots=True)
class GatewayCounters:
    readings_in: int = 0
    events_in: int = 0
    rule_events: int = 0
    batches_sealed: dict[str, int] = field(default_factory=dict)
    readings_sealed: int = 0
    signatures: int = 0
    store_errors: int = 0
    snapshots: int = 0
    snapshots_dropped: int = 0
    pressure_episodes: int = 0
    driver_restarts: dict[str, int] = field(default_factory=dict)
    last_error: str | None = None


class Gateway:
    """The process on the box. ``await Gateway(cfg).run(stop)`` until ``stop`` is set."""

    def __init__(
        self,
        cfg: GatewayConfig,
        *,
        drivers: Mapping[str, driver_api.Driver[Any]] | None = None,
        identity: Identity | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = cfg
        self.identity = identity or load_identity(cfg.gateway)
        self._clock = clock
        self.drivers: dict[str, driver_api.Driver[Any]] = (
            dict(drivers) if drivers is not None else self._build_drivers()
        )
        self.rules = RuleEngine(
            cfg.rules,
            devices={n: d.expected_interval for n, d in cfg.devices.items() if d.enabled},
        )
        self.counters = GatewayCounters()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edgesdk-store")
        self.store = Store(
            cfg.gateway.data_dir,
            site=cfg.gateway.site,
            gw=cfg.gateway.id,
            sealer=self._sealer,
            telemetry_max_bytes=cfg.retention.telemetry_max_bytes,
            telemetry_max_age=cfg.retention.telemetry_max_age,
            min_free_bytes=cfg.retention.min_free_bytes,
            early_streams=(ALARM_STREAM,),
        )
        password = (
            cfg.uplink.key_passphrase.read() if cfg.uplink.key_passphrase is not None else None
        )
        self.uplink = Uplink(
            cfg.uplink,
            store=self.store,
            executor=self._executor,
            site=cfg.gateway.site,
            gw=cfg.gateway.id,
            birth=self._seal_birth,
            death=self._seal_death,
            key_password=password,
        )
        self._readings: list[Reading | ReadingBlock] = []
        self._buffered = 0  # readings in self._readings (a block counts its values)
        self.pressure = False
        self._info_events: list[Event] = []
        self._first_buffered: float | None = None
        self._alarms: list[tuple[Event, str | None]] = []
        # alarm batches signed, not yet committed (and whether each left early, with its
        # events), oldest first
        self._uncommitted: list[tuple[Prepared, bool, list[tuple[Event, str | None]]]] = []
        self._telemetry_due = asyncio.Event()
        self._alarm_due = asyncio.Event()
        self._commit_due = asyncio.Event()
        self._sign_lock = threading.Lock()  # the loop and the store thread both sign
        self._room = asyncio.Event()
        self._room.set()
        self._last_snapshot: dict[str, float] = {}
        self.started: float | None = None
        self.ready = asyncio.Event()
        self._last_rate_sample: tuple[float, int] | None = None
        self._seals_after_error = 0
        self.health: HealthServer | None = None

    # -- construction -------------------------------------------------------------------
    def _build_drivers(self) -> dict[str, driver_api.Driver[Any]]:
        out: dict[str, driver_api.Driver[Any]] = {}
        file = str(self.cfg.source) if self.cfg.source else None
        for name, dev in self.cfg.devices.items():
            if not dev.enabled:
                continue
            out[name] = driver_api.create(
                dev.driver,
                dev.options,
                instance=name,
                file=file,
                prefix=f"devices.{name}.options",
            )
        return out

    def _sealer(self, header: Any, **kw: Any) -> bytes:
        with self._sign_lock:
            self.counters.signatures += 1
        return self.identity.seal(header, **kw)

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # -- state stream ---------------------------------------------------------------------
    def _birth_extra(self) -> dict[str, Any]:
        return {
            "birth": {
                "version": __version__,
                "boot": self.store.boot,
                "devices": [{"name": n, "driver": d.name} for n, d in sorted(self.drivers.items())],
                "cert": self.identity.cert_der(),
                "previous_certs": self.identity.previous_der(),
                "active": [_event_summary(e) for e in self.rules.active()],
            }
        }

    async def _seal_birth(self) -> bytes:
        extra = self._birth_extra()
        return await self._db(lambda: self.store.seal_unstored(STATE_STREAM, extra=extra))

    async def _seal_death(self, reason: str) -> bytes:
        extra = {"death": {"boot": self.store.boot, "reason": reason}}
        return await self._db(lambda: self.store.seal_unstored(STATE_STREAM, extra=extra))

    # -- intake ---------------------------------------------------------------------------
    def intake(self, device: str | None, item: RawItem) -> None:
        """Take one item from a driver (or a test): rules, then the right lane."""
        now = self._clock()
        if isinstance(item, ReadingBlock):
            self._buffer(item, len(item.values), now)
            events = self.rules.feed_block(device, item, now) if device is not None else []
        else:
            if isinstance(item, Reading):
                self._buffer(item, 1, now)
            else:
                self.counters.events_in += 1
                self._route(item, device)
            events = self.rules.feed(device, item, now) if device is not None else []
        for ev in events:
            self.counters.rule_events += 1
            self._route(ev, None)

    def _buffer(self, item: Reading | ReadingBlock, n: int, now: float) -> None:
        """Buffer ``n`` readings for the telemetry lane; due to seal at the batch size,
        and the drivers wait past HIGH_WATER."""
        self.counters.readings_in += n
        if not self._readings:
            self._first_buffered = now
        self._readings.append(item)
        self._buffered += n
        if self._buffered >= self.cfg.lanes.telemetry_max_records:
            self._telemetry_due.set()
            if self._buffered >= HIGH_WATER:
                self._room.clear()

    def _route(self, event: Event, device: str | None) -> None:
        if event.severity.is_alarm_lane:
            self._alarms.append((event, device))
            self._alarm_due.set()
        else:
            self._info_events.append(event)
            if self._first_buffered is None:
                self._first_buffered = self._clock()

    # -- sealing --------------------------------------------------------------------------
    async def _alarm_sealer(self) -> None:
        while True:
            await self._alarm_due.wait()
            self._sign_alarms()

    def _sign_alarms(self) -> None:
        """Sign the waiting alarms into one batch and, when its seq is reserved and nothing
        older is held back, hand it to the uplink at once; the commit follows on the store
        thread (:meth:`_commit_alarms`). Publishing before the commit loses nothing: the
        batch is committed either way, and is sent again from the store if the early
        publish fails; a crash before the commit is covered by the reservation."""
        self._alarm_due.clear()
        if not self._alarms:
            return
        taken, self._alarms = self._alarms, []
        events = sorted((e for e, _ in taken), key=lambda e: e.severity.rank)
        try:
            prepared = self.store.prepare(SealRequest(ALARM_STREAM, Lane.ALARM, events=events))
        except EdgeError as exc:  # cannot sign (e.g. an event too large): keep, retry later
            self._alarms[:0] = taken
            self._store_failed(exc)
            return
        held = any(not sent for _, sent, _ in self._uncommitted)  # keep the stream in order
        sent = prepared.early and not held and self.uplink.publish_early(prepared)
        self._uncommitted.append((prepared, sent, taken))
        self._commit_due.set()

    async def _alarm_committer(self) -> None:
        while True:
            await self._commit_due.wait()
            if not await self._commit_alarms():
                await asyncio.sleep(0.2)
                self._commit_due.set()

    async def _commit_alarms(self) -> bool:
        """Commit the signed alarm batches (one transaction), then tell the uplink and
        the devices. False when the store refused: they stay queued, in order."""
        self._commit_due.clear()
        if not self._uncommitted:
            return True
        batch = list(self._uncommitted)
        try:
            result = await self._storing(Lane.ALARM, self.store.commit, [p for p, _, _ in batch])
        except EdgeError as exc:
            self._store_failed(exc)
            return False
        del self._uncommitted[: len(batch)]
        self._hand_over(Lane.ALARM, result)
        for _, _, taken in batch:
            for event, device in taken:  # durable now: the device may stop repeating
                drv = self.drivers.get(device or "")
                if drv is not None:
                    with contextlib.suppress(EdgeError):
                        await drv.confirm(event)
                await self._forward_snapshot(event, drv)
        return True

    async def _seal_alarms(self) -> None:
        """Sign and commit every waiting alarm (shutdown)."""
        self._sign_alarms()
        await self._commit_alarms()

    async def _telemetry_sealer(self) -> None:
        max_age = self.cfg.lanes.telemetry_max_age
        while True:
            timeout = max_age
            if self._first_buffered is not None:
                timeout = max(0.0, self._first_buffered + max_age - self._clock())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._telemetry_due.wait()
            await self._seal_telemetry()

    async def _seal_telemetry(self) -> None:
        self._telemetry_due.clear()
        if not self._readings and not self._info_events:
            self._first_buffered = None
            return
        readings, self._readings = self._readings, []
        buffered, self._buffered = self._buffered, 0
        events, self._info_events = self._info_events, []
        self._first_buffered = None
        n = self.cfg.lanes.telemetry_max_records
        requests = [
            SealRequest(TELEMETRY_STREAM, Lane.TELEMETRY, chunk)
            for chunk in chunk_readings(readings, n)
        ] or [SealRequest(TELEMETRY_STREAM, Lane.TELEMETRY)]
        if events:
            first = requests[0]
            requests[0] = SealRequest(first.stream, first.lane, first.readings, events)
        try:
            result = await self._storing(Lane.TELEMETRY, self.store.seal, requests)
        except EdgeError as exc:
            self._readings[:0] = readings
            self._buffered += buffered
            self._info_events[:0] = events
            self._first_buffered = self._clock()
            self._store_failed(exc)
            await asyncio.sleep(0.2)
            return
        finally:
            if self._buffered < HIGH_WATER:
                self._room.set()
        self._hand_over(Lane.TELEMETRY, result)

    async def _storing(self, lane: Lane, fn: Callable[..., SealResult], *args: Any) -> SealResult:
        """Run a storing job (a seal, a commit) on the store thread.

        If the caller is cancelled meanwhile (shutdown cancels the sealers), the job still
        runs to its end on the store thread; what it stored is then still counted and handed
        to the uplink. Otherwise those batches would wait in the store until the next start,
        while the batches sealed after them (at shutdown) left first: a gap at the consumers
        until then. That was the "one unexplained gap" of overloaded pipeline steps.
        """
        loop = asyncio.get_running_loop()
        job = loop.run_in_executor(self._executor, lambda: fn(*args))
        try:
            return await asyncio.shield(job)
        except asyncio.CancelledError:
            job.add_done_callback(lambda j: self._stored_late(j, lane))
            raise

    def _stored_late(self, job: asyncio.Future[SealResult], lane: Lane) -> None:
        if not job.cancelled() and job.exception() is None:
            self._hand_over(lane, job.result())

    def _hand_over(self, lane: Lane, result: SealResult) -> None:
        """What a seal or commit stored: count it, report what retention shed, and pass
        the batches to the uplink."""
        self._sealed(result.stored)
        self._shed(result.shed)
        self.uplink.notify(lane, result.stored)

    def _sealed(self, stored: list[Stored]) -> None:
        self._seals_after_error += 1
        for s in stored:
            self.counters.batches_sealed[s.stream] = (
                self.counters.batches_sealed.get(s.stream, 0) + 1
            )
            self.counters.readings_sealed += s.readings

    def _shed(self, ranges: list[Any]) -> None:
        if not ranges:
            return
        dropped = sum(r.last - r.first + 1 for r in ranges)
        log.warning("store: shed %d telemetry batches to stay within retention", dropped)
        self._route(
            Event(
                EventKind.STORE_PRESSURE,
                Severity.TROUBLE,
                EventState.ACTIVE,
                "gateway",
                data={"batches": dropped, "ranges": [[r.stream, r.first, r.last] for r in ranges]},
            ),
            None,
        )

    def _store_failed(self, exc: BaseException) -> None:
        self._seals_after_error = 0
        self.counters.store_errors += 1
        self.counters.last_error = f"store: {exc}"
        log.error("store: %s (will retry)", exc)

    async def _forward_snapshot(self, event: Event, drv: driver_api.Driver[Any] | None) -> None:
        digest = event.data.get("snapshot")
        if drv is None or not isinstance(digest, str) or event.state is not EventState.ACTIVE:
            return
        blob = drv.get_blob(digest)
        if blob is None or hashlib.sha256(blob).hexdigest() != digest:
            return
        camera = str(event.data.get("camera", event.source))
        now = self._clock()
        last = self._last_snapshot.get(camera, -1e9)
        too_soon = now - last < self.cfg.uplink.snapshot_min_interval
        if len(blob) > self.cfg.uplink.snapshot_max_bytes or too_soon:
            self.counters.snapshots_dropped += 1
            return
        self._last_snapshot[camera] = now
        extra = {
            "snapshot": {
                "sha256": digest,
                "camera": camera,
                "event": event.id,
                "content_type": "image/jpeg",
                "data": blob,
            }
        }
        try:
            result = await self._db(
                self.store.seal, [SealRequest(SNAPSHOT_STREAM, Lane.EVIDENCE, extra=extra)]
            )
        except EdgeError as exc:
            self._store_failed(exc)
            return
        self.counters.snapshots += 1
        self._hand_over(Lane.EVIDENCE, result)

    # -- drivers and rules ----------------------------------------------------------------
    async def _run_driver(self, name: str, drv: driver_api.Driver[Any]) -> None:
        """Keep one driver running; restart it with backoff if its stream ever ends."""
        attempt = 0
        while True:
            try:
                async with drv:
                    attempt = 0
                    async for item in drv.stream_blocks():
                        self.intake(name, item)
                        if not self._room.is_set():
                            await self._room.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a driver bug must not take the gateway down
                self.counters.last_error = f"{name}: {exc}"
                log.error("driver %s failed: %s; restarting", name, exc)
            self.counters.driver_restarts[name] = self.counters.driver_restarts.get(name, 0) + 1
            attempt = min(attempt + 1, 8)
            await asyncio.sleep(min(30.0, 0.5 * 2**attempt) * random.uniform(0.5, 1.0))

    async def _watchdog(self) -> None:
        interval = systemd.watchdog_interval() or 10.0
        while True:  # fed only while the loop runs: a stalled loop gets restarted
            systemd.notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    async def _pressure_watch(self) -> None:
        """Ask the drivers to skip optional telemetry work while the uplink, connected,
        falls behind (see PRESSURE_ON); let them go on once it has caught up."""
        while True:
            await asyncio.sleep(0.5)  # coarse: an idle gateway should not wake for this
            lag = self.uplink.unsent(Lane.TELEMETRY)
            if not self.pressure and lag is not None and lag >= PRESSURE_ON:
                self._set_pressure(True)
            elif self.pressure and (lag is None or lag <= PRESSURE_OFF):
                self._set_pressure(False)

    def _set_pressure(self, on: bool) -> None:
        self.pressure = on
        if on:
            self.counters.pressure_episodes += 1
            log.warning("uplink behind: drivers skip optional telemetry until it catches up")
        else:
            log.info("uplink caught up: drivers back to full telemetry")
        for drv in self.drivers.values():
            drv.set_pressure(on)

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            for ev in self.rules.tick(self._clock()):
                self.counters.rule_events += 1
                self._route(ev, None)

    # -- status ---------------------------------------------------------------------------
    async def status(self) -> dict[str, Any]:
        """Everything /healthz, /metrics and ``gateway status`` show."""
        now = self._clock()
        stats = await self._db(self.store.stats)
        drivers = {}
        for name, drv in self.drivers.items():
            h = drv.health
            drivers[name] = {
                "driver": h.driver,
                "state": h.state.value,
                "since": h.since,
                "last_error": h.last_error,
                "counters": dict(h.counters),
            }
        up = self.uplink.stats
        published = up.published
        rate = 0.0
        if self._last_rate_sample is not None:
            t0, p0 = self._last_rate_sample
            if now > t0:
                rate = (published - p0) / (now - t0)
        self._last_rate_sample = (now, published)
        lanes = {
            lane: {
                "batches": stats.batches[lane],
                "bytes": stats.bytes[lane],
                "oldest_age": (now - o) if (o := stats.oldest[lane]) is not None else None,
            }
            for lane in stats.batches
        }
        c = self.counters
        healthy = self.ready.is_set() and (c.store_errors == 0 or self._store_recovered())
        return {
            "healthy": bool(healthy),
            "time": now,
            "gateway": {
                "site": self.cfg.gateway.site,
                "id": self.cfg.gateway.id,
                "version": __version__,
                "boot": stats.boot,
                "kid": self.identity.kid.hex(),
                "uptime": now - self.started if self.started else 0.0,
                "readings_in": c.readings_in,
                "events_in": c.events_in,
                "rule_events": c.rule_events,
                "signatures": c.signatures,
                "batches_sealed": dict(c.batches_sealed),
                "readings_sealed": c.readings_sealed,
                "store_errors": c.store_errors,
                "shed_batches": stats.shed_batches,
                "shed_readings": stats.shed_readings,
                "snapshots": c.snapshots,
                "pressure": self.pressure,
                "pressure_episodes": c.pressure_episodes,
                "driver_restarts": dict(c.driver_restarts),
                "last_error": c.last_error,
            },
            "drivers": drivers,
            "lanes": lanes,
            "uplink": {
                "url": self.cfg.uplink.url,
                "connected": up.connected,
                "connects": up.connects,
                "connect_failures": up.connect_failures,
                "published": up.published,
                "published_by_lane": dict(up.published_by_lane),
                "in_flight": up.in_flight,
                "publish_errors": up.publish_errors,
                "ack_errors": up.ack_errors,
                "published_early": up.published_early,
                "last_error": up.last_error,
                "rate": rate,
            },
            "active": [_event_summary(e) for e in self.rules.active()],
        }

    def _store_recovered(self) -> bool:
        """Healthy again once a seal succeeded after the last store error."""
        return self._seals_after_error > 0

    # -- running --------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Run until ``stop`` is set (or the task is cancelled), then shut down cleanly."""
        stop = stop or asyncio.Event()
        await self._db(self.store.open)
        for r in self.store.unconfirmed:
            log.warning(
                "store: the last run stopped without closing the store; %s seqs %d..%d were "
                "reserved for publishing before their commit and none was committed: they "
                "are declared %r in a signed lost notice (any that arrived are genuine)",
                r.stream,
                r.first,
                r.last,
                r.reason,
            )
        self.started = self._clock()
        log.info(
            "gateway %s/%s starting: boot %d, kid %s, %d devices",
            self.cfg.gateway.site,
            self.cfg.gateway.id,
            self.store.boot,
            self.identity.kid.hex(),
            len(self.drivers),
        )
        core: list[asyncio.Task[None]] = []
        drivers: list[asyncio.Task[None]] = []
        uplink_task: asyncio.Task[None] | None = None
        try:
            core = [
                asyncio.create_task(self._alarm_sealer(), name="alarm-sealer"),
                asyncio.create_task(self._alarm_committer(), name="alarm-committer"),
                asyncio.create_task(self._telemetry_sealer(), name="telemetry-sealer"),
                asyncio.create_task(self._ticker(), name="rules-ticker"),
                asyncio.create_task(self._pressure_watch(), name="pressure-watch"),
            ]
            uplink_task = asyncio.create_task(self.uplink.run(), name="uplink")
            drivers = [
                asyncio.create_task(self._run_driver(n, d), name=f"driver-{n}")
                for n, d in self.drivers.items()
            ]
            if self.cfg.health.listen:
                host, _, port = self.cfg.health.listen.rpartition(":")
                self.health = HealthServer(host.strip("[]"), int(port), self.status)
                await self.health.start()
                log.info("health: http://%s:%d/healthz and /metrics", host, self.health.port)
            if systemd.watchdog_interval() is not None:
                core.append(asyncio.create_task(self._watchdog(), name="watchdog"))
            self.ready.set()
            systemd.notify("READY=1")
            waiters = [asyncio.create_task(stop.wait()), *core, uplink_task]
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            waiters[0].cancel()
            for t in done:
                if t is not waiters[0] and not t.cancelled() and t.exception() is not None:
                    raise t.exception()  # type: ignore[misc]
        finally:
            await self._shutdown(drivers, core, uplink_task)

    async def _shutdown(
        self,
        drivers: list[asyncio.Task[None]],
        core: list[asyncio.Task[None]],
        uplink_task: asyncio.Task[None] | None,
    ) -> None:
        """Stop drivers, seal what is buffered, commit, disconnect: within ~5 s."""
        log.info("gateway: shutting down")
        systemd.notify("STOPPING=1")
        if self.health is not None:
            await self.health.close()
        await _cancel(drivers, grace=2.0)
        await _cancel(core, grace=1.0)
        with contextlib.suppress(Exception):
            await self._seal_alarms()
            await self._seal_telemetry()
        if uplink_task is not None:
            self.uplink.stop()
            await _cancel([uplink_task], grace=1.5)
        with contextlib.suppress(Exception):
            await self._db(self.store.close)
        self._executor.shutdown(wait=True)
        log.info("gateway: stopped")


def chunk_readings(
    items: list[Reading | ReadingBlock], size: int
) -> list[list[Reading | ReadingBlock]]:
    """``items`` cut into batches of at most ``size`` readings, in order; a block that
    does not fit in what is left of a batch is sliced."""
    out: list[list[Reading | ReadingBlock]] = []
    chunk: list[Reading | ReadingBlock] = []
    room = size
    for item in items:
        if type(item) is not ReadingBlock:
            chunk.append(item)
            room -= 1
        else:
            start, n = 0, len(item.values)
            while n - start > room:
                if room:
                    chunk.append(item.slice(start, start + room))
                    start += room
                out.append(chunk)
                chunk, room = [], size
            if start == 0:
                chunk.append(item)
            elif start < n:
                chunk.append(item.slice(start, n))
            room -= n - start
        if room == 0:
            out.append(chunk)
            chunk, room = [], size
    if chunk:
        out.append(chunk)
    return out


async def _cancel(tasks: list[asyncio.Task[None]], *, grace: float) -> None:
    for t in tasks:
        t.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=grace)


def _event_summary(e: Event) -> dict[str, Any]:
    return {"id": e.id, "kind": e.kind, "sev": e.severity.value, "src": e.source, "t": e.time}
