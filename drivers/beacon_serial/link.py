"""The serial port itself: open, read, write, close, never blocking the event loop.

pyserial-asyncio-fast supplies the asyncio transport (the port's fd is watched by the event
loop; reads and writes are non-blocking). pyserial's own ``open()`` (termios set-up, flush
of stale input) and ``close()`` run in the loop's default executor, as the library does.
This module only moves bytes; the frames are :mod:`drivers.beacon_serial.codec`'s job.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os

import serial
import serial_asyncio_fast

from edgesdk.errors import ConnectionLostError, DeviceTimeoutError

__all__ = ["LINK_ERRORS", "SerialLink", "port_present"]

LINK_ERRORS: tuple[type[BaseException], ...] = (serial.SerialException, OSError)
"""What a vanishing USB port raises (``ConnectionError`` is an ``OSError``)."""

_READ_LIMIT = 64 * 1024  # bytes buffered before the transport pauses reading
_CLOSE_WAIT = 5.0  # seconds to wait for pyserial's close() in the executor


def port_present(path: str) -> bool:
    """True if ``path`` (device node or symlink to one) exists: one ``stat``, no I/O."""
    return os.path.exists(path)


def _close_quietly(future: asyncio.Future[serial.Serial]) -> None:
    """Close a port whose open finished after nobody waited for it any more."""
    if not future.cancelled() and future.exception() is None:
        with contextlib.suppress(Exception):
            future.result().close()


class SerialLink:
    """One open port, as a stream reader and writer."""

    def __init__(
        self, path: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.path = path
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, path: str, *, baudrate: int, within: float) -> SerialLink:
        """Open ``path`` at ``baudrate`` 8N1, no flow control.

        Raises ``serial.SerialException``/``OSError`` when the port cannot be opened and
        :class:`~edgesdk.errors.DeviceTimeoutError` after ``within`` seconds. A port that
        opens after the timeout is closed, not leaked.
        """
        loop = asyncio.get_running_loop()
        make = functools.partial(
            serial.Serial,
            path,
            baudrate=baudrate,
            bytesize=serial.EIGHTBITS,
            parity=serial.PARITY_NONE,
            stopbits=serial.STOPBITS_ONE,
            timeout=0,
            write_timeout=0,
        )
        future = loop.run_in_executor(None, make)
        try:
            async with asyncio.timeout(within):
                port = await asyncio.shield(future)
        except BaseException as exc:
            future.add_done_callback(_close_quietly)
            if isinstance(exc, TimeoutError):
                raise DeviceTimeoutError(f"{path}: port did not open within {within:g}s") from exc
            raise
        reader = asyncio.StreamReader(limit=_READ_LIMIT, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        try:
            transport, _ = await serial_asyncio_fast.connection_for_serial(
                loop, lambda: protocol, port
            )
        except BaseException:
            port.close()
            raise
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        return cls(path, reader, writer)

    @property
    def closing(self) -> bool:
        return self._writer.is_closing()

    async def read(self, size: int = 4096) -> bytes:
        """Up to ``size`` bytes; ``b""`` at end of stream; the port's error if it failed."""
        return await self._reader.read(size)

    async def write(self, data: bytes, *, within: float) -> None:
        """Send ``data`` and wait (at most ``within`` s) until the port took it.

        Raises :class:`~edgesdk.errors.ConnectionLostError` if the port is closed or fails,
        :class:`~edgesdk.errors.DeviceTimeoutError` if the bytes do not leave in time.
        """
        if self._writer.is_closing():
            raise ConnectionLostError(f"{self.path}: port is closed")
        try:
            self._writer.write(data)
            async with asyncio.timeout(within):
                await self._writer.drain()
        except TimeoutError as exc:
            raise DeviceTimeoutError(f"{self.path}: write not drained in {within:g}s") from exc
        except LINK_ERRORS as exc:
            raise ConnectionLostError(f"{self.path}: write failed: {exc}") from exc

    async def close(self) -> None:
        """Close the port and wait for pyserial to let go of the fd. Never raises."""
        self._writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(_CLOSE_WAIT):
                await self._writer.wait_closed()
