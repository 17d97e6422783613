"""Moving Modbus requests: one TCP connection per driver, one shared client per serial line.

Both links run pymodbus' async clients (``AsyncModbusTcpClient``, ``AsyncModbusSerialClient``)
with pymodbus' own retries and reconnection switched off: the driver retries, counts and
backs off itself, so every attempt is visible in its health counters. A :class:`Link`
serialises requests with one lock and keeps the RTU inter-frame gap between them.

Serial lines are shared: several panels (unit ids) on one RS-485 bus, polled by one or by
several driver instances, go through one :class:`SerialLine` found in a module-level
registry keyed by the device's real path (:func:`attach_line`), so the bus carries one
request at a time whoever asks. (pymodbus opens serial ports with an exclusive lock, so
sharing the client is also the only way two instances can use one port.)

Each request is bounded by the caller's timeout. A CRC error or a lost connection fails
the waiting request at once instead of letting it time out: pymodbus only drops a frame
with a bad CRC (the framer subclass here counts it) and only notes a disconnect (the
``trace_connect`` hook here reports it).

FC03/FC04 replies are decoded by the response classes registered here through pymodbus'
``register()`` (its API for custom responses): the reply's bytes copied into an
``array('H')`` in one call instead of one ``struct`` call per register, and a short
``str()``. pymodbus' decoder formats every reply with ``str(pdu)`` for a debug line even
when debug logging is off, and its own ``__str__`` prints the whole register list: together
about a sixth of the CPU time of a 125-register request over loopback (142 -> 117 µs
measured). The array is what :meth:`Link.read` returns and what the driver keeps as a
block's last words (2 bytes a word; a list of ints costs 8 plus a 28-byte int per word).
"""

from __future__ import annotations

import abc
import asyncio
import os
import sys
from array import array
from collections import Counter
from collections.abc import Awaitable, Callable

import serial
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.client.base import ModbusBaseClient
from pymodbus.exceptions import ModbusException, ModbusIOException
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ModbusPDU
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersResponse,
    ReadInputRegistersResponse,
)

from drivers.modbus_panel.config import RtuEndpoint, TcpEndpoint
from edgesdk.errors import ConfigError, ConnectionLostError, DeviceTimeoutError, ProtocolError

__all__ = [
    "EXCEPTION_NAMES",
    "CrcError",
    "FramingError",
    "Link",
    "ModbusExceptionError",
    "SerialLine",
    "TcpLink",
    "attach_line",
    "detach_line",
    "lines",
]

EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "device failure",
    5: "acknowledge",
    6: "device busy",
    7: "negative acknowledge",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target failed to respond",
}

_SERIAL_CLIENT_TIMEOUT = 61.0  # above the largest per-request timeout: ours always fires first
_SWAP = sys.byteorder == "little"  # Modbus words are big-endian; array('H') is native


class ModbusExceptionError(ProtocolError):
    """The device answered with a Modbus exception response."""

    def __init__(self, code: int, unit: int) -> None:
        self.code = code
        name = EXCEPTION_NAMES.get(code, "unknown")
        super().__init__(f"unit {unit} answered Modbus exception {code} ({name})")


class CrcError(ProtocolError):
    """An RTU reply failed its CRC check."""


class FramingError(ProtocolError):
    """A reply that does not fit its request (wrong function or register count)."""


def _decode_registers(pdu: ModbusPDU, data: bytes) -> None:
    """A register reply's data (byte count, then big-endian words) as an ``array('H')``;
    a byte count the frame does not hold, or an odd one, fails as pymodbus' own decode
    does (the frame is dropped, the request times out)."""
    size = data[0]
    if size >= len(data) or size % 2:
        raise ModbusIOException(
            f"byte_count {size} does not fit a packet of {len(data)} bytes",
            function_code=pdu.function_code,
        )
    words = array("H", data[1 : size + 1])
    if _SWAP:
        words.byteswap()
    pdu.registers = words


def _short_str(pdu: ModbusPDU) -> str:
    return (
        f"{type(pdu).__name__}(dev_id={pdu.dev_id}, transaction_id={pdu.transaction_id}, "
        f"registers=<{len(pdu.registers)}>)"
    )


