"""The resident gateway process: ``python -m gateway --config gateway.toml``.

``edgectl gateway run`` checks its options and replaces itself (``exec``, same PID, so
systemd's ``NotifyAccess=main`` and signals still reach it) with this entry point. The
process that then runs for months carries only what the gateway needs: not typer, click,
rich or the other commands (1.6 MB of RSS on the footprint benchmark). Its three options
are read with the standard library's ``argparse``, a well-kept parser that costs nothing
extra to import.

Exit status: 0 after SIGTERM/SIGINT (sealing and committing on the way out), 2 on a config
or start-up error (printed as ``error: ...`` on stderr, naming the file, key and fix).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

__all__ = ["main", "parse_args"]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    from gateway.logs import LEVELS

    parser = argparse.ArgumentParser(
        prog="python -m gateway",
        description="Run the gateway until SIGTERM/SIGINT (use `edgectl gateway run`).",
    )
    parser.add_argument("--config", "-c", required=True, help="gateway.toml")
    parser.add_argument("--log-level", default="info", choices=LEVELS)
    parser.add_argument("--log-format", default="text", choices=("text", "json"))
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the gateway; the exit status."""
    args = parse_args(argv)
    from edgesdk.errors import EdgeError
    from gateway import config as gwconfig
    from gateway.logs import setup_logging

    setup_logging(args.log_level, args.log_format)
    try:
        cfg = gwconfig.load(args.config)
    except EdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    async def run() -> None:
        from gateway.app import Gateway

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await Gateway(cfg).run(stop)

    try:
        asyncio.run(run())
    except EdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
