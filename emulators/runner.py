"""What every ``edgectl emulate`` command shares.

An emulator command builds its emulator, enters it, prints one JSON line with what to
connect to, then runs until ``--duration`` seconds pass or SIGINT/SIGTERM arrives, and
leaves cleanly (exit code 0).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager, suppress
from typing import Any, TypeVar

__all__ = ["run", "serve"]

T = TypeVar("T")


async def serve(
    emulator: AbstractAsyncContextManager[T],
    info: Callable[[T], Mapping[str, Any]],
    *,
    duration: float | None = None,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Enter ``emulator``, announce ``info(emulator)`` as one JSON line, wait, leave."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread
            pass
    try:
        async with emulator as emu:
            line = json.dumps(dict(info(emu)), sort_keys=True)
            if ready is not None:
                ready(line)
            else:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=duration)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def run(
    emulator: AbstractAsyncContextManager[T],
    info: Callable[[T], Mapping[str, Any]],
    *,
    duration: float | None = None,
) -> None:
    """Run :func:`serve` in a fresh event loop (the body of an emulator command)."""
    asyncio.run(serve(emulator, info, duration=duration))
