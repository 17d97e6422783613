"""``panel-to-consumer``: from the panel emulator setting a point to fire to the verified
``fire`` event at a consumer, with the driver polling status every 100 ms.

The emulator runs in this process beside the gateway (over real Modbus TCP); the consumer
runs in its own process and records when each verified event arrives. Trials are spread at
random phases against the poll cycle.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from bench.common import percentile, result
from bench.harness import consumer_result, rig, wait_until

TRIALS = 60
POLL = 0.1


async def run() -> dict[str, Any]:
    from emulators.panel.emulator import PanelEmulator
    from gateway import config as gwconfig
    from gateway.app import Gateway

    rng = random.Random(7)
    async with PanelEmulator(scenario="quiet", seed=1, loops=1, detectors=20, modules=0) as emu:
        host, port = emu.tcp_address or ("", 0)
        devices = f"""
[devices.panel1]
driver = "modbus-panel"
[devices.panel1.options]
url = "tcp://{host}:{port}"
profile = "notifier-gw"
loops = 1
status_interval = {POLL}
"""
        async with rig(max_age=0.5, extra=devices) as r:
            sub = r.consumer("edge/v1/hq/gw1/alarm", idle=3.0, name="panel-latency", arrivals=True)
            gw = Gateway(gwconfig.load(r.config))
            stop = asyncio.Event()
            task = asyncio.create_task(gw.run(stop))
            await wait_until(lambda: gw.uplink.stats.connected, 30)
            await asyncio.sleep(2.0)
            sets: list[tuple[str, float]] = []
            for k in range(TRIALS):
                point = k % 20 + 1
                await asyncio.sleep(rng.uniform(0.0, POLL))
                emu.set_point(1, 1, point, alarm="fire")
                sets.append((f"d{point:03d}", time.time()))
                await asyncio.sleep(0.5)
                emu.set_point(1, 1, point, alarm="none")
                emu.command(1, "reset")
                await asyncio.sleep(0.3)
            await asyncio.sleep(1.0)
            stop.set()
            await asyncio.wait_for(task, 30)
            out = consumer_result(sub)
    arrivals: dict[str, list[float]] = {}
    for kind, state, point, t in out["arrivals"]:
        if kind == "fire" and state == "active":
            arrivals.setdefault(point, []).append(t)
    lat: list[float] = []
    used: dict[str, int] = {}
    for point, t_set in sets:
        i = used.get(point, 0)
        times = [t for t in arrivals.get(point, []) if t >= t_set]
        if times:
            lat.append(min(times) - t_set)
            used[point] = i + 1
    ms = [x * 1000 for x in lat]
    return {
        "trials": TRIALS,
        "verified": len(ms),
        "p50_ms": round(percentile(ms, 50), 1),
        "p99_ms": round(percentile(ms, 99), 1),
        "max_ms": round(max(ms), 1) if ms else -1,
    }


def main() -> dict[str, Any]:
    return result(
        "panel-to-consumer",
        asyncio.run(run()),
        {
            "status_interval_s": POLL,
            "transport": "Modbus TCP",
            "profile": "notifier-gw",
            "tls": True,
            "qos": 1,
        },
        {"p99_ms": f"<= {POLL * 1000 + 50:.0f} (poll interval + 50 ms)"},
    )
