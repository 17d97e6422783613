"""Bounded memory under hostile input: the beacon decoder's buffer, and every CBOR decoder.

Stated limits (tracemalloc peak of Python allocations, measured around the call only):

* the beacon :class:`FrameDecoder` fed a 2 MiB flood (20 MiB in the long variant) of
  false syncs, cut frames and noise keeps ``buffered < MAX_FRAME_SIZE`` after every read
  and peaks under :data:`BEACON_PEAK` while doing it;
* every decoder of signed batches and SenML, the verifier and the consumer stay *linear*
  in the input: a peak under ``DECODE_BASE + DECODE_FACTOR * len(input)`` for inputs of up
  to 256 KiB, whatever the input claims (heads promising 2**64 bytes, string references
  and shared values that repeat one long string thousands of times, base names repeated
  by thousands of records, nesting 80000 deep).

Why a factor and not a constant: decoding makes Python objects, and a record of 3 bytes
(``{2: 0}``) becomes a dict, a Record and a Reading, about 115 bytes of objects per input
byte; SenML names at their 256-character limit add the rest. What the bound rules out is
amplification: before the fixes, 69 kB of string references made a 180 MB error message
and 120 kB of records repeating one base name resolved to 600 MB of names.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import cbor2
from hypothesis import given
from hypothesis import strategies as st

from drivers.beacon_serial.codec import MAX_FRAME_SIZE, SYNC, Alarm, FrameDecoder, encode
from edgesdk import batch, cose, senml
from edgesdk.consumer import Inspector, SiteTrust
from tests.reliability.batches import verifier
from tests.reliability.fuzzkit import SCALES, FuzzCount, fuzz_settings, peak_memory
from tests.reliability.hostile import cbor_head
from tests.reliability.signed import CA_CERT, GW1, payload_map, seal_map

BEACON_PEAK = 256 * 1024
DECODE_BASE = 2 * 1024 * 1024
DECODE_FACTOR = 256
MAX_INPUT = 256 * 1024


def _flood(rng: random.Random, size: int) -> list[bytes]:
    """``size`` bytes of false syncs, frames cut short, valid frames and noise, in reads."""
    frame = encode(Alarm(1, 7), 1, 42)
    parts: list[bytes] = []
    total = 0
    while total < size:
        pick = rng.random()
        if pick < 0.4:
            part = SYNC + bytes([rng.randrange(6, 256)]) + rng.randbytes(rng.randrange(0, 8))
        elif pick < 0.6:
            part = frame[: rng.randrange(1, len(frame))]
        elif pick < 0.7:
            part = frame
        else:
            part = rng.randbytes(rng.randrange(1, 64))
        parts.append(part)
        total += len(part)
    stream = b"".join(parts)
    chunks, at = [], 0
    while at < len(stream):
        step = rng.randrange(1, 8192)
        chunks.append(stream[at : at + step])
        at += step
    return chunks


@SCALES
def test_beacon_decoder_memory_under_flood(scale: int, fuzz: Callable[[str], FuzzCount]) -> None:
    count = fuzz("memory-beacon-flood")
    chunks = _flood(random.Random(26875 + scale), 2 * 1024 * 1024 * scale)
    decoder = FrameDecoder()
    worst = 0

    def feed_all() -> None:
        nonlocal worst
        for chunk in chunks:
            with count.example():
                decoder.feed(chunk)
                worst = max(worst, decoder.buffered)
                assert decoder.buffered < MAX_FRAME_SIZE

    peak = peak_memory(feed_all)
    assert worst < MAX_FRAME_SIZE and decoder.frames > 0
    assert peak < BEACON_PEAK, f"peak {peak} bytes while decoding a flood"
    with count.example():  # one read of 1 MiB: buffered only for the call
        decoder.feed(b"".join(chunks)[: 1024 * 1024])
        assert decoder.buffered < MAX_FRAME_SIZE
        decoder.flush()
        assert decoder.buffered == 0


# -- inputs that claim or expand to far more than they are --------------------------------
# sizes drawn from the large end on purpose (hypothesis favours small integers)
_LONG = st.sampled_from([1_000, 20_000, 60_000]).map(lambda n: "x" * n)


@st.composite
def _packs(draw: st.DrawFn, refs: bool) -> bytes:
    """A SenML-shaped pack whose few bytes stand for one long string repeated many times.

    With ``refs``, CBOR string references and shared values do the repeating (any field, a
    map key, a list shared by itself 14 levels deep); without, a long base name does.
    """
    long = draw(_LONG)
    many = draw(st.sampled_from([100, 1000, 3000]))
    shapes = ["key", "value", "names", "units", "dag"] if refs else ["names", "dense"]
    shape = draw(st.sampled_from(shapes))
    pack: Any
    if shape == "key":
        pack = [{tuple([long] * many): 1, 0: "a/b", 2: 1}]
    elif shape == "value":
        pack = [{0: "a/b", 2: 1, "ext": [long] * many}]
    elif shape == "names":
        pack = [{-2: long + "/"}] + [{0: "x", 2: 1}] * many
    elif shape == "dense":  # the most objects per input byte: 3-byte records
        pack = [{-2: "d/" + "n" * draw(st.sampled_from([1, 254]))}]
        pack += [{2: 0}] * draw(st.sampled_from([1000, 20_000]))
    elif shape == "units":
        pack = [{0: "a/b", 2: 1, 1: long}] * many
    else:
        shared: list[Any] = [long]
        for _ in range(draw(st.integers(5, 14))):
            shared = [shared, shared]
        pack = [{0: "a/b", 2: 1, "ext": shared}]
    return cbor2.dumps(pack, string_referencing=refs, value_sharing=refs)


_huge_claims = st.builds(
    lambda prefix, major, tail: prefix + cbor_head(major, 2**63, 8) + tail,
    st.sampled_from([b"", b"\x81", b"\x84\x40\xa0", b"\xd2\x84\x40\xa0\x40"]),
    st.sampled_from([2, 3, 4, 5]),
    st.binary(max_size=64).map(lambda b: b * 64),
)
_deep = st.builds(
    lambda prefix, depth: prefix * depth,
    st.sampled_from([b"\x81", b"\x9f", b"\xd8\x1c\x81", b"\xa1\x00"]),
    st.sampled_from([1_000, 10_000, 80_000]),
)

# (name, call) for every decoder; the consumer sees the input as an unverified state message
_TARGETS: dict[str, Callable[[bytes], Any]] = {
    "loads_strict": cose.loads_strict,
    "parse1": cose.parse1,
    "senml": lambda b: senml.unpack_readings(senml.decode_cbor(b)),
    "decode_payload": batch.decode_payload,
    "batch.decode": batch.decode,
    "verify": verifier().verify,
    "inspector": lambda b: Inspector(SiteTrust([CA_CERT])).feed("edge/v1/hq/gw1/state", b),
}


def _as_batch(pack: bytes) -> bytes:
    """A signed state message carrying the (tag-free) pack: what the consumer decodes first."""
    body = payload_map(stream="state", extra={"birth": {"boot": 1}})
    body["senml"] = cbor2.loads(pack)
    return seal_map(body, GW1)


@SCALES
def test_decoders_memory_on_amplifying_inputs(scale: int, fuzz: Callable[[str], FuzzCount]) -> None:
    count = fuzz("memory-decoders")
    peaks: dict[str, int] = dict.fromkeys(_TARGETS, 0)
    inputs = st.one_of(
        _packs(refs=True),
        _packs(refs=False),
        _packs(refs=False).map(_as_batch),
        _huge_claims,
        _deep,
    )

    @fuzz_settings(60, scale)
    @given(inputs, st.sampled_from(sorted(_TARGETS)))
    def prop(data: bytes, target: str) -> None:
        with count.example():
            assert len(data) <= MAX_INPUT
            peak = peak_memory(lambda: _TARGETS[target](data))
            peaks[target] = max(peaks[target], peak)
            limit = DECODE_BASE + DECODE_FACTOR * len(data)
            assert peak < limit, f"{target}: peak {peak} bytes for {len(data)} input bytes"

    prop()
    assert all(peaks.values()), f"some decoders were never measured: {peaks}"
