"""An emulated serial port: the device side of a pseudo-terminal.

The emulator holds the master end; the driver (or any serial program) opens the slave path
exactly as it would open ``/dev/ttyUSB0``. The emulator also keeps the slave end open itself,
so the port does not vanish (EIO) between clients. :meth:`PtyPort.unplug` and
:meth:`PtyPort.replug` emulate a USB receiver being pulled and put back: the old path goes
away and a stable symlink (``link``) is re-pointed at the new one.

Written on the standard library (os.openpty, termios) because no maintained library offers
an asyncio pty endpoint; pyserial only opens the client side.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import termios
import tty
from collections.abc import Callable
from pathlib import Path

__all__ = ["PtyPort"]


class PtyPort:
    """A pty whose master end is read and written from asyncio.

    ``on_data`` is called with every chunk of bytes the client writes.
    """

    def __init__(
        self,
        *,
        link: str | os.PathLike[str] | None = None,
        on_data: Callable[[bytes], None] | None = None,
    ) -> None:
        self.link = Path(link) if link is not None else None
        self.on_data = on_data
        self._master: int | None = None
        self._slave: int | None = None
        self._path: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        self.bytes_dropped = 0

    @property
    def path(self) -> str:
        """The slave device path (``/dev/pts/N``), or the symlink if one was asked for."""
        if self._path is None:
            raise RuntimeError("pty is not open")
        return str(self.link) if self.link is not None else self._path

    @property
    def device_path(self) -> str:
        if self._path is None:
            raise RuntimeError("pty is not open")
        return self._path

    @property
    def is_open(self) -> bool:
        return self._master is not None

    def open(self) -> None:
        """Create the pty (raw mode, non-blocking master) and point the symlink at it."""
        if self._master is not None:
            return
        self._loop = asyncio.get_running_loop()
        master, slave = os.openpty()
        tty.setraw(master, termios.TCSANOW)
        tty.setraw(slave, termios.TCSANOW)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self._path = os.ttyname(slave)
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".tmp")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self._path)
            tmp.replace(self.link)
        self._loop.add_reader(master, self._readable)

    def close(self) -> None:
        """Close both ends and remove the symlink."""
        if self._master is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._master)
            os.close(self._master)
            self._master = None
        if self._slave is not None:
            os.close(self._slave)
            self._slave = None
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                if self.link.is_symlink():
                    self.link.unlink()
        self._path = None

    def unplug(self) -> None:
        """The receiver is pulled out: the device node (and symlink) disappears."""
        self.close()

    def replug(self) -> None:
        """The receiver is plugged back in (a new pty; the symlink follows it)."""
        self.open()

    def write(self, data: bytes) -> int:
        """Send bytes to the client. Like a real UART, bytes nobody reads are dropped
        once the kernel buffer is full; returns how many were written."""
        if self._master is None:
            self.bytes_dropped += len(data)
            return 0
        try:
            n = os.write(self._master, data)
        except BlockingIOError:
            n = 0
        except OSError as exc:
            if exc.errno in (errno.EIO, errno.EBADF):
                n = 0
            else:
                raise
        self.bytes_out += n
        self.bytes_dropped += len(data) - n
        return n

    def _readable(self) -> None:
        if self._master is None:
            return
        try:
            data = os.read(self._master, 4096)
        except BlockingIOError:
            return
        except OSError:
            return
        if data:
            self.bytes_in += len(data)
            if self.on_data is not None:
                self.on_data(data)

    async def __aenter__(self) -> PtyPort:
        self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
