"""``drain``: readings/s delivered after a broker outage left 1,000,000 readings stored.

The broker is stopped, a source seals 1,000,000 readings into the store, the broker comes
back; we time from the reconnect to the telemetry lane being empty (every batch acked by
the broker) and, separately, to the consumer having verified all of them.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.common import result
from bench.harness import consumer_result, rig, wait_until

BACKLOG = 1_000_000


async def run() -> dict[str, Any]:
    from bench.source import BenchSource, SourceConfig
    from gateway import config as gwconfig
    from gateway.app import Gateway

    async with rig() as r:
        source = BenchSource(SourceConfig(rate=0, limit=BACKLOG), instance="src")
        gw = Gateway(gwconfig.load(r.config), drivers={"src": source})
        stop = asyncio.Event()
        r.broker.stop()
        task = asyncio.create_task(gw.run(stop))
        await wait_until(lambda: gw.counters.readings_sealed >= BACKLOG, 180, 0.1)
        stored = gw.store.stats()
        size = stored.bytes["telemetry"]
        path = gw.store.path
        wal = path.with_name(path.name + "-wal")
        db_bytes = path.stat().st_size
        wal_bytes = wal.stat().st_size if wal.exists() else 0
        on_disk = db_bytes + wal_bytes
        r.broker.start()
        sub = r.consumer("edge/v1/hq/gw1/telemetry", idle=3.0, name="drain")
        await wait_until(lambda: gw.uplink.stats.connected, 30)
        t0 = time.time()
        await wait_until(lambda: gw.store.stats().batches["telemetry"] == 0, 300, 0.1)
        acked_s = time.time() - t0
        stop.set()
        await asyncio.wait_for(task, 30)
        out = consumer_result(sub)
    verified_s = (out["last"] - t0) if out["last"] else float("nan")
    return {
        "stored_readings": BACKLOG,
        "stored_batches": stored.batches["telemetry"],
        "stored_message_bytes": size,
        "store_file_bytes": on_disk,
        "store_db_bytes": db_bytes,
        "store_wal_bytes": wal_bytes,
        "disk_bytes_per_reading": round(on_disk / BACKLOG, 1),
        "acked_in_s": round(acked_s, 2),
        "delivered_readings_per_s": round(BACKLOG / acked_s),
        "verified_readings": out["readings"],
        "verified_in_s": round(verified_s, 2),
        "verified_readings_per_s": round(out["readings"] / verified_s) if verified_s else 0,
        "unexplained_gaps": out["open_gaps"],
    }


def main() -> dict[str, Any]:
    return result(
        "drain",
        asyncio.run(run()),
        {"backlog_readings": BACKLOG, "batch": 500, "tls": True, "qos": 1, "inflight": 32},
        {"delivered_readings_per_s": ">= 100000"},
    )