class _HoldingRegisters(ReadHoldingRegistersResponse):
    """FC03 reply: see the module doc."""

    def decode(self, data: bytes) -> None:
        _decode_registers(self, data)

    def __str__(self) -> str:
        return _short_str(self)


class _InputRegisters(ReadInputRegistersResponse):
    """FC04 reply: see the module doc."""

    def decode(self, data: bytes) -> None:
        _decode_registers(self, data)

    def __str__(self) -> str:
        return _short_str(self)


def _register_fast_replies(client: ModbusBaseClient) -> ModbusBaseClient:
    client.register(_HoldingRegisters)
    client.register(_InputRegisters)
    return client


class _CountingFramerRTU(FramerRTU):
    """pymodbus' RTU framer, telling the link about frames it drops for a bad CRC.

    ``FramerRTU.decode`` consumes such a frame and returns no payload, which is the only
    case where it reports bytes used without a frame.
    """

    def __init__(self, decoder: DecodePDU, on_crc: Callable[[], None]) -> None:
        super().__init__(decoder)
        self._on_crc = on_crc

    def decode(self, data: bytes) -> tuple[int, int, int, bytes]:
        used, dev_id, tid, frame = super().decode(data)
        if used and not frame:
            self._on_crc()
        return used, dev_id, tid, frame


