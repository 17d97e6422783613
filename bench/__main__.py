"""``python -m bench <name> [--json]``: run one benchmark, or ``all``."""

from __future__ import annotations

import argparse
import sys
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


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench")
    p.add_argument("name", choices=[*BENCHES, *EXTRA, "all"])
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    args = p.parse_args()
    names = list(BENCHES) if args.name == "all" else [args.name]
    for name in names:
        mod = __import__({**BENCHES, **EXTRA}[name], fromlist=["main"])
        fn: Callable[..., dict[str, Any]] = mod.main
        emit(fn(), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
