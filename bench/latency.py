"""``alarm-latency``: from a driver yielding an event to the verified batch at a subscriber.

Two phases: **idle** (light telemetry, 100 readings/s) and **backlog** (the broker was down
while 1,000,000 readings were stored; alarms are raised while that backlog drains). The
subscriber listens to the alarm stream only, as an alarm-monitoring service would, and
verifies every batch; latency is its wall clock at verification minus the wall clock at
which the driver yielded the event (same machine, same clock).

Each phase also reports where the time went (``stages``), from a trace of the gateway's
signing, store thread and PUBACKs, each from the driver's yield: ``to_signed`` (intake, rules,
signing on the event loop), ``to_puback`` (the broker has it: alarms are published while
their commit runs), ``to_committed`` (durable), ``commit`` (the SQLite transaction and fsync
alone) and ``to_verified`` (the whole path), each as p50/p99/max; how many alarms the broker
acknowledged before their commit ended; and, for the slowest alarms, each stage and the
store work that ran meanwhile (``slowest``). ``disk_fsync_4k`` is the disk's own fsync
latency over the same seconds, measured beside the store by a probe thread.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from bench.common import percentile, result, timed_fsync
from bench.harness import Rig, consumer_result, rig, wait_until

ALARMS = 200
RATE_HZ = 20.0


def _stats(lat: list[float]) -> dict[str, float]:
    ms = [x * 1000 for x in lat]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(max(ms), 2) if ms else -1,
    }


class _Trace:
    """Times every call the gateway makes on its store thread, and each alarm's signing,
    PUBACK and commit. Wraps the store's methods on the instance: the calls still run."""

    def __init__(self, gw: Any) -> None:
        self.jobs: list[tuple[str, float, float]] = []  # (what, start, end) on the store thread
        self.sent: dict[str, float] = {}
        self.signed: dict[str, float] = {}
        self.commit: dict[str, tuple[float, float]] = {}
        self.batch_ids: dict[tuple[str, int], list[str]] = {}
        self.puback: dict[str, float] = {}
        store = gw.store
        for name in ("seal", "seal_unstored", "pending", "ack", "commit"):
            setattr(store, name, self._timed(name, getattr(store, name)))
        prepare = store.prepare

        def signed(req: Any) -> Any:  # on the event loop
            out = prepare(req)
            now = time.time()
            ids = [e.id for e in req.events]
            self.batch_ids[(out.stream, out.seq)] = ids
            for e in req.events:
                self.signed[e.id] = now
                if isinstance(sent := e.data.get("sent"), float):
                    self.sent[e.id] = sent
            return out

        store.prepare = signed
        gw.uplink.on_delivered = self._delivered

    def _timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kw: Any) -> Any:
            t0 = time.time()
            out = fn(*args, **kw)
            t1 = time.time()
            what = name
            if name == "seal":
                what = "seal-telemetry"
            elif name == "commit":
                what = "commit-alarm"
                for p in args[0]:
                    for i in self.batch_ids.get((p.stream, p.seq), ()):
                        self.commit.setdefault(i, (t0, t1))
            self.jobs.append((what, t0, t1))
            return out

        return run

    def _delivered(self, item: Any) -> None:
        now = time.time()
        for i in self.batch_ids.get((item.stream, item.seq), ()):
            self.puback.setdefault(i, now)

    def stages(self, ids: list[str], lat: list[float]) -> dict[str, Any]:
        verified = dict(zip(ids, lat, strict=True))
        rows: dict[str, dict[str, float]] = {}
        for i, total in verified.items():
            if not all(i in d for d in (self.sent, self.signed, self.commit, self.puback)):
                continue
            sent = self.sent[i]
            c0, c1 = self.commit[i]
            rows[i] = {
                "to_signed": self.signed[i] - sent,
                "to_puback": self.puback[i] - sent,
                "commit": c1 - c0,
                "to_committed": c1 - sent,
                "to_verified": total,
            }
        names = ["to_signed", "to_puback", "commit", "to_committed", "to_verified"]
        out: dict[str, Any] = {n: _stats([r[n] for r in rows.values()]) for n in names}
        out["acked_before_commit_end"] = sum(1 for i in rows if self.puback[i] < self.commit[i][1])
        slow = sorted(rows.items(), key=lambda kv: kv[1]["to_verified"], reverse=True)[:3]
        kinds = sorted({what for what, _, _ in self.jobs})
        out["store_thread"] = {
            k: _stats([t1 - t0 for what, t0, t1 in self.jobs if what == k]) for k in kinds
        }
        out["slowest"] = [
            {
                **{n: round(r[n] * 1000, 2) for n in names},
                "store_work_meanwhile_ms": self._behind(self.sent[i], self.puback[i]),
            }
            for i, r in slow
        ]
        return out

    def _behind(self, start: float, end: float) -> dict[str, float]:
        """Store-thread time per kind of work between ``start`` and ``end``."""
        out: dict[str, float] = {}
        for what, t0, t1 in self.jobs:
            overlap = min(t1, end) - max(t0, start)
            if overlap > 0:
                out[what] = round(out.get(what, 0.0) + overlap * 1000, 2)
        return out