class Link(abc.ABC):
    """One Modbus client behind one lock: the unit of serialisation.

    ``stats`` counts for the whole link (shared by every driver on a serial line):
    ``requests`` sent, ``waits`` (a request found the link busy and queued behind another),
    ``max_in_flight`` (requests on the wire at once, observed at the send hook: 1 when
    serialised), ``crc_errors`` seen by the framer.
    """

    label: str

    def __init__(self, *, gap: float = 0.0, quiet_after_timeout: bool = False) -> None:
        self.gap = gap
        self.quiet_after_timeout = quiet_after_timeout
        self.stats: Counter[str] = Counter()
        self.generation = 0  # +1 per successful connect
        self._client: ModbusBaseClient | None = None
        self._lock = asyncio.Lock()
        self._connect_lock = asyncio.Lock()
        self._free_at = 0.0  # loop time before which the next frame must not start
        self._pending = False
        self._on_wire = 0

    # -- connection ---------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.connected

    @abc.abstractmethod
    def _make_client(self) -> ModbusBaseClient:
        """A new pymodbus client for this link (TCP or serial)."""

    async def connect(self) -> bool:
        """Connect unless connected; True if this call connected. ConnectionLostError if
        the device cannot be reached."""
        async with self._connect_lock:
            if self.connected:
                return False
            self.close()
            client = self._make_client()
            try:
                ok = await client.connect()
            except Exception as exc:  # pyserial/termios errors escape pymodbus' connect
                client.close()
                raise ConnectionLostError(f"{self.label}: cannot connect: {exc}") from exc
            if not ok:
                client.close()
                raise ConnectionLostError(f"{self.label}: cannot connect: {await self._why()}")
            # every request has its own deadline timer (_exchange); pymodbus' wait_for
            # around each reply is a second timer and wrapper: ~10 of ~85 us of CPU a
            # request (None: wait_for awaits the reply as is). A new link builds a new
            # client, so connecting keeps its timeout.
            client.ctx.comm_params.timeout_connect = None  # type: ignore[assignment]
            self._client = client
            self.generation += 1
            self._free_at = 0.0
            return True

    async def _why(self) -> str:
        """Why connecting failed (pymodbus only returns False and logs the reason)."""
        return "no reason given"

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _on_connect(self, connected: bool) -> None:
        if not connected:
            self._fail_pending(ConnectionLostError(f"{self.label}: connection lost"))

    def _on_crc(self) -> None:
        self.stats["crc_errors"] += 1
        if self._pending:
            self._fail_pending(CrcError(f"{self.label}: reply failed its CRC check"))

    def _on_packet(self, sending: bool, data: bytes) -> bytes:
        if sending:
            self._on_wire += 1
            if self._on_wire > self.stats["max_in_flight"]:
                self.stats["max_in_flight"] = self._on_wire
        return data

    def _expire(self, unit: int, reply_within: float) -> None:
        self._fail_pending(
            DeviceTimeoutError(f"{self.label}: unit {unit} did not answer within {reply_within:g}s")
        )

    def _fail_pending(self, exc: Exception) -> None:
        """Fail the request pymodbus is waiting on (its response future) right away."""
        client = self._client
        if client is None or not self._pending:
            return
        future = getattr(client.ctx, "response_future", None)
        if isinstance(future, asyncio.Future) and not future.done():
            future.set_exception(exc)

    # -- requests -----------------------------------------------------------------------
    async def read(
        self, function: int, address: int, count: int, unit: int, reply_within: float
    ) -> array[int]:
        """FC03/FC04: ``count`` registers from ``address`` of ``unit``, as an ``array('H')``.

        ``reply_within`` bounds the exchange once the link is ours (queueing behind other
        requests does not count against it).
        """

        def call(client: ModbusBaseClient) -> Awaitable[ModbusPDU]:
            if function == 3:
                return client.read_holding_registers(address, count=count, device_id=unit)
            return client.read_input_registers(address, count=count, device_id=unit)

        reply = await self._exchange(call, unit, reply_within)
        registers = reply.registers  # an array of its own per reply (see _decode_registers)
        words = registers if type(registers) is array else array("H", registers)
        if reply.function_code != function or len(words) != count:
            raise FramingError(
                f"{self.label}: asked unit {unit} for {count} registers with FC{function:02d}, "
                f"got {len(words)} with FC{reply.function_code:02d}"
            )
        return words

    async def write(self, address: int, value: int, unit: int, reply_within: float) -> None:
        """FC06: one holding register."""

        def call(client: ModbusBaseClient) -> Awaitable[ModbusPDU]:
            return client.write_register(address, value, device_id=unit)

        await self._exchange(call, unit, reply_within)

    async def _exchange(
        self,
        call: Callable[[ModbusBaseClient], Awaitable[ModbusPDU]],
        unit: int,
        reply_within: float,
    ) -> ModbusPDU:
        lock = self._lock
        if lock.locked():
            self.stats["waits"] += 1
        async with lock:
            loop = asyncio.get_running_loop()
            client = self._client
            if client is None or not client.connected:
                raise ConnectionLostError(f"{self.label}: not connected")
            wait = self._free_at - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self.stats["requests"] += 1
            self._pending = True
            timed_out = False
            task = asyncio.current_task()
            cancels = task.cancelling() if task is not None else 0
            # the deadline fails pymodbus' response future, as a CRC error or a lost
            # connection does: one timer per request, cheaper than asyncio.timeout()
            timer = loop.call_at(loop.time() + reply_within, self._expire, unit, reply_within)
            try:
                reply = await call(client)
                # Python 3.11's asyncio.wait_for (inside pymodbus' execute) returns the
                # reply when it lands together with a cancellation, dropping the cancel:
                # honour it here, or a cancelled poller would never stop
                if task is not None and task.cancelling() > cancels:
                    raise asyncio.CancelledError
            except DeviceTimeoutError:
                timed_out = True
                if not client.connected:
                    raise ConnectionLostError(f"{self.label}: connection lost") from None
                raise
            except ModbusException as exc:
                if not client.connected:
                    raise ConnectionLostError(f"{self.label}: connection lost: {exc}") from exc
                raise ProtocolError(f"{self.label}: unit {unit}: {exc}") from exc
            finally:
                timer.cancel()
                self._pending = False
                self._on_wire = 0
                # a late reply to a timed-out RTU request would be taken for the next
                # one's: keep the line quiet for another timeout so it arrives unclaimed
                quiet = reply_within if timed_out and self.quiet_after_timeout else 0.0
                self._free_at = loop.time() + self.gap + quiet
            if reply.isError():
                raise ModbusExceptionError(int(reply.exception_code), unit)
            return reply


