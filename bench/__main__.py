"""``python -m bench <name> [--json]``: run one benchmark, or ``all``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.common import emit

# ``soak`` runs for 30 minutes: only by name, never in ``all``.
EXTRA: dict[str, str] = {"soak": "bench.soak"}

BENCHES: dict[str, str] = {
    "pipeline": "bench.pipeline",
    "alarm-latency": "bench.latency",
    "drain": "bench.drain",
    "panel-to-consumer": "bench.panel_latency",
    "modbus-poll": "bench.modbus_poll",
    "footprint": "bench.footprint",
    "vs-thingsboard": "bench.vs_thingsboard",
}


def settle(pause: float = 2.0) -> None:
    """Between benchmarks: write back what the last one left dirty (``pipeline`` and
    ``drain`` leave hundreds of MB), so it is not flushed under the next one's fsyncs.
    In one `make bench`, `alarm-latency` right after `pipeline` once measured an idle p99 of
    66 ms (3.3 ms when run alone)."""
    os.sync()
    time.sleep(pause)


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench")
    p.add_argument("name", choices=[*BENCHES, *EXTRA, "all"])
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    args = p.parse_args()
    names = list(BENCHES) if args.name == "all" else [args.name]
    for i, name in enumerate(names):
        if i:
            settle()
        mod = __import__({**BENCHES, **EXTRA}[name], fromlist=["main"])
        fn: Callable[..., dict[str, Any]] = mod.main
        emit(fn(), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
