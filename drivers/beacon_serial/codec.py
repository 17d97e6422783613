"""The beacon receiver's serial frames, sans-I/O: bytes in, typed frames out.

The receiver hands frames from firefighters' beacons to the gateway over a USB serial port;
no public standard exists, so the project defines the format (``docs/protocols/
beacon-serial.md`` is the normative text, this module its one implementation, shared by the
driver and the emulator)::

    AA 55 | len u8 | type u8 | seq u8 | beacon u32 | payload | crc u16
    len = 6 + payload length; crc = CRC-16/CCITT-FALSE over len .. end of payload;
    every multi-byte field little-endian.

Two halves:

* :func:`encode` turns a typed message (:class:`Telemetry`, :class:`Alarm`,
  :class:`ReceiverStatus`, :class:`Hello`, :class:`Ack`, :class:`Evacuate`) plus a sequence
  number and a beacon id into bytes; values are given in physical units (°C, bar) and scaled
  here, so no caller ever handles the wire's fixed-point integers.
* :class:`FrameDecoder` is a streaming parser for a byte stream that may hold noise, cut
  frames and corrupt frames. It never raises on bad input, keeps at most one incomplete frame
  buffered, and counts every kind of damage so a driver can report link health.
"""

from __future__ import annotations

import binascii
import enum
import math
import struct
from dataclasses import dataclass
from typing import ClassVar, TypeAlias

from edgesdk.errors import ConfigError, ProtocolError

__all__ = [
    "MAX_FRAME_SIZE",
    "MIN_LENGTH",
    "RECEIVER_ID",
    "SYNC",
    "Ack",
    "Alarm",
    "AlarmCause",
    "Evacuate",
    "Frame",
    "FrameDecoder",
    "FrameType",
    "Hello",
    "Message",
    "ReceiverStatus",
    "Telemetry",
    "TelemetryFlags",
    "crc16",
    "decode",
    "encode",
]

SYNC = b"\xaa\x55"
"""The two bytes every frame starts with."""

MIN_LENGTH = 6
"""The smallest legal ``len``: type, seq and beacon with an empty payload."""

MAX_FRAME_SIZE = 2 + 1 + 255 + 2
"""The largest frame on the wire (sync, len, len = 255 bytes, crc)."""

RECEIVER_ID = 0
"""The beacon id of the receiver itself (receiver status; evacuate to every beacon)."""

_HEAD = struct.Struct("<BBBI")  # len, type, seq, beacon
_TYPE_SEQ_BEACON = struct.Struct("<BBI")
_TELEMETRY = struct.Struct("<BhhHHBBb")
_ALARM = struct.Struct("<BB")
_STATUS = struct.Struct("<IIb")
_HELLO = struct.Struct("<HBBH")
_ACK = struct.Struct("<BB")
_NO_SCBA = 0xFFFF


def crc16(data: bytes | bytearray) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, xorout 0).

    Check value: ``crc16(b"123456789") == 0x29B1``.
    """
    # binascii.crc_hqx is the standard library's CRC-CCITT (poly 0x1021, MSB first, no
    # reflection, no final xor) with a caller-chosen initial value: with 0xFFFF it is exactly
    # CCITT-FALSE. It is C code kept with CPython, so no table is hand-written here and no
    # dependency is added (crcmod is not installed).
    return binascii.crc_hqx(data, 0xFFFF)


class FrameType(enum.IntEnum):
    """The ``type`` byte. Below 0x80: receiver to gateway; from 0x80: gateway to receiver."""

    TELEMETRY = 0x01
    ALARM = 0x02
    RECEIVER_STATUS = 0x03
    HELLO = 0x10
    ACK = 0x81
    EVACUATE = 0x82


class AlarmCause(enum.IntEnum):
    """Why a beacon raised an alarm (``Alarm.cause``)."""

    DISTRESS = 1  # the manual distress button
    FALL = 2  # the beacon's fall detector
    MOTION = 3  # the beacon's own PASS motion alarm (no motion for 30 s)
    THERMAL = 4  # the beacon's thermal alarm


class TelemetryFlags(enum.IntFlag):
    """The telemetry ``flags`` byte; unknown bits are kept, not rejected."""

    DISTRESS = 0x01
    FALL = 0x02
    SENSOR_CONTACT = 0x04
    LOW_BATTERY = 0x08


def _known(kind: type[enum.IntEnum], value: int) -> int:
    """The enum member for a known value, the plain int otherwise (decoding never fails)."""
    return kind(value) if value in kind._value2member_map_ else value


def _check(owner: str, name: str, value: int, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ProtocolError(f"cannot encode {owner}: {name}={value!r} is not an int in {lo}..{hi}")
    return value


def _fixed(owner: str, name: str, value: float, scale: int, lo: int, hi: int) -> int:
    """A physical value as the wire's fixed-point integer (``value * scale``, rounded)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ProtocolError(f"cannot encode {owner}: {name}={value!r} is not a finite number")
    raw = round(value * scale)
    if not lo <= raw <= hi:
        raise ProtocolError(
            f"cannot encode {owner}: {name}={value!r} is outside {lo / scale}..{hi / scale}"
        )
    return raw


