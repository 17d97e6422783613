"""The beacon frame codec: byte layout, CRC, errors, and the streaming decoder's resync."""

from __future__ import annotations

import contextlib
import math
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.beacon_serial.codec import (
    MAX_FRAME_SIZE,
    SYNC,
    Ack,
    Alarm,
    AlarmCause,
    Evacuate,
    Frame,
    FrameDecoder,
    FrameType,
    Hello,
    Message,
    ReceiverStatus,
    Telemetry,
    TelemetryFlags,
    crc16,
    decode,
    encode,
)
from edgesdk.errors import ConfigError, ProtocolError


def bitwise_crc(data: bytes) -> int:
    """CRC-16/CCITT-FALSE written out bit by bit, independent of the codec's."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def reference_decode(data: bytes) -> tuple[list[Frame], int]:
    """The resync rule stated as plainly as possible (quadratic, for tests only).

    At each position: a complete, CRC-valid frame is taken whole; anything else moves the
    search on by one byte. Returns the readable frames and the bytes of all CRC-valid frames.
    """
    frames: list[Frame] = []
    valid_bytes = 0
    i = 0
    while i < len(data):
        if data[i : i + 2] == SYNC and i + 3 <= len(data) and data[i + 2] >= 6:
            size = data[i + 2] + 5
            chunk = data[i : i + size]
            crc_ok = len(chunk) == size and bitwise_crc(chunk[2:-2]) == int.from_bytes(
                chunk[-2:], "little"
            )
            if crc_ok:
                valid_bytes += size
                # an unknown type or a bad payload length is skipped whole
                with contextlib.suppress(ProtocolError):
                    frames.append(decode(chunk))
                i += size
                continue
        i += 1
    return frames, valid_bytes


# --- strategies: every value on the wire's grid, so encode/decode round-trips exactly ----

telemetries = st.builds(
    Telemetry,
    heart_rate=st.none() | st.integers(1, 255),
    skin_temperature=st.integers(-32768, 32767).map(lambda r: r / 100),
    ambient_temperature=st.integers(-32768, 32767).map(lambda r: r / 10),
    motion=st.integers(0, 0xFFFF),
    scba_pressure=st.none() | st.integers(0, 0xFFFE).map(lambda r: r / 10),
    battery=st.integers(0, 255),
    flags=st.integers(0, 255).map(TelemetryFlags),
    rssi=st.integers(-128, 127),
)
messages: st.SearchStrategy[Message] = st.one_of(
    telemetries,
    st.builds(Alarm, cause=st.integers(0, 255), alarm_id=st.integers(0, 255)),
    st.builds(
        ReceiverStatus,
        uptime=st.integers(0, 2**32 - 1),
        frames_received=st.integers(0, 2**32 - 1),
        noise_floor=st.integers(-128, 127),
    ),
    st.builds(
        Hello,
        firmware=st.integers(0, 0xFFFF),
        model=st.integers(0, 255),
        wearer_age=st.integers(0, 255),
        rated_pressure=st.integers(0, 0xFFFF).map(lambda r: r / 10),
    ),
    st.builds(Ack, acked_type=st.integers(0, 255), acked_seq=st.integers(0, 255)),
    st.just(Evacuate()),
)
frames = st.builds(
    Frame, seq=st.integers(0, 255), beacon=st.integers(0, 2**32 - 1), message=messages
)


# --- CRC and layout -----------------------------------------------------------------------


def test_crc_check_value() -> None:
    assert crc16(b"123456789") == 0x29B1
    assert bitwise_crc(b"123456789") == 0x29B1


@given(st.binary(max_size=300))
def test_crc_matches_bitwise(data: bytes) -> None:
    assert crc16(data) == bitwise_crc(data)


def test_telemetry_layout_field_by_field() -> None:
    t = Telemetry(
        heart_rate=142,
        skin_temperature=36.55,
        ambient_temperature=-4.5,
        motion=734,
        scba_pressure=241.3,
        battery=87,
        flags=TelemetryFlags.SENSOR_CONTACT | TelemetryFlags.FALL,
        rssi=-67,
    )
    raw = encode(t, 7, 0x0A0B0C0D)
    body = bytes([18, 0x01, 7]) + (0x0A0B0C0D).to_bytes(4, "little")
    body += struct.pack("<BhhHHBBb", 142, 3655, -45, 734, 2413, 87, 0x06, -67)
    assert raw == b"\xaa\x55" + body + bitwise_crc(body).to_bytes(2, "little")
    assert len(raw) == 2 + 1 + 18 + 2
    got = decode(raw)
    assert got == Frame(seq=7, beacon=0x0A0B0C0D, message=t)
    assert got.type is FrameType.TELEMETRY
    assert got.to_bytes() == raw
    message = got.message
    assert isinstance(message, Telemetry)
    assert message.fall
    assert message.sensor_contact
    assert not message.distress
    assert not message.low_battery


def test_unknown_and_none_values() -> None:
    t = Telemetry(None, 0.0, 0.0, 0, None, 0, TelemetryFlags(0xF0), 0)
    raw = encode(t, 0, 1)
    assert raw[9] == 0  # heart rate 0 means unknown
    assert raw[16:18] == b"\xff\xff"  # SCBA pressure 0xFFFF means no cylinder
    back = decode(raw).message
    assert isinstance(back, Telemetry)
    assert back.heart_rate is None
    assert back.scba_pressure is None
    assert int(back.flags) == 0xF0  # unknown flag bits are kept


def test_known_causes_become_enums_unknown_stay_ints() -> None:
    assert decode(encode(Alarm(cause=2, alarm_id=9), 1, 5)).message == Alarm(AlarmCause.FALL, 9)
    alarm = decode(encode(Alarm(cause=77, alarm_id=9), 1, 5)).message
    assert isinstance(alarm, Alarm)
    assert alarm.cause == 77
    assert not isinstance(alarm.cause, AlarmCause)
    ack = decode(encode(Ack(acked_type=0x02, acked_seq=3), 1, 5)).message
    assert isinstance(ack, Ack)
    assert ack.acked_type is FrameType.ALARM


@given(frames)
def test_roundtrip(frame: Frame) -> None:
    raw = encode(frame.message, frame.seq, frame.beacon)
    assert raw[:2] == SYNC
    assert raw[2] == len(raw) - 5 == 6 + frame.message.SIZE
    assert bitwise_crc(raw[2:-2]) == int.from_bytes(raw[-2:], "little")
    assert decode(raw) == frame


# --- errors -------------------------------------------------------------------------------


_OK = Telemetry(120, 36.0, 25.0, 300, 250.0, 80, TelemetryFlags(0), -60)


@pytest.mark.parametrize(
    ("message", "seq", "beacon", "needle"),
    [
        (Telemetry(0, 36.0, 25.0, 300, 250.0, 80, TelemetryFlags(0), -60), 0, 1, "heart_rate"),
        (Telemetry(256, 36.0, 25.0, 300, 250.0, 80, TelemetryFlags(0), -60), 0, 1, "heart_rate"),
        (Telemetry(120, 400.0, 25.0, 300, 250.0, 80, TelemetryFlags(0), -60), 0, 1, "skin"),
        (Telemetry(120, math.nan, 25.0, 300, 250.0, 80, TelemetryFlags(0), -60), 0, 1, "finite"),
        (Telemetry(120, 36.0, 25.0, -1, 250.0, 80, TelemetryFlags(0), -60), 0, 1, "motion"),
        (Telemetry(120, 36.0, 25.0, 300, 6553.5, 80, TelemetryFlags(0), -60), 0, 1, "scba"),
        (Telemetry(120, 36.0, 25.0, 300, 250.0, 80, TelemetryFlags(0), -129), 0, 1, "rssi"),
        (Alarm(cause=1, alarm_id=256), 0, 1, "alarm_id"),
        (ReceiverStatus(uptime=-1, frames_received=0, noise_floor=-90), 0, 0, "uptime"),
        (Hello(firmware=1, model=1, wearer_age=30, rated_pressure=-1.0), 0, 1, "rated"),
        (_OK, 256, 1, "seq"),
        (_OK, 0, 2**32, "beacon"),
        (_OK, 0, -1, "beacon"),
    ],
)
def test_encode_rejects_values_that_do_not_fit(
    message: Message, seq: int, beacon: int, needle: str
) -> None:
    with pytest.raises(ProtocolError, match=needle):
        encode(message, seq, beacon)


def _raw(ftype: int, payload: bytes, *, length: int | None = None) -> bytes:
    body = bytes([6 + len(payload) if length is None else length, ftype, 1]) + b"\x02\0\0\0"
    body += payload
    return SYNC + body + bitwise_crc(body).to_bytes(2, "little")


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"\xaa\x55\x06", "too short"),
        (b"\xab\x55" + bytes(9), "AA 55"),
        (_raw(0x82, b"", length=5), "below the minimum"),
        (_raw(0x82, b"") + b"\0", "needs 11 bytes"),
        (_raw(0x82, b"")[:-1] + b"\0", "CRC"),
        (_raw(0x7F, b""), "unknown beacon frame type 0x7F"),
        (_raw(0x01, bytes(11)), "payload must be 12 bytes"),
    ],
)
def test_decode_rejects_bad_frames(data: bytes, needle: str) -> None:
    with pytest.raises(ProtocolError, match=needle):
        decode(data)


def test_max_length_is_checked() -> None:
    with pytest.raises(ConfigError, match="max_length"):
        FrameDecoder(max_length=5)


# --- the streaming decoder ----------------------------------------------------------------

_EVAC = encode(Evacuate(), 1, 42)
_ALARM = encode(Alarm(AlarmCause.DISTRESS, 3), 2, 42)


def test_each_kind_of_damage_is_counted() -> None:
    dec = FrameDecoder()
    corrupt = bytearray(_ALARM)
    corrupt[-1] ^= 0x01
    stream = (
        b"\x00\x13\x55"  # noise
        + SYNC
        + b"\x03"  # len below 6: bad length
        + bytes(corrupt)  # bad CRC, alone
        + _ALARM[:8]  # cut short by the next frame: truncated
        + _raw(0x7F, b"\x01")  # valid CRC, unknown type
        + _raw(0x02, b"\x01")  # valid CRC, alarm payload one byte short
        + _ALARM
    )
    got = dec.feed(stream) + dec.flush()
    assert got == [Frame(2, 42, Alarm(AlarmCause.DISTRESS, 3))]
    c = dec.counters()
    assert c["frames"] == 1
    assert c["bad_length"] == 1
    assert c["bad_crc"] == 1
    assert c["truncated"] == 1
    assert c["unknown_type"] == 1
    assert c["bad_payload_length"] == 1
    valid = len(_raw(0x7F, b"\x01")) + len(_raw(0x02, b"\x01")) + len(_ALARM)
    assert c["noise_bytes"] == len(stream) - valid
    assert c["bytes_fed"] == len(stream)


def test_resync_restarts_inside_a_false_frame() -> None:
    # A false sync claims 40 bytes; a real frame starts 5 bytes later, inside that span.
    # Skipping the whole false frame would lose it; restarting after the false AA 55 keeps it.
    stream = SYNC + bytes([40, 0x01, 0x00]) + _EVAC + _ALARM + bytes(30)
    dec = FrameDecoder()
    got = dec.feed(stream) + dec.flush()
    assert [f.message for f in got] == [Evacuate(), Alarm(AlarmCause.DISTRESS, 3)]
    assert dec.truncated == 1
    assert dec.bad_crc == 0


def test_end_of_stream_inside_a_false_frame_still_delivers_what_follows() -> None:
    # A false sync claims 200 bytes; the frame behind it completes only at flush.
    dec = FrameDecoder()
    assert dec.feed(SYNC + bytes([200]) + _EVAC) == []
    assert dec.buffered == 3 + len(_EVAC)
    assert [f.message for f in dec.flush()] == [Evacuate()]
    assert dec.truncated == 1
    assert dec.buffered == 0


def test_lower_max_length_rejects_long_false_syncs_at_once() -> None:
    dec = FrameDecoder(max_length=18)
    assert [f.message for f in dec.feed(SYNC + bytes([200]) + _EVAC)] == [Evacuate()]
    assert dec.bad_length == 1


def test_a_trailing_aa_waits_for_its_pair() -> None:
    dec = FrameDecoder()
    assert dec.feed(b"\x01\x02" + _ALARM[:1]) == []
    assert dec.buffered == 1
    assert dec.noise_bytes == 2
    assert len(dec.feed(_ALARM[1:])) == 1


def test_buffer_stays_bounded_on_endless_garbage() -> None:
    dec = FrameDecoder()
    junk = (bytes(range(256)) + SYNC + b"\xff") * 400  # long false syncs everywhere
    for k in range(0, len(junk), 1000):
        dec.feed(junk[k : k + 1000])
        assert dec.buffered < MAX_FRAME_SIZE
    assert dec.frames == 0
    assert dec.noise_bytes + dec.buffered == len(junk)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000), st.lists(st.integers(1, 64), max_size=40))
def test_arbitrary_bytes_never_raise_and_match_the_reference(data: bytes, cuts: list[int]) -> None:
    dec = FrameDecoder()
    got: list[Frame] = []
    pos = 0
    for cut in [*cuts, len(data)]:
        got += dec.feed(data[pos : pos + cut])
        pos += cut
        assert dec.buffered < MAX_FRAME_SIZE
    got += dec.flush()
    want, valid_bytes = reference_decode(data)
    assert got == want
    assert dec.buffered == 0
    assert dec.noise_bytes + valid_bytes == len(data)


@st.composite
def stream_pieces(draw: st.DrawFn) -> list[bytes]:
    """Real frames with arbitrary junk around them: noise, false syncs, cut frames."""
    out: list[bytes] = []
    for frame in draw(st.lists(frames, min_size=1, max_size=8)):
        for _ in range(draw(st.integers(0, 3))):
            kind = draw(st.sampled_from(["noise", "sync", "cut"]))
            if kind == "noise":
                out.append(draw(st.binary(max_size=24)))
            elif kind == "sync":
                out.append(SYNC + draw(st.binary(max_size=2)))
            else:
                other = draw(frames).to_bytes()
                out.append(other[: draw(st.integers(1, len(other) - 1))])
        out.append(frame.to_bytes())
    return out


@settings(max_examples=200)
@given(stream_pieces(), st.integers(1, 50))
def test_chunking_does_not_matter(pieces: list[bytes], step: int) -> None:
    data = b"".join(pieces)
    whole = FrameDecoder()
    one = whole.feed(data) + whole.flush()
    by_byte = FrameDecoder()
    bytewise = [f for k in range(len(data)) for f in by_byte.feed(data[k : k + 1])]
    bytewise += by_byte.flush()
    chunked = FrameDecoder()
    parts = [f for k in range(0, len(data), step) for f in chunked.feed(data[k : k + step])]
    parts += chunked.flush()
    assert one == bytewise == parts == reference_decode(data)[0]
    assert whole.counters() == by_byte.counters() == chunked.counters()


@st.composite
def frames_with_safe_garbage(draw: st.DrawFn) -> tuple[list[Frame], bytes]:
    """Frames separated by garbage that cannot complete a valid frame on its own: bytes
    without AA, syncs with a len below 6, and frames cut short (whose false span reaches
    into the next real frame, so recovery needs the restart after the false sync)."""
    real = draw(st.lists(frames, min_size=1, max_size=10))
    data = bytearray()
    for frame in real:
        for _ in range(draw(st.integers(0, 3))):
            kind = draw(st.sampled_from(["noise", "short-len", "cut"]))
            if kind == "noise":
                data += draw(st.binary(max_size=24)).replace(b"\xaa", b"")
            elif kind == "short-len":
                data += SYNC + bytes([draw(st.integers(0, 5))])
            else:
                other = draw(frames).to_bytes()
                data += other[: draw(st.integers(1, len(other) - 1))]
        data += frame.to_bytes()
    return real, bytes(data)


# Derandomised: a cut frame's false span is CRC-checked against bytes of the next frame, and
# one such check in 65536 passes by chance; a fixed set of examples keeps the suite stable.
@settings(max_examples=300, derandomize=True)
@given(frames_with_safe_garbage())
def test_frames_between_garbage_are_all_recovered_in_order(
    case: tuple[list[Frame], bytes],
) -> None:
    real, data = case
    dec = FrameDecoder()
    got = dec.feed(data) + dec.flush()
    assert got == real
    assert dec.frames == len(real)