class _FsyncProbe:
    """The disk's own fsync latency while a phase runs: a thread appends 4 KiB to a file
    beside the store and fsyncs it, 20 times a second (bounded: it stops with the phase,
    and after ``limit`` seconds whatever happens). An alarm's commit cannot be quicker
    than this; the two side by side say whether a tail is the disk's or ours."""

    def __init__(self, directory: Any, *, period: float = 0.05, limit: float = 300.0) -> None:
        self._path = os.path.join(str(directory), "fsync-probe")
        self._period = period
        self._limit = limit
        self._stop = threading.Event()
        self.samples: list[float] = []
        self._thread = threading.Thread(target=self._run, name="fsync-probe", daemon=True)

    def __enter__(self) -> _FsyncProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        end = time.monotonic() + self._limit
        try:
            while not self._stop.is_set() and time.monotonic() < end:
                self.samples.append(timed_fsync(fd))
                self._stop.wait(self._period)
        finally:
            os.close(fd)
            os.unlink(self._path)

    def figures(self) -> dict[str, float]:
        out = _stats(self.samples)
        out["over_20_ms"] = sum(1 for x in self.samples if x > 0.020)
        return out


async def _phase(r: Rig, *, backlog: int) -> dict[str, Any]:
    from bench.source import BenchSource, SourceConfig
    from gateway import config as gwconfig
    from gateway.app import Gateway

    alarm_sub = (
        None if backlog else r.consumer("edge/v1/hq/gw1/alarm", idle=5.0, name="alarms-idle")
    )
    source = BenchSource(SourceConfig(rate=0 if backlog else 100.0, limit=backlog), instance="src")
    gw = Gateway(gwconfig.load(r.config), drivers={"src": source})
    trace = _Trace(gw)
    stop = asyncio.Event()
    if backlog:
        r.broker.stop()
    task = asyncio.create_task(gw.run(stop))
    drain_s = None
    if backlog:
        await wait_until(lambda: source.produced >= backlog, 120)
        await wait_until(lambda: gw.counters.readings_sealed >= backlog, 60)
        r.broker.start()
        alarm_sub = r.consumer("edge/v1/hq/gw1/alarm", idle=5.0, name="alarms-backlog")
        await wait_until(lambda: gw.uplink.stats.connected, 30)
    else:
        await wait_until(lambda: gw.uplink.stats.connected, 30)
        await asyncio.sleep(1.0)
    t0 = asyncio.get_running_loop().time()
    with _FsyncProbe(r.tmp) as probe:
        for _ in range(ALARMS):
            source.alarm()
            await asyncio.sleep(1 / RATE_HZ)
    if backlog:
        # counters, not a query: a store query from this thread would hold the SQLite
        # connection the store thread needs for the next alarm's commit
        await wait_until(
            lambda: (
                gw.uplink.stats.published_by_lane.get("telemetry", 0)
                >= gw.counters.batches_sealed.get("telemetry", 0)
            ),
            120,
            0.2,
        )
        drain_s = asyncio.get_running_loop().time() - t0
    await asyncio.sleep(1.0)
    stop.set()
    await asyncio.wait_for(task, 30)
    assert alarm_sub is not None
    out = consumer_result(alarm_sub)
    stats: dict[str, Any] = {**_stats(out["latencies"])}
    stats["stages"] = trace.stages(out["latency_ids"], out["latencies"])
    stats["disk_fsync_4k"] = probe.figures()
    stats["alarms_sent"] = ALARMS
    stats["alarms_verified"] = out["events"]
    if drain_s is not None:
        stats["backlog_readings"] = backlog
        stats["backlog_drain_s"] = round(drain_s, 2)
    return stats


async def run() -> dict[str, Any]:
    async with rig() as r:
        idle = await _phase(r, backlog=0)
    async with rig() as r:
        loaded = await _phase(r, backlog=1_000_000)
    return {"idle": idle, "backlog": loaded}


def main() -> dict[str, Any]:
    figures = asyncio.run(run())
    return result(
        "alarm-latency",
        figures,
        {
            "alarms": ALARMS,
            "alarm_rate_hz": RATE_HZ,
            "idle_telemetry_per_s": 100,
            "backlog_readings": 1_000_000,
            "tls": True,
            "qos": 1,
            "fsync": "WAL synchronous=FULL",
            "subscriber": "alarm stream only, verifying",
        },
        {"idle_p99_ms": "<= 20", "backlog_p99_ms": "<= 50"},
    )
