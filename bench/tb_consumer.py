"""The ``vs-thingsboard`` consumer: verifies every batch and counts distinct datapoints.

Like ``bench.consumer_worker`` (its own process, QoS 1, persistent session), but it counts
what the peer harness's ``counter.py`` counts on the ThingsBoard side: **distinct
datapoints**, a datapoint being (device, reading name, reading time). A reading seen twice
counts once and as a duplicate. It also reconnects when the broker goes away (the outage
scenario), and records when each batch arrives, so the driver can measure the delivered
rate in a window, the lag, and the first delivery after the broker came back.

Per (device, time) it keeps one integer whose bits are the reading names seen (a panel's
read block shares one time), so memory grows with polls, not with datapoints.

Prints ``{"ready": true}`` once subscribed, writes ``<out>.progress`` every 0.5 s (for the
driver's "nothing new for 2 s" check) and the summary to ``--out`` when it stops (SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.verified import add_arguments, verified  # noqa: E402
from edgesdk.verify import StreamTracker  # noqa: E402

__all__ = ["Counts", "main"]


class Counts:
    """Distinct datapoints, duplicates, arrivals per second and lag samples."""

    def __init__(self) -> None:
        self.names: dict[str, int] = {}  # reading name -> bit
        self.masks: dict[tuple[str, float], int] = {}  # (device, time) -> names seen
        self.distinct = 0
        self.duplicates = 0
        self.per_second: dict[int, int] = {}
        self.lags: list[tuple[int, float]] = []  # (arrival second, arrival - reading time)
        self.arrivals: list[float] = []  # arrival of every batch with readings

    def add(self, readings: Any, now: float) -> None:
        names, masks = self.names, self.masks
        new = 0
        oldest = now
        for r in readings:
            bit = names.get(r.name)
            if bit is None:
                bit = names[r.name] = 1 << len(names)
            key = (r.device, r.time)
            mask = masks.get(key, 0)
            if mask & bit:
                self.duplicates += 1
                continue
            masks[key] = mask | bit
            new += 1
            oldest = min(oldest, r.time)
        self.distinct += new
        sec = int(now)
        self.per_second[sec] = self.per_second.get(sec, 0) + new
        if new:
            self.lags.append((sec, round(now - oldest, 4)))
            self.arrivals.append(round(now, 4))


async def _consume(args: argparse.Namespace, counts: Counts, stats: dict[str, int]) -> None:
    tracker = StreamTracker()
    seen: set[tuple[str, int]] = set()
    async for now, b, found in verified(args, stats, tracker, seen, reconnect=True):
        stats["anomalies"] += len(found)
        stats["batches"] += 1
        stats["events"] += len(b.events)
        counts.add(b.readings, now)
    # never reached: cancelled by main()


def _write(path: str, obj: dict[str, Any]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    counts = Counts()
    stats = {
        "batches": 0,
        "events": 0,
        "invalid": 0,
        "duplicates": 0,
        "anomalies": 0,
        "connects": 0,
    }
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    task = asyncio.create_task(_consume(args, counts, stats))
    deadline = loop.time() + args.limit
    while not stop.is_set() and loop.time() < deadline and not task.done():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)
        _write(args.out + ".progress", {"distinct": counts.distinct, "t": time.time()})
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
    return {
        **{k: v for k, v in stats.items() if k != "duplicates"},
        "duplicate_batches": stats["duplicates"],
        "distinct": counts.distinct,
        "duplicate_datapoints": counts.duplicates,
        "per_second": counts.per_second,
        "lags": counts.lags,
        "arrivals": counts.arrivals,
        "devices": len({d for d, _ in counts.masks}),
    }


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    add_arguments(p, client_id="tb-bench-consumer", tls=True)
    p.add_argument("--out", required=True)
    p.add_argument("--limit", type=float, default=900.0, help="exit after this many seconds")
    a = p.parse_args()
    _write(a.out, asyncio.run(main(a)))
