"""Fuzzing the beacon receiver's serial codec: ``decode`` and the streaming ``FrameDecoder``.

Documented contract (``drivers/beacon_serial/codec.py``): :func:`decode` returns a frame or
raises :class:`~edgesdk.errors.ProtocolError`; :meth:`FrameDecoder.feed` never raises on
bad input and keeps at most one incomplete candidate (< ``MAX_FRAME_SIZE`` bytes) between
calls. Streams are built from valid frames of every type, CRC-valid frames of unknown type
or wrong payload size, mutants of frames, false syncs and noise, then cut at random points.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from drivers.beacon_serial.codec import (
    MAX_FRAME_SIZE,
    SYNC,
    Ack,
    Alarm,
    Evacuate,
    Frame,
    FrameDecoder,
    Hello,
    Message,
    ReceiverStatus,
    Telemetry,
    TelemetryFlags,
    crc16,
    decode,
    encode,
)
from edgesdk.errors import ProtocolError
from tests.reliability.fuzzkit import SCALES, FuzzCount, expect, fuzz_settings
from tests.reliability.hostile import mutants

_U8, _U16, _U32 = st.integers(0, 255), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)
_I8 = st.integers(-128, 127)

messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(
        Telemetry,
        heart_rate=st.none() | st.integers(1, 255),
        skin_temperature=st.integers(-32768, 32767).map(lambda r: r / 100),
        ambient_temperature=st.integers(-32768, 32767).map(lambda r: r / 10),
        motion=_U16,
        scba_pressure=st.none() | st.integers(0, 0xFFFE).map(lambda r: r / 10),
        battery=_U8,
        flags=_U8.map(TelemetryFlags),
        rssi=_I8,
    ),
    st.builds(Alarm, cause=_U8, alarm_id=_U8),
    st.builds(ReceiverStatus, uptime=_U32, frames_received=_U32, noise_floor=_I8),
    st.builds(
        Hello,
        firmware=_U16,
        model=_U8,
        wearer_age=_U8,
        rated_pressure=_U16.map(lambda r: r / 10),
    ),
    st.builds(Ack, acked_type=_U8, acked_seq=_U8),
    st.just(Evacuate()),
)

valid_frames = st.builds(encode, messages, _U8, _U32)


def _foreign(ftype: int, seq: int, beacon: int, payload: bytes) -> bytes:
    """A frame with a correct CRC that this codec may not know (type or payload size)."""
    body = bytes([6 + len(payload), ftype, seq]) + beacon.to_bytes(4, "little") + payload
    return SYNC + body + crc16(body).to_bytes(2, "little")


foreign_frames = st.builds(_foreign, _U8, _U8, _U32, st.binary(max_size=249))

# A handful of fixed frames: the mutation corpus (and splice donors).
_CORPUS = [
    encode(Telemetry(72, 36.5, 25.0, 180, 250.0, 90, TelemetryFlags(0), -60), 1, 0x0A0B0C0D),
    encode(Alarm(1, 7), 2, 42),
    encode(ReceiverStatus(3600, 12345, -95), 3, 0),
    encode(Hello(0x0102, 3, 35, 300.0), 4, 42),
    encode(Ack(2, 2), 5, 42),
    encode(Evacuate(), 6, 0),
]

false_syncs = st.builds(lambda n, tail: (SYNC + bytes([n])) + tail, _U8, st.binary(max_size=8))

segments = st.one_of(
    valid_frames,
    foreign_frames,
    mutants(_CORPUS),
    false_syncs,
    st.binary(max_size=40),
    st.sampled_from([b"\xaa", b"\x55", SYNC, SYNC * 3, b"\xaa" * 5]),
)


@st.composite
def chunked(draw: st.DrawFn, stream: bytes) -> list[bytes]:
    """``stream`` cut at random points into the reads a serial port might return."""
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    bounds = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


def _run(decoder: FrameDecoder, chunks: list[bytes]) -> list[Frame]:
    frames: list[Frame] = []
    for chunk in chunks:
        got = decoder.feed(chunk)
        assert decoder.buffered < MAX_FRAME_SIZE, "more than one incomplete frame buffered"
        frames += got
    frames += decoder.flush()
    assert decoder.buffered == 0
    return frames


@SCALES
def test_fuzz_beacon_decode(scale: int, fuzz: Callable[[str], FuzzCount]) -> None:
    """One frame in: a frame that re-encodes to exactly those bytes, or a ProtocolError."""
    count = fuzz("beacon-decode")
    seen = {"frames": 0, "errors": 0}

    @fuzz_settings(1200, scale)
    @given(
        st.one_of(valid_frames, foreign_frames, mutants(_CORPUS), st.binary(max_size=300)),
        st.booleans(),
    )
    def prop(data: bytes, as_bytearray: bool) -> None:
        with count.example():
            frame = expect(ProtocolError, lambda: decode(bytearray(data) if as_bytearray else data))
            seen["errors" if frame is None else "frames"] += 1
            if frame is not None:
                assert isinstance(frame, Frame)
                assert frame.to_bytes() == data

    prop()
    assert seen["frames"] and seen["errors"], f"the inputs missed a path: {seen}"


@SCALES
def test_fuzz_beacon_stream(scale: int, fuzz: Callable[[str], FuzzCount]) -> None:
    """Hostile streams in random reads: no exception, bounded buffer, same result as one read."""
    count = fuzz("beacon-stream")
    totals = dict.fromkeys(FrameDecoder().counters(), 0)

    @fuzz_settings(800, scale)
    @given(
        st.lists(segments, max_size=12)
        .map(b"".join)
        .flatmap(lambda s: st.tuples(st.just(s), chunked(s))),
        st.integers(6, 255),
    )
    def prop(stream_and_chunks: tuple[bytes, list[bytes]], max_length: int) -> None:
        stream, chunks = stream_and_chunks
        with count.example():
            pieces = FrameDecoder(max_length=max_length)
            frames = _run(pieces, chunks)
            whole = FrameDecoder(max_length=max_length)
            assert _run(whole, [stream]) == frames, "the cut points changed the frames"
            assert pieces.counters() == whole.counters(), "the cut points changed the counters"
            counters = pieces.counters()
            assert counters["bytes_fed"] == len(stream)
            assert counters["frames"] == len(frames)
            assert all(v >= 0 for v in counters.values())
            assert all(isinstance(f, Frame) for f in frames)
            for name, value in counters.items():
                totals[name] += value

    prop()
    # every kind of damage the decoder counts was met at least once (the fuzz is not vacuous)
    assert all(totals.values()), f"the streams never caused some counters: {totals}"


@SCALES
def test_fuzz_beacon_stream_keeps_intact_frames(
    scale: int, fuzz: Callable[[str], FuzzCount]
) -> None:
    """Valid frames among noise that holds no sync byte all come out, in order, unchanged."""
    count = fuzz("beacon-stream-recovery")
    noise = st.binary(max_size=30).map(lambda b: b.replace(b"\xaa", b"\x00"))

    @fuzz_settings(500, scale)
    @given(st.lists(st.tuples(noise, st.tuples(messages, _U8, _U32)), max_size=8), st.data())
    def prop(parts: list[tuple[bytes, tuple[Message, int, int]]], data: st.DataObject) -> None:
        with count.example():
            stream = b"".join(n + encode(*m) for n, m in parts)
            frames = _run(FrameDecoder(), data.draw(chunked(stream)))
            assert [f.to_bytes() for f in frames] == [encode(*m) for _, m in parts]

    prop()
