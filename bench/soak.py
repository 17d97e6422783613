"""``soak`` (not in CI, not in ``make bench``): the pipeline at 50% of what it sustains
(100,000 readings/s: ``pipeline`` sustains 200,000 on the reference machine) for
30 minutes (``BENCH_SOAK_MINUTES`` to change). RSS growth must stay within 5% and nothing
may fail: no invalid batch, no unexplained gap, no store error.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import psutil

from bench.common import result
from bench.harness import consumer_result, rig, wait_until

RATE = 100_000


async def run(minutes: float) -> dict[str, Any]:
    from bench.source import BenchSource, SourceConfig
    from gateway import config as gwconfig
    from gateway.app import Gateway

    me = psutil.Process()
    async with rig() as r:
        sub = r.consumer("edge/v1/hq/gw1/#", idle=5.0, name="soak")
        source = BenchSource(SourceConfig(rate=RATE), instance="src")
        gw = Gateway(gwconfig.load(r.config), drivers={"src": source})
        stop = asyncio.Event()
        task = asyncio.create_task(gw.run(stop))
        await wait_until(lambda: gw.uplink.stats.connected, 30)
        await asyncio.sleep(60)  # warm up: caches, buffers, allocator
        samples: list[tuple[float, int]] = []
        end = time.time() + minutes * 60
        while time.time() < end:
            samples.append((time.time(), me.memory_info().rss))
            await asyncio.sleep(10)
        status = await gw.status()
        stop.set()
        await asyncio.wait_for(task, 60)
        out = consumer_result(sub, timeout=900)
    n = max(1, len(samples) // 6)
    first = sorted(s[1] for s in samples[:n])[n // 2]
    last = sorted(s[1] for s in samples[-n:])[n // 2]
    return {
        "minutes": minutes,
        "rss_mb_start": round(first / 2**20, 1),
        "rss_mb_end": round(last / 2**20, 1),
        "rss_growth_percent": round(100 * (last - first) / first, 2),
        "readings_verified": out["readings"],
        "invalid": out["invalid"],
        "unexplained_gaps": out["open_gaps"],
        "store_errors": status["gateway"]["store_errors"],
        "publish_errors": status["uplink"]["publish_errors"],
    }


def main() -> dict[str, Any]:
    minutes = float(os.environ.get("BENCH_SOAK_MINUTES", "30"))
    return result(
        "soak",
        asyncio.run(run(minutes)),
        {"rate_readings_per_s": RATE, "minutes": minutes, "tls": True},
        {"rss_growth_percent": "<= 5", "errors": 0},
    )
