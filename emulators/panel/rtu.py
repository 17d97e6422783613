"""Modbus RTU over a pseudo-terminal: the panels as slaves on an emulated RS-485 line.

pymodbus' serial server opens a serial device itself, but the emulator must hold the
*master* end of a pty (which has no path) so the driver can open the slave path like
``/dev/ttyUSB0``. So the transport here is :class:`emulators.pty.PtyPort`, and the Modbus
work is pymodbus' sans-I/O parts: :class:`~pymodbus.framer.FramerRTU` finds and checks
request frames and builds replies, the request PDUs run against the same
:class:`~emulators.panel.store.UnitStore` the TCP server uses.

Like a real line, requests are served one at a time; requests for unit ids not on this
line are ignored (another slave would answer); broadcasts (unit 0) are executed without a
reply; a pause of ``gap`` seconds between bytes starts a new frame (the RTU silent
interval), so a half-received frame never glues onto the next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ModbusIOException, NoSuchIdException
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ExceptionResponse, ModbusPDU

from emulators.panel.store import CORRUPT_REPLY, TRANSPORT, UnitStore
from emulators.pty import PtyPort

__all__ = ["RtuServer"]

log = logging.getLogger(__name__)

_SUPPORTED = frozenset({1, 2, 3, 4, 5, 6, 15, 16, 23})
_WRITES = frozenset({5, 6, 15, 16})
_QUEUE_LIMIT = 64


class _Context:
    """What pymodbus request PDUs call in ``datastore_update`` (async get/set values)."""

    def __init__(self, stores: Mapping[int, UnitStore]) -> None:
        self.stores = stores

    async def async_getValues(  # noqa: N802 - pymodbus' name
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> list[int] | ExcCodes:
        return await self.stores[device_id].handle(func_code, address, count, None)

    async def async_setValues(  # noqa: N802 - pymodbus' name
        self, device_id: int, func_code: int, address: int, values: Sequence[int]
    ) -> ExcCodes | None:
        result = await self.stores[device_id].handle(func_code, address, len(values), values)
        return result if isinstance(result, ExcCodes) else None

    def device_ids(self) -> list[int]:
        return list(self.stores)


class RtuServer:
    """Serves ``stores`` (unit id -> store) as RTU slaves on a new pty."""

    def __init__(
        self,
        stores: Mapping[int, UnitStore],
        *,
        link: str | Path | None = None,
        gap: float = 0.05,
    ) -> None:
        self.stores = stores
        self.port = PtyPort(link=link, on_data=self._on_data)
        self.gap = gap
        self.counters: Counter[str] = Counter()
        self._context = _Context(stores)
        self._framer = FramerRTU(DecodePDU(True))
        self._buffer = bytearray()
        self._last = 0.0
        self._queue: asyncio.Queue[ModbusPDU] = asyncio.Queue(_QUEUE_LIMIT)
        self._worker: asyncio.Task[None] | None = None

    @property
    def path(self) -> str:
        return self.port.path

    async def start(self) -> None:
        self.port.open()
        self._worker = asyncio.create_task(self._serve_forever(), name="panel-rtu")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        self.port.close()

    # -- receiving ----------------------------------------------------------------------
    def _on_data(self, data: bytes) -> None:
        now = time.monotonic()
        if self._buffer and now - self._last > self.gap:
            self.counters["stale_bytes"] += len(self._buffer)
            self._buffer.clear()
        self._last = now
        self._buffer += data
        for _ in range(16):  # a chunk holds at most a few frames; never spin
            try:
                used, pdu = self._framer.handleFrame(bytes(self._buffer), 0, 0)
            except ModbusIOException:
                self.counters["bad_frames"] += 1
                self._buffer.clear()
                return
            if used and pdu is None:
                self.counters["crc_errors"] += 1
            del self._buffer[:used]
            if pdu is None:
                return
            self.counters["frames_in"] += 1
            try:
                self._queue.put_nowait(pdu)
            except asyncio.QueueFull:
                self.counters["overruns"] += 1

    # -- serving ------------------------------------------------------------------------
    async def _serve_forever(self) -> None:
        while True:
            pdu = await self._queue.get()
            try:
                await self._serve(pdu)
            except Exception:  # one bad request must not stop the line
                log.exception("panel RTU: request failed")
                self.counters["internal_errors"] += 1

    async def _serve(self, pdu: ModbusPDU) -> None:
        unit = pdu.dev_id
        TRANSPORT.set("rtu")
        if unit == 0:  # broadcast: writes only, never a reply
            if pdu.function_code not in _WRITES:
                return
            for uid in self.stores:
                with contextlib.suppress(NoSuchIdException):
                    await pdu.datastore_update(self._context, uid)  # type: ignore[arg-type]
            self.counters["broadcasts"] += 1
            return
        if unit not in self.stores:
            self.counters["other_units"] += 1
            return
        CORRUPT_REPLY.set(False)
        if pdu.function_code not in _SUPPORTED:
            reply: ModbusPDU = ExceptionResponse(pdu.function_code, ExcCodes.ILLEGAL_FUNCTION)
        else:
            try:
                reply = await pdu.datastore_update(self._context, unit)  # type: ignore[arg-type]
            except NoSuchIdException:
                self.counters["no_reply"] += 1
                return
        reply.dev_id = unit
        reply.transaction_id = 0
        frame = self._framer.buildFrame(reply)
        if CORRUPT_REPLY.get():
            frame = frame[:-2] + bytes([frame[-2] ^ 0xFF, frame[-1] ^ 0x5A])
        self.port.write(frame)
        self.counters["frames_out"] += 1
