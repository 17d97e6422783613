"""``alarm-latency``: from a driver yielding an event to the verified batch at a subscriber.

Two phases: **idle** (light telemetry, 100 readings/s) and **backlog** (the broker was down
while 1,000,000 readings were stored; alarms are raised while that backlog drains). The
subscriber listens to the alarm stream only, as an alarm-monitoring service would, and
verifies every batch; latency is its wall clock at verification minus the wall clock at
which the driver yielded the event (same machine, same clock).
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench.common import percentile, result
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


async def _phase(r: Rig, *, backlog: int) -> dict[str, Any]:
    from bench.source import BenchSource, SourceConfig
    from gateway import config as gwconfig
    from gateway.app import Gateway

    alarm_sub = (
        None if backlog else r.consumer("edge/v1/hq/gw1/alarm", idle=5.0, name="alarms-idle")
    )
    source = BenchSource(SourceConfig(rate=0 if backlog else 100.0, limit=backlog), instance="src")
    gw = Gateway(gwconfig.load(r.config), drivers={"src": source})
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
    for _ in range(ALARMS):
        source.alarm()
        await asyncio.sleep(1 / RATE_HZ)
    if backlog:
        await wait_until(lambda: gw.store.stats().batches["telemetry"] == 0, 120, 0.2)
        drain_s = asyncio.get_running_loop().time() - t0
    await asyncio.sleep(1.0)
    stop.set()
    await asyncio.wait_for(task, 30)
    assert alarm_sub is not None
    out = consumer_result(alarm_sub)
    stats = _stats(out["latencies"])
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
