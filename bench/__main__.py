"""``python -m bench <name> [--json]``: run one benchmark, or ``all``."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from bench.common import emit, timed_fsync

# ``soak`` runs for 30 minutes: only by name, never in ``all``.
EXTRA: dict[str, str] = {"soak": "bench.soak"}

# alarm-latency first: its tail is the disk's fsync tail, and the others leave the disk busy
BENCHES: dict[str, str] = {
    "alarm-latency": "bench.latency",
    "pipeline": "bench.pipeline",
    "drain": "bench.drain",
    "panel-to-consumer": "bench.panel_latency",
    "modbus-poll": "bench.modbus_poll",
    "footprint": "bench.footprint",
    "vs-thingsboard": "bench.vs_thingsboard",
}


def settle(*, quiet_ms: float = 20.0, limit: float = 30.0) -> dict[str, float]:
    """Before each benchmark of ``all``: write back what the last one left dirty
    (``pipeline`` and ``drain`` leave hundreds of MB), then wait (at most ``limit``
    seconds) until 50 fsyncs of 4 KiB in a row each take under ``quiet_ms``, so that one
    benchmark's write-back is not measured as the next one's fsync latency. In session 3's
    and 4's ``make bench``, ``alarm-latency`` right after ``pipeline`` measured an idle p99
    of 38-66 ms (3.2-5.8 ms run alone); the fsyncs of an idle machine that day reached
    611 ms. Returns how long it waited and the slowest fsync of the last probe."""
    t0 = time.monotonic()
    os.sync()
    slowest = 0.0
    with tempfile.TemporaryDirectory(prefix="edgesdk-settle-") as tmp:
        fd = os.open(os.path.join(tmp, "probe"), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while time.monotonic() - t0 < limit:
                slowest = 0.0
                for _ in range(50):
                    slowest = max(slowest, timed_fsync(fd) * 1000)
                    time.sleep(0.01)
                if slowest < quiet_ms:
                    break
        finally:
            os.close(fd)
    return {"waited_s": round(time.monotonic() - t0, 2), "last_fsync_max_ms": round(slowest, 2)}


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench")
    p.add_argument("name", choices=[*BENCHES, *EXTRA, "all"])
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    args = p.parse_args()
    names = list(BENCHES) if args.name == "all" else [args.name]
    for name in names:
        quiet = settle() if args.name == "all" else None
        mod = __import__({**BENCHES, **EXTRA}[name], fromlist=["main"])
        fn: Callable[..., dict[str, Any]] = mod.main
        out = fn()
        if quiet is not None:
            out["settle"] = quiet  # how long the disk took to quieten before it
        emit(out, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