@dataclass(frozen=True, slots=True)
class Telemetry:
    """A beacon's periodic reading (about 1 Hz per beacon), in physical units.

    ``heart_rate`` in bpm (``None``: unknown, 0 on the wire); temperatures in °C (skin to
    0.01, ambient to 0.1); ``motion`` in milli-g RMS over the last second; ``scba_pressure``
    in bar to 0.1 (``None``: no cylinder, 0xFFFF on the wire); ``battery`` in %; ``rssi`` in
    dBm as the receiver heard the beacon.
    """

    TYPE: ClassVar[FrameType] = FrameType.TELEMETRY
    SIZE: ClassVar[int] = _TELEMETRY.size

    heart_rate: int | None
    skin_temperature: float
    ambient_temperature: float
    motion: int
    scba_pressure: float | None
    battery: int
    flags: TelemetryFlags
    rssi: int

    @property
    def distress(self) -> bool:
        return bool(self.flags & TelemetryFlags.DISTRESS)

    @property
    def fall(self) -> bool:
        return bool(self.flags & TelemetryFlags.FALL)

    @property
    def sensor_contact(self) -> bool:
        return bool(self.flags & TelemetryFlags.SENSOR_CONTACT)

    @property
    def low_battery(self) -> bool:
        return bool(self.flags & TelemetryFlags.LOW_BATTERY)

    def pack(self) -> bytes:
        """The payload bytes; :class:`~edgesdk.errors.ProtocolError` if a value does not fit."""
        me = "Telemetry"
        # 0 on the wire means unknown, so a known heart rate must be 1..255
        hr = 0 if self.heart_rate is None else _check(me, "heart_rate", self.heart_rate, 1, 255)
        if self.scba_pressure is None:
            scba = _NO_SCBA
        else:
            scba = _fixed(me, "scba_pressure", self.scba_pressure, 10, 0, _NO_SCBA - 1)
        return _TELEMETRY.pack(
            hr,
            _fixed(me, "skin_temperature", self.skin_temperature, 100, -32768, 32767),
            _fixed(me, "ambient_temperature", self.ambient_temperature, 10, -32768, 32767),
            _check(me, "motion", self.motion, 0, 0xFFFF),
            scba,
            _check(me, "battery", self.battery, 0, 255),
            _check(me, "flags", int(self.flags), 0, 255),
            _check(me, "rssi", self.rssi, -128, 127),
        )

    @classmethod
    def unpack_from(cls, buf: bytes | bytearray, offset: int = 0) -> Telemetry:
        hr, skin, ambient, motion, scba, battery, flags, rssi = _TELEMETRY.unpack_from(buf, offset)
        return cls(
            heart_rate=hr or None,
            skin_temperature=skin / 100,
            ambient_temperature=ambient / 10,
            motion=motion,
            scba_pressure=None if scba == _NO_SCBA else scba / 10,
            battery=battery,
            flags=TelemetryFlags(flags),
            rssi=rssi,
        )


@dataclass(frozen=True, slots=True)
class Alarm:
    """An alarm, repeated by the receiver every second until the gateway acks one repeat.

    ``cause`` is an :class:`AlarmCause` (a plain int for a cause this codec does not know);
    ``alarm_id`` names the occurrence, the same in every repeat.
    """

    TYPE: ClassVar[FrameType] = FrameType.ALARM
    SIZE: ClassVar[int] = _ALARM.size

    cause: int
    alarm_id: int

    def pack(self) -> bytes:
        return _ALARM.pack(
            _check("Alarm", "cause", int(self.cause), 0, 255),
            _check("Alarm", "alarm_id", self.alarm_id, 0, 255),
        )

    @classmethod
    def unpack_from(cls, buf: bytes | bytearray, offset: int = 0) -> Alarm:
        cause, alarm_id = _ALARM.unpack_from(buf, offset)
        return cls(cause=_known(AlarmCause, cause), alarm_id=alarm_id)


