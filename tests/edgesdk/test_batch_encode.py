"""encode_payload assembles exactly cbor2's canonical bytes of the payload map, and sealed
batches of readings and blocks decode back to the readings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgesdk import batch
from edgesdk.batch import ZERO_DIGEST, BatchHeader, LostRange
from edgesdk.model import Event, EventState, Reading, ReadingBlock, ReadingLayout, Severity
from edgesdk.senml import pack_readings
from tests.edgesdk.senml_strategies import floats, int64, items, plain, typed

KEY = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PROPS = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
T0 = 1_767_225_600.0

stream_names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)
uint64 = st.integers(0, 2**64 - 1)


@st.composite
def headers(draw: st.DrawFn) -> BatchHeader:
    seq = draw(st.one_of(st.just(1), st.integers(1, 2**64 - 1)))
    prev = ZERO_DIGEST if seq == 1 else draw(st.binary(min_size=32, max_size=32).filter(any))
    t = draw(st.one_of(st.just(T0), st.floats(0, 4e9), floats.map(abs)))
    site, gw, stream = draw(stream_names), draw(stream_names), draw(stream_names)
    return BatchHeader(site, gw, stream, seq, prev, draw(uint64), t)


scalars = st.one_of(
    st.none(), st.booleans(), int64, floats, st.text(max_size=8), st.binary(max_size=8)
)
data_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
events = st.builds(
    Event,
    kind=st.sampled_from(["fire", "man-down", "camera-smoke"]),
    severity=st.sampled_from(list(Severity)),
    state=st.sampled_from(list(EventState)),
    source=stream_names,
    time=st.floats(0, 4e9),
    data=st.dictionaries(st.text(max_size=6), data_values, max_size=3),
    id=st.text(st.characters(codec="ascii"), min_size=1, max_size=32),
)
lost_ranges = st.tuples(stream_names, st.integers(1, 2**64 - 1), st.integers(0, 5)).map(
    lambda x: LostRange(x[0], x[1], min(x[1] + x[2], 2**64 - 1), "store-full")
)
# extension keys: short and long (a 24+ byte key has a longer CBOR head), non-ASCII too
extra_keys = st.one_of(
    st.from_regex(r"x[a-z_]{0,30}", fullmatch=True),
    st.text(min_size=1, max_size=30).filter(lambda k: k not in batch._STANDARD_KEYS),
)
extras = st.dictionaries(extra_keys, data_values, max_size=4)


def _event_dict(e: Event) -> dict[str, Any]:
    return {
        "id": e.id, "kind": e.kind, "sev": e.severity.value, "state": e.state.value,
        "src": e.source, "t": float(e.time), "data": dict(e.data),
    }  # fmt: skip


def reference_payload(
    header: BatchHeader,
    readings: Sequence[Reading | ReadingBlock],
    evs: Sequence[Event],
    lost: Sequence[LostRange],
    extra: dict[str, Any],
) -> bytes:
    """The payload map written out as docs/wire-format.md defines it, encoded by cbor2."""
    payload: dict[str, Any] = {
        "v": 1, "site": header.site, "gw": header.gw, "stream": header.stream,
        "seq": header.seq, "prev": header.prev, "boot": header.boot, "t": float(header.t or 0),
        "senml": pack_readings(readings), "events": [_event_dict(e) for e in evs],
    }  # fmt: skip
    if lost:
        payload["lost"] = [
            {"stream": x.stream, "first": x.first, "last": x.last, "reason": x.reason} for x in lost
        ]
    payload.update(extra)
    return cbor2.dumps(payload, canonical=True)


@PROPS
@given(
    headers(),
    items(max_size=8),
    st.lists(events, max_size=3),
    st.lists(lost_ranges, max_size=2),
    extras,
)
def test_encode_payload_is_cbor2_canonical_of_the_payload_map(
    header: BatchHeader,
    mix: list[Reading | ReadingBlock],
    evs: list[Event],
    lost: list[LostRange],
    extra: dict[str, Any],
) -> None:
    got = batch.encode_payload(header, readings=mix, events=evs, lost=lost, extra=extra)
    assert got == reference_payload(header, mix, evs, lost, extra)


@PROPS
@given(headers(), items(value=plain, number=int64, max_size=8), st.lists(events, max_size=2))
def test_sealed_blocks_and_readings_decode_to_the_readings(
    header: BatchHeader, mix: list[Reading | ReadingBlock], evs: list[Event]
) -> None:
    message = batch.seal(header, key=KEY, readings=mix, events=evs)
    got = batch.decode(message)
    want = [r for item in mix for r in ([item] if isinstance(item, Reading) else item)]
    assert len(got.readings) == len(want)
    for back, sent in zip(got.readings, want, strict=True):
        assert (back.device, back.name, back.time) == (sent.device, sent.name, sent.time)
        assert back.unit == (None if sent.unit is None else str(sent.unit))
        assert typed(back.value) == typed(sent.value)
    assert got.events == tuple(evs)


def test_a_modbus_panel_batch() -> None:
    """The gateway's case: blocks of 125 registers, one layout, read a little apart."""
    layout = ReadingLayout("panel1", [f"hr{i:03d}" for i in range(125)], ["Cel"] * 125)
    blocks = [ReadingBlock(layout, tuple(range(j, j + 125)), T0 + j * 0.25) for j in range(4)]
    mix: list[Reading | ReadingBlock] = [*blocks, Reading("panel1", "mains", True, None, T0 + 1)]
    header = BatchHeader("site1", "gw1", "telemetry", 2, b"\x01" * 32, 7, T0 + 2)
    payload = batch.encode_payload(header, readings=mix)
    assert payload == reference_payload(header, mix, [], [], {})
    senml = cbor2.loads(payload)["senml"]
    assert len(senml) == 501
    assert -4 not in senml[0]  # "mains" has no unit: no bu, each register carries "Cel"
    assert all(rec.get(1) == "Cel" for rec in senml[:500])
    # blocks alone: every register has a unit, so bu; the later blocks' records carry t
    message = batch.seal(header, key=KEY, readings=blocks)
    got = batch.decode(message)
    assert got.readings == tuple(r for b in blocks for r in b)
    senml = cbor2.loads(batch.encode_payload(header, readings=blocks))["senml"]
    assert senml[0][-4] == "Cel"
    assert not any(1 in rec for rec in senml)
    assert [rec.get(6) for rec in senml[::125]] == [None, 0.25, 0.5, 0.75]
    assert senml[1] == {0: "hr001", 2: 1}


def test_unencodable_readings_are_value_errors() -> None:
    header = BatchHeader("site1", "gw1", "telemetry", 1, ZERO_DIGEST, 0, T0)
    with pytest.raises(ValueError, match="cannot be encoded"):
        batch.encode_payload(header, readings=[Reading("d", "x", "\ud800", None, T0)])
    with pytest.raises(ValueError, match="cannot be encoded"):
        batch.encode_payload(header, extra={"x": object()})
