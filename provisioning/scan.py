"""``provision scan``: find panels on a Modbus bus and beacon receivers on serial ports.

Which unit ids answer is decided by one FC03 read each: any reply (even an exception)
means something is there, except exceptions 0x0A/0x0B, which a TCP gateway sends for an
absent unit behind it. A panel is then identified by device identification (FC43/14)
when it names a profile, else by **signatures** from the profiles themselves
(:mod:`drivers.modbus_panel.profile`): the panel status and heartbeat registers and the
first point registers must answer and decode sanely (no status bit the profile does not
define; for one-word-per-point maps exactly one of active/inactive and of
enabled/disabled, and a known event code), and the first *unmapped* register after the
map's start must answer exception 02. Two profiles laid over the same addresses differ
in at least one of these, so one panel matches one profile.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from edgesdk.errors import ConfigError, ConnectionLostError

__all__ = [
    "ModbusTarget",
    "PortFound",
    "UnitFound",
    "list_serial_ports",
    "parse_modbus_url",
    "parse_units",
    "probe_serial_ports",
    "scan_modbus",
]

_ABSENT = (0x0A, 0x0B)  # gateway path unavailable / target device failed to respond
_ILLEGAL_ADDRESS = 0x02


@dataclass(frozen=True, slots=True)
class ModbusTarget:
    """Where to scan: ``tcp://host:port`` or ``rtu:///dev/ttyX?baudrate=19200&parity=E``."""

    url: str
    host: str = ""
    port: int = 502
    path: str = ""
    baudrate: int = 19200  # the driver's defaults: Modbus RTU is 8E1 unless told otherwise
    parity: str = "E"
    bytesize: int = 8
    stopbits: int = 1

    @property
    def rtu(self) -> bool:
        return bool(self.path)


def parse_modbus_url(url: str) -> ModbusTarget:
    """Parse a scan URL exactly as the modbus-panel driver parses its ``url`` option."""
    from drivers.modbus_panel.config import RtuEndpoint, parse_url

    try:
        endpoint = parse_url(url)
    except ValueError as exc:
        raise ConfigError(
            str(exc),
            key="--url",
            fix="use tcp://HOST:PORT or rtu:///dev/ttyUSB0?baudrate=19200&parity=E",
        ) from exc
    if isinstance(endpoint, RtuEndpoint):
        return ModbusTarget(
            url=url,
            path=endpoint.path,
            baudrate=endpoint.baudrate,
            parity=endpoint.parity,
            bytesize=endpoint.bytesize,
            stopbits=endpoint.stopbits,
        )
    return ModbusTarget(url=url, host=endpoint.host, port=endpoint.port)


def parse_units(text: str) -> list[int]:
    """``1-247``, ``1,2,10-12``: unit ids 1..247, sorted, without repeats."""
    units: set[int] = set()
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise ConfigError(
                f"{part!r} is not a unit id or range", key="--units", fix="e.g. 1-247 or 1,2,5-8"
            )
        low = int(m.group(1))
        high = int(m.group(2) or low)
        if not 1 <= low <= high <= 247:
            raise ConfigError(
                f"unit range {part.strip()} is outside 1-247", key="--units", fix="use ids 1..247"
            )
        units.update(range(low, high + 1))
    return sorted(units)


@dataclass(slots=True)
class UnitFound:
    """One unit id that answered, and what it was identified as."""

    unit: int
    profile: str | None
    method: str  # "fc43", "signature" or "none"
    detail: str
    candidates: list[str] = field(default_factory=list)


@contextlib.contextmanager
def _quiet_pymodbus() -> Iterator[None]:
    """pymodbus logs every timeout at WARNING: expected here, so keep stderr clean."""
    log = logging.getLogger("pymodbus")
    old = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(old)