@dataclass(frozen=True, slots=True)
class ReceiverStatus:
    """The receiver's own health (beacon id 0), about every 10 s.

    ``uptime`` in seconds since the receiver powered up; ``frames_received`` from beacons
    since then; ``noise_floor`` in dBm.
    """

    TYPE: ClassVar[FrameType] = FrameType.RECEIVER_STATUS
    SIZE: ClassVar[int] = _STATUS.size

    uptime: int
    frames_received: int
    noise_floor: int

    def pack(self) -> bytes:
        me = "ReceiverStatus"
        return _STATUS.pack(
            _check(me, "uptime", self.uptime, 0, 0xFFFFFFFF),
            _check(me, "frames_received", self.frames_received, 0, 0xFFFFFFFF),
            _check(me, "noise_floor", self.noise_floor, -128, 127),
        )

    @classmethod
    def unpack_from(cls, buf: bytes | bytearray, offset: int = 0) -> ReceiverStatus:
        uptime, frames, noise = _STATUS.unpack_from(buf, offset)
        return cls(uptime=uptime, frames_received=frames, noise_floor=noise)


@dataclass(frozen=True, slots=True)
class Hello:
    """A beacon joined the receiver.

    ``firmware`` is the beacon's firmware version (u16, major in the high byte);
    ``model`` a vendor model number; ``wearer_age`` in years (for the 85% of (220 - age)
    heart-rate limit); ``rated_pressure`` the SCBA cylinder's rated pressure in bar.
    """

    TYPE: ClassVar[FrameType] = FrameType.HELLO
    SIZE: ClassVar[int] = _HELLO.size

    firmware: int
    model: int
    wearer_age: int
    rated_pressure: float

    def pack(self) -> bytes:
        return _HELLO.pack(
            _check("Hello", "firmware", self.firmware, 0, 0xFFFF),
            _check("Hello", "model", self.model, 0, 255),
            _check("Hello", "wearer_age", self.wearer_age, 0, 255),
            _fixed("Hello", "rated_pressure", self.rated_pressure, 10, 0, 0xFFFF),
        )

    @classmethod
    def unpack_from(cls, buf: bytes | bytearray, offset: int = 0) -> Hello:
        firmware, model, age, rated = _HELLO.unpack_from(buf, offset)
        return cls(firmware=firmware, model=model, wearer_age=age, rated_pressure=rated / 10)


@dataclass(frozen=True, slots=True)
class Ack:
    """Gateway to receiver: a frame was received; for an alarm it stops the repeats.

    Sent with the acked frame's beacon id; ``acked_type`` and ``acked_seq`` are that frame's
    type and sequence number.
    """

    TYPE: ClassVar[FrameType] = FrameType.ACK
    SIZE: ClassVar[int] = _ACK.size

    acked_type: int
    acked_seq: int

    def pack(self) -> bytes:
        return _ACK.pack(
            _check("Ack", "acked_type", int(self.acked_type), 0, 255),
            _check("Ack", "acked_seq", self.acked_seq, 0, 255),
        )

    @classmethod
    def unpack_from(cls, buf: bytes | bytearray, offset: int = 0) -> Ack:
        acked_type, acked_seq = _ACK.unpack_from(buf, offset)
        return cls(acked_type=_known(FrameType, acked_type), acked_seq=acked_seq)


@dataclass(frozen=True, slots=True)
class Evacuate:
    """Gateway to receiver: tell the beacon's wearer to leave (beacon id 0: every beacon)."""

    TYPE: ClassVar[FrameType] = FrameType.EVACUATE
    SIZE: ClassVar[int] = 0

    def pack(self) -> bytes:
        return b""

    @classmethod
    def unpack_from(cls, buf: bytes | bytearray, offset: int = 0) -> Evacuate:
        return cls()


Message: TypeAlias = Telemetry | Alarm | ReceiverStatus | Hello | Ack | Evacuate
"""Any typed frame body."""

