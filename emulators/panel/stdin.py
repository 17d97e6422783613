"""Read JSON control lines from stdin while the emulator runs (``--control``).

Kept out of the emulator itself: only the CLI owns the process's stdin. The reader starts
after the emulator is up, so the JSON "where to connect" line is always the first line on
stdout; each control line then gets exactly one JSON reply line. End of input stops the
reader, not the emulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator

from emulators.panel.control import handle_line
from emulators.panel.emulator import PanelEmulator

__all__ = ["with_stdin_control"]

_MAX_LINE = 1 << 16


@contextlib.asynccontextmanager
async def with_stdin_control(
    emulator: PanelEmulator, *, enabled: bool
) -> AsyncIterator[PanelEmulator]:
    """Enter ``emulator``; with ``enabled``, serve control lines from stdin meanwhile."""
    async with emulator as emu:
        task = asyncio.create_task(_serve_stdin(emu), name="panel-stdin") if enabled else None
        try:
            yield emu
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


def _reply(obj: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


async def _serve_stdin(emu: PanelEmulator) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_MAX_LINE)
    try:
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
        )
    except (ValueError, OSError) as exc:  # e.g. stdin is a regular file
        sys.stderr.write(f"edgectl emulate panel: --control: cannot read stdin: {exc}\n")
        return
    try:
        while True:
            try:
                line = await reader.readline()
            except ValueError:  # longer than _MAX_LINE
                _reply({"ok": False, "error": f"line longer than {_MAX_LINE} bytes"})
                continue
            if not line:
                return
            if line.strip():
                _reply(handle_line(emu, line.decode("utf-8", errors="replace")))
    finally:
        transport.close()
