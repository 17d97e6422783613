"""A verifying subscriber in its own process: every batch is verified and counted.

Prints one JSON object when it stops (SIGTERM, or ``--idle`` seconds with nothing new
after the first message).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.verified import add_arguments, verified  # noqa: E402
from edgesdk.verify import StreamTracker  # noqa: E402


async def main(args: argparse.Namespace) -> dict[str, object]:
    tracker = StreamTracker()
    seen: set[tuple[str, int]] = set()
    stats = {"connects": 0, "invalid": 0, "duplicates": 0}
    counts = {"batches": 0, "readings": 0, "events": 0}
    per_second: dict[int, int] = {}
    latencies: list[float] = []
    latency_ids: list[str] = []  # the event each latency is for
    first = last = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    arrivals: list[list[object]] = []
    anomalies: dict[str, int] = {}

    async def consume() -> None:
        nonlocal first, last
        async for now, b, found in verified(args, stats, tracker, seen, reconnect=False):
            for a in found:
                anomalies[type(a).__name__] = anomalies.get(type(a).__name__, 0) + 1
            first = first or now
            last = now
            counts["batches"] += 1
            counts["readings"] += len(b.readings)
            counts["events"] += len(b.events)
            sec = int(now)
            per_second[sec] = per_second.get(sec, 0) + len(b.readings)
            for e in b.events:
                sent = e.data.get("sent")
                if isinstance(sent, float):
                    latencies.append(now - sent)
                    latency_ids.append(e.id)
                if args.arrivals:
                    arrivals.append([e.kind, e.state.value, str(e.data.get("point")), now])

    task = asyncio.create_task(consume())
    idle_since = time.time()
    while not stop.is_set() and not task.done():
        await asyncio.sleep(0.1)
        if last is not None and args.idle and time.time() - last > args.idle:
            break
        if last is None and time.time() - idle_since > args.start_timeout:
            break
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
    gaps = tracker.finish()
    return {
        **counts,
        "invalid": stats["invalid"],
        "duplicates": stats["duplicates"],
        "first": first,
        "last": last,
        "per_second": per_second,
        "latencies": latencies,
        "latency_ids": latency_ids,
        "arrivals": arrivals,
        "anomalies": anomalies,
        "open_gaps": len([g for g in gaps if not g.accounted]),
        "gap_ranges": [[g.key[2], g.first, g.last] for g in gaps if not g.accounted][:20],
        "max_seq": max((q for _, q in seen), default=0),
    }


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    add_arguments(p, client_id="bench-consumer", tls=False)
    p.add_argument("--idle", type=float, default=0.0)
    p.add_argument("--arrivals", action="store_true", help="record every event's arrival")
    p.add_argument("--start-timeout", type=float, default=600.0)
    out = asyncio.run(main(p.parse_args()))
    print(json.dumps(out), flush=True)