_MESSAGES: dict[int, type[Message]] = {
    cls.TYPE: cls for cls in (Telemetry, Alarm, ReceiverStatus, Hello, Ack, Evacuate)
}


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame: the typed ``message`` with its header's ``seq`` and ``beacon``."""

    seq: int
    beacon: int
    message: Message

    @property
    def type(self) -> FrameType:
        return self.message.TYPE

    def to_bytes(self) -> bytes:
        return encode(self.message, self.seq, self.beacon)


def encode(message: Message, seq: int, beacon: int) -> bytes:
    """The complete frame for ``message`` (sync to crc).

    Raises :class:`~edgesdk.errors.ProtocolError` if ``seq`` is not a u8, ``beacon`` not a
    u32, or a value of ``message`` does not fit its field.
    """
    payload = message.pack()
    head = _HEAD.pack(
        MIN_LENGTH + len(payload),
        message.TYPE,
        _check("frame", "seq", seq, 0, 255),
        _check("frame", "beacon", beacon, 0, 0xFFFFFFFF),
    )
    body = head + payload
    return SYNC + body + crc16(body).to_bytes(2, "little")


def decode(data: bytes | bytearray) -> Frame:
    """Exactly one complete frame, or :class:`~edgesdk.errors.ProtocolError` saying why not.

    For streams (noise, partial reads) use :class:`FrameDecoder` instead.
    """
    if len(data) < MIN_LENGTH + 5:
        raise ProtocolError(f"beacon frame too short: {len(data)} bytes, at least 11 needed")
    if data[:2] != SYNC:
        raise ProtocolError(f"beacon frame must start with AA 55, not {bytes(data[:2]).hex(' ')}")
    length = data[2]
    if length < MIN_LENGTH:
        raise ProtocolError(f"beacon frame len {length} is below the minimum {MIN_LENGTH}")
    if len(data) != length + 5:
        raise ProtocolError(f"beacon frame len {length} needs {length + 5} bytes, got {len(data)}")
    want = crc16(data[2 : 3 + length])
    got = int.from_bytes(data[3 + length :], "little")
    if want != got:
        raise ProtocolError(f"beacon frame CRC mismatch: computed {want:04X}, frame has {got:04X}")
    ftype, seq, beacon = _TYPE_SEQ_BEACON.unpack_from(data, 3)
    cls = _MESSAGES.get(ftype)
    if cls is None:
        raise ProtocolError(f"unknown beacon frame type 0x{ftype:02X}")
    if length - MIN_LENGTH != cls.SIZE:
        raise ProtocolError(
            f"beacon {cls.__name__} payload must be {cls.SIZE} bytes, got {length - MIN_LENGTH}"
        )
    return Frame(seq=seq, beacon=beacon, message=cls.unpack_from(data, 9))