class _Reader:
    """One client; reads return words, an exception code, or None (no answer)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def read(self, table: Any, address: int, count: int, unit: int) -> list[int] | int | None:
        from pymodbus.exceptions import ModbusException

        from drivers.modbus_panel.profile import Table

        fn = (
            self.client.read_holding_registers
            if table is Table.HOLDING
            else self.client.read_input_registers
        )
        try:
            reply = await fn(address, count=count, device_id=unit)
        except ModbusException:
            return None
        if reply.isError():
            return int(getattr(reply, "exception_code", 0) or 0)
        return list(reply.registers)

    async def identification(self, unit: int) -> str:
        from pymodbus.exceptions import ModbusException

        try:
            reply = await self.client.read_device_information(
                read_code=1, object_id=0, device_id=unit
            )
        except ModbusException:
            return ""
        if reply.isError():
            return ""
        values: list[str] = []
        for v in dict(getattr(reply, "information", {}) or {}).values():
            for item in v if isinstance(v, list) else [v]:
                if isinstance(item, bytes):
                    values.append(item.decode("utf-8", errors="replace"))
        return " ".join(values)


def _flags_sane(profile: Any, word: int) -> bool:
    enc = profile.encoding
    fl, ev = enc.flags, enc.events
    code = (word >> enc.event_shift) & 0xFF
    if code in ev.not_present:
        return True
    if (word >> fl.active & 1) == (word >> fl.inactive & 1):
        return False
    if (word >> fl.enabled & 1) == (word >> fl.disabled & 1):
        return False
    known = {*ev.none, *ev.fire, *ev.co, *ev.supervisory, *ev.non_fire}
    return code in known


async def _matches(reader: _Reader, unit: int, profile: Any) -> tuple[bool, str]:
    """Whether the unit answers like ``profile`` (see the module docstring)."""
    from drivers.modbus_panel.profile import BlockKind, Table, parse_register

    table, status_addr = parse_register(profile.panel.status)
    got = await reader.read(table, status_addr, 1, unit)
    if not isinstance(got, list):
        return False, f"panel status {profile.panel.status} does not answer"
    defined = 0
    for bit in profile.panel.status_bits.model_dump().values():
        if bit is not None:
            defined |= 1 << bit
    if got[0] & ~defined:
        return False, f"panel status {got[0]:#06x} sets bits the profile does not define"
    if profile.panel.heartbeat is not None:
        t, a = parse_register(profile.panel.heartbeat)
        if not isinstance(await reader.read(t, a, 1, unit), list):
            return False, f"heartbeat {profile.panel.heartbeat} does not answer"
    blocks = profile.read_blocks(kind=BlockKind.STATUS, loops=1)
    points = [b for b in blocks if any(r.points for r in _regs(profile, b))]
    if points:
        block = points[0]
        count = min(block.count, 8)
        words = await reader.read(block.table, block.address, count, unit)
        if not isinstance(words, list):
            return False, "the first point registers do not answer"
        if profile.encoding.kind == "flags" and not all(_flags_sane(profile, w) for w in words):
            return False, "point words do not decode as this profile's flags"
    mapped = sorted(a for (t, a) in profile.registers if t is Table.HOLDING)
    gap = (
        next(
            (
                a
                for a in range(mapped[0], mapped[-1] + 2)
                if (Table.HOLDING, a) not in profile.registers
            ),
            None,
        )
        if mapped
        else None
    )
    if gap is not None:
        got = await reader.read(Table.HOLDING, gap, 1, unit)
        if isinstance(got, list):
            return False, f"unmapped register {40001 + gap} answers (profile expects exception 02)"
    return True, "registers answer and decode as this profile"


def _regs(profile: Any, block: Any) -> list[Any]:
    return [
        r
        for a in range(block.address, block.address + block.count)
        if (r := profile.registers.get((block.table, a))) is not None
    ]


async def _identify(reader: _Reader, unit: int) -> UnitFound:
    from drivers.modbus_panel.profile import available_profiles, load_profile

    names = available_profiles()
    ident = await reader.identification(unit)
    for name in names:
        if ident and name.lower() in ident.lower():
            return UnitFound(unit, name, "fc43", f"device identification: {ident}", [name])
    matched: list[str] = []
    reasons: list[str] = []
    for name in names:
        ok, why = await _matches(reader, unit, load_profile(name))
        (matched.append(name) if ok else reasons.append(f"{name}: {why}"))
    if len(matched) == 1:
        return UnitFound(
            unit, matched[0], "signature", "registers match this profile only", matched
        )
    if matched:
        return UnitFound(
            unit, None, "signature", f"several profiles match: {', '.join(matched)}", matched
        )
    return UnitFound(
        unit, None, "none", "answers, but matches no profile (" + "; ".join(reasons) + ")"
    )


async def scan_modbus(
    target: ModbusTarget,
    units: list[int],
    per_request: float,
    step: Callable[[int, bool], None] = lambda _u, _f: None,
) -> list[UnitFound]:
    """Scan ``units`` on ``target``; ``step(unit, found)`` after each id (progress)."""
    from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

    from drivers.modbus_panel.profile import Table

    client: Any
    if target.rtu:
        client = AsyncModbusSerialClient(
            target.path,
            baudrate=target.baudrate,
            parity=target.parity,
            bytesize=target.bytesize,
            stopbits=target.stopbits,
            timeout=per_request,
            retries=0,
        )
    else:
        client = AsyncModbusTcpClient(target.host, port=target.port, timeout=per_request, retries=0)
    found: list[UnitFound] = []
    with _quiet_pymodbus():
        try:
            try:
                connected = await client.connect()
            except Exception as exc:  # pyserial, termios and pymodbus raise assorted types
                raise ConnectionLostError(
                    f"cannot open {target.url}: {type(exc).__name__}: {exc}; check the device "
                    "path and the line settings (a pty takes no parity: add &parity=N)"
                ) from exc
            if not connected:
                raise ConnectionLostError(
                    f"cannot connect to {target.url}: check the address, the cable and that "
                    "nothing else holds the port"
                )
            reader = _Reader(client)
            for unit in units:
                got = await reader.read(Table.HOLDING, 0, 1, unit)
                present = isinstance(got, list) or (got is not None and got not in _ABSENT)
                if present:
                    found.append(await _identify(reader, unit))
                step(unit, present)
        finally:
            client.close()
    return found


# -- serial -------------------------------------------------------------------------------
@dataclass(slots=True)
class PortFound:
    """What listening on one serial port showed."""

    port: str
    description: str
    opened: bool
    error: str = ""
    bytes: int = 0
    frames: Counter[str] = field(default_factory=Counter)
    beacons: set[int] = field(default_factory=set)
    receiver: dict[str, int] | None = None
    damage: dict[str, int] = field(default_factory=dict)

    @property
    def is_receiver(self) -> bool:
        return sum(self.frames.values()) > 0

    def as_json(self) -> dict[str, Any]:
        return {
            "port": self.port,
            "description": self.description,
            "opened": self.opened,
            "error": self.error,
            "bytes": self.bytes,
            "frames": dict(self.frames),
            "beacons": sorted(self.beacons),
            "receiver_status": self.receiver,
            "damage": self.damage,
            "beacon_receiver": self.is_receiver,
        }


def list_serial_ports() -> list[tuple[str, str]]:
    """(device, description) of the serial ports the OS lists."""
    from serial.tools import list_ports

    return [(p.device, p.description or "") for p in list_ports.comports()]


def _listen(port: str, description: str, seconds: float, baudrate: int) -> PortFound:
    import time

    import serial

    from drivers.beacon_serial.codec import FrameDecoder, ReceiverStatus

    result = PortFound(port, description, opened=False)
    try:
        conn = serial.Serial(port, baudrate=baudrate, timeout=0.1)
    except (serial.SerialException, OSError) as exc:
        result.error = str(exc)
        return result
    result.opened = True
    decoder = FrameDecoder()
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            try:
                chunk = conn.read(4096)
            except (serial.SerialException, OSError) as exc:
                result.error = f"read failed: {exc}"
                break
            result.bytes += len(chunk)
            for frame in decoder.feed(chunk):
                result.frames[frame.type.name.lower()] += 1
                if isinstance(frame.message, ReceiverStatus):
                    m = frame.message
                    result.receiver = {
                        "uptime": m.uptime,
                        "frames_received": m.frames_received,
                        "noise_floor": m.noise_floor,
                    }
                elif frame.beacon:
                    result.beacons.add(frame.beacon)
    finally:
        conn.close()
    result.damage = {
        k: v for k, v in decoder.counters().items() if k not in ("bytes_fed", "frames") and v
    }
    return result


def probe_serial_ports(
    ports: list[tuple[str, str]],
    seconds: float,
    baudrate: int = 115200,
    done: Callable[[PortFound], None] = lambda _p: None,
) -> list[PortFound]:
    """Listen on every port at once for ``seconds`` and decode beacon frames."""
    if not ports:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(ports))) as pool:
        futures = [pool.submit(_listen, p, d, seconds, baudrate) for p, d in ports]
        results = []
        for f in futures:
            results.append(f.result())
            done(results[-1])
    return results