class TcpLink(Link):
    """Modbus TCP: one connection per driver instance."""

    def __init__(self, endpoint: TcpEndpoint, timeout: float) -> None:
        super().__init__()
        self.endpoint = endpoint
        self.label = endpoint.label
        self._timeout = timeout

    async def _why(self) -> str:
        ep = self.endpoint
        try:
            async with asyncio.timeout(self._timeout + 1.0):
                _, writer = await asyncio.open_connection(ep.host, ep.port)
        except TimeoutError:
            return f"no answer within {self._timeout + 1.0:g}s"
        except OSError as exc:
            return exc.strerror or str(exc)
        writer.close()
        return "the connection closed at once"

    def _make_client(self) -> ModbusBaseClient:
        ep = self.endpoint
        client = AsyncModbusTcpClient(
            ep.host,
            port=ep.port,
            timeout=self._timeout + 1.0,  # the connect timeout; requests use their own
            retries=0,
            reconnect_delay=0,
            trace_connect=self._on_connect,
            trace_packet=self._on_packet,
        )
        return _register_fast_replies(client)


class SerialLine(Link):
    """Modbus RTU on one serial device, shared through :func:`attach_line`."""

    def __init__(self, key: str, endpoint: RtuEndpoint, gap: float) -> None:
        super().__init__(gap=gap, quiet_after_timeout=True)
        self.key = key
        self.endpoint = endpoint
        self.label = endpoint.label
        self.refs = 0
        self.loop = asyncio.get_running_loop()

    async def _why(self) -> str:
        return _serial_open_error(self.endpoint)

    def _make_client(self) -> ModbusBaseClient:
        ep = self.endpoint
        client = AsyncModbusSerialClient(
            ep.path,
            baudrate=ep.baudrate,
            bytesize=ep.bytesize,
            parity=ep.parity,
            stopbits=ep.stopbits,
            timeout=_SERIAL_CLIENT_TIMEOUT,
            retries=0,
            reconnect_delay=0,
            trace_connect=self._on_connect,
            trace_packet=self._on_packet,
        )
        client.ctx.framer = _CountingFramerRTU(DecodePDU(False), self._on_crc)
        return _register_fast_replies(client)


def _serial_open_error(ep: RtuEndpoint) -> str:
    """Open the port as pymodbus does, to see the error it swallowed. (Opening a tty does
    not block; pymodbus opens it in the event loop too.)"""
    if not os.path.exists(ep.path):
        return f"{ep.path} does not exist"
    try:
        port = serial.serial_for_url(
            ep.path,
            exclusive=True,
            baudrate=ep.baudrate,
            bytesize=ep.bytesize,
            parity=ep.parity,
            stopbits=ep.stopbits,
        )
    except Exception as exc:  # SerialException, termios.error, ValueError...
        return str(exc) or type(exc).__name__
    port.close()
    return "the port opened on a second try"


_LINES: dict[str, SerialLine] = {}


def _key(path: str) -> str:
    return os.path.realpath(path)


def attach_line(endpoint: RtuEndpoint, gap: float) -> SerialLine:
    """The line for ``endpoint``'s device, created on first use; one more user on it.

    Every user of a line must ask for the same serial settings (ConfigError otherwise);
    the line keeps the largest inter-frame gap any of them asks for.
    """
    key = _key(endpoint.path)
    line = _LINES.get(key)
    if line is not None and line.loop is not asyncio.get_running_loop():
        line.close()  # left over from another event loop (a pty number reused): unusable
        line = None
    if line is None:
        line = _LINES[key] = SerialLine(key, endpoint, gap)
    elif (line.endpoint.baudrate, line.endpoint.parity, line.endpoint.stopbits) != (
        endpoint.baudrate,
        endpoint.parity,
        endpoint.stopbits,
    ):
        ep = line.endpoint
        raise ConfigError(
            f"serial line {key} is already open at {ep.baudrate} {ep.bytesize}{ep.parity}"
            f"{ep.stopbits} by another driver",
            key="url",
            fix="give every driver on one line the same baudrate, parity and stopbits",
        )
    line.refs += 1
    line.gap = max(line.gap, gap)
    return line


def detach_line(line: SerialLine) -> None:
    """One user fewer; the last one closes the port and forgets the line."""
    line.refs -= 1
    if line.refs <= 0:
        line.close()
        if _LINES.get(line.key) is line:
            del _LINES[line.key]


def lines() -> dict[str, SerialLine]:
    """The serial lines open now, by device path (for tests and diagnostics)."""
    return dict(_LINES)