class FrameDecoder:
    """A streaming frame parser that survives noise, cut frames and corrupt frames.

    ``feed(chunk)`` returns the frames completed by ``chunk``; ``flush()`` ends the stream
    (port closed or unplugged) and returns what can still be recovered. Nothing here raises
    on bad input. Damage is counted:

    * ``noise_bytes``: bytes outside any CRC-valid frame (line noise, and the remains of
      rejected candidates);
    * ``bad_length``: a sync followed by a ``len`` below 6 (or above ``max_length``);
    * ``bad_crc``: a complete candidate whose CRC fails, with no other frame inside it;
    * ``truncated``: a candidate cut short, either by another frame starting inside it
      (the receiver dropped bytes, or noise held a false sync) or by the end of the stream;
    * ``unknown_type`` / ``bad_payload_length``: CRC-valid frames this codec cannot read
      (skipped whole);
    * ``frames``: frames delivered.

    Resynchronisation restarts the search at the byte after a rejected sync, never after
    the rejected candidate's claimed end: a real frame may start inside a false one. Each
    byte is scanned a bounded number of times (``bytes.find`` for the sync, one CRC per
    candidate), and at most one incomplete candidate (< :data:`MAX_FRAME_SIZE` bytes) stays
    buffered between calls.

    ``max_length`` (6..255, default 255 as the format allows) bounds the ``len`` accepted; a
    lower value rejects false syncs sooner, at the cost of counting longer frames of future
    types as ``bad_length``.
    """

    def __init__(self, *, max_length: int = 255) -> None:
        if not MIN_LENGTH <= max_length <= 255:
            raise ConfigError(
                f"must be in {MIN_LENGTH}..255 (got {max_length})",
                key="max_length",
                fix="use 255 to accept every length the format allows",
            )
        self._max_length = max_length
        self._buf = bytearray()
        self._offset = 0  # stream position of _buf[0]
        self._pending: list[int] = []  # stream end positions of CRC-rejected candidates
        self.bytes_fed = 0
        self.frames = 0
        self.noise_bytes = 0
        self.bad_length = 0
        self.bad_crc = 0
        self.truncated = 0
        self.unknown_type = 0
        self.bad_payload_length = 0

    @property
    def buffered(self) -> int:
        """Bytes held back: at most one incomplete candidate (or a lone trailing AA)."""
        return len(self._buf)

    def counters(self) -> dict[str, int]:
        """All counters by name (for driver health and metrics)."""
        return {
            "bytes_fed": self.bytes_fed,
            "frames": self.frames,
            "noise_bytes": self.noise_bytes,
            "bad_length": self.bad_length,
            "bad_crc": self.bad_crc,
            "truncated": self.truncated,
            "unknown_type": self.unknown_type,
            "bad_payload_length": self.bad_payload_length,
        }

    def feed(self, data: bytes | bytearray) -> list[Frame]:
        """Add bytes from the stream; return the frames they complete, in order."""
        if data:
            self._buf += data
            self.bytes_fed += len(data)
        return self._scan(final=False)

    def flush(self) -> list[Frame]:
        """End of stream: reject what is incomplete, return frames still found, clear."""
        return self._scan(final=True)

    def _settle(self, pos: int, *, frame_starts: bool) -> None:
        """Classify rejected candidates once the scan reaches stream position ``pos``.

        A candidate that ended at or before ``pos`` was complete and alone: bad CRC. One
        still open when another complete candidate starts at ``pos`` was cut short by it:
        truncated.
        """
        keep: list[int] = []
        for end in self._pending:
            if end <= pos:
                self.bad_crc += 1
            elif frame_starts:
                self.truncated += 1
            else:
                keep.append(end)
        self._pending = keep

    def _drop(self, start: int, stop: int) -> None:
        self.noise_bytes += stop - start
        if self._pending:
            self._settle(self._offset + stop, frame_starts=False)

    def _scan(self, *, final: bool) -> list[Frame]:
        buf = self._buf
        n = len(buf)
        out: list[Frame] = []
        i = 0
        while True:
            j = buf.find(SYNC, i)
            if j < 0:
                # keep a trailing AA: it may be the first half of a sync
                stop = n - 1 if not final and n > i and buf[n - 1] == 0xAA else n
                if stop > i:
                    self._drop(i, stop)
                i = stop
                break
            if j > i:
                self._drop(i, j)
            if n - j < 3:
                if not final:
                    i = j
                    break
                self.truncated += 1  # the stream ended inside a frame
                self._drop(j, j + 2)
                i = j + 2
                continue
            length = buf[j + 2]
            if length < MIN_LENGTH or length > self._max_length:
                self.bad_length += 1
                self._drop(j, j + 2)
                i = j + 2
                continue
            size = length + 5
            if n - j < size:
                if not final:
                    i = j
                    break
                self.truncated += 1  # the stream ended inside a frame
                self._drop(j, j + 2)
                i = j + 2
                continue
            stop = j + 3 + length
            if self._pending:
                self._settle(self._offset + j, frame_starts=True)
            if crc16(buf[j + 2 : stop]) != buf[stop] | buf[stop + 1] << 8:
                self._pending.append(self._offset + j + size)
                self._drop(j, j + 2)
                i = j + 2  # a real frame may start inside this false one
                continue
            ftype, seq, beacon = _TYPE_SEQ_BEACON.unpack_from(buf, j + 3)
            cls = _MESSAGES.get(ftype)
            if cls is None:
                self.unknown_type += 1
            elif length - MIN_LENGTH != cls.SIZE:
                self.bad_payload_length += 1
            else:
                out.append(Frame(seq=seq, beacon=beacon, message=cls.unpack_from(buf, j + 9)))
                self.frames += 1
            i = j + size
        del buf[:i]
        self._offset += i
        if final and self._pending:
            self._settle(self._offset, frame_starts=False)
        return out
