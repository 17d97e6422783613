"""Property tests for SenML: round trips of random packs and readings, and fuzzing.

Every property is bounded (max_examples) and keeps no example database, so the runs write
nothing into the checkout.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgesdk import senml
from edgesdk.model import Reading

BOUNDED = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
FUZZ = settings(BOUNDED, max_examples=300)

KNOWN = {"bver", "bn", "bt", "bu", "bv", "bs", "n", "u", "v", "vs", "vb", "s", "t", "ut", "vd"}

finite = st.floats(allow_nan=False, allow_infinity=False)
number = st.one_of(finite, st.integers(min_value=-(2**70), max_value=2**70))
text = st.text(max_size=12)
name = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9\-:./_]{0,8}", fullmatch=True)
json_scalar = st.one_of(st.none(), st.booleans(), number, text)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)
extension_label = text.filter(lambda k: k not in KNOWN and not k.endswith("_"))

FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "bver": st.integers(min_value=1, max_value=10),
    "bn": name,
    "bt": number,
    "bu": text,
    "bv": number,
    "bs": number,
    "n": name,
    "u": text,
    "v": number,
    "vs": text,
    "vb": st.booleans(),
    "s": number,
    "t": number,
    "ut": number,
    "vd": st.binary(max_size=12),
}


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    """A record whose known fields all have the right types (not necessarily resolvable)."""
    labels = draw(st.lists(st.sampled_from(sorted(FIELDS)), unique=True, max_size=6))
    rec: dict[str, Any] = {label: draw(FIELDS[label]) for label in labels}
    rec.update(draw(st.dictionaries(extension_label, json_value, max_size=2)))
    return rec


packs = st.lists(records(), max_size=6)

moderate = st.one_of(
    st.floats(min_value=-1e12, max_value=1e12), st.integers(min_value=-(2**53), max_value=2**53)
)
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "v": moderate,
    "vs": text,
    "vb": st.booleans(),
    "vd": st.binary(max_size=8),
}
OPTIONAL: dict[str, st.SearchStrategy[Any]] = {
    "bn": name,
    "bt": moderate,
    "bu": text,
    "bv": moderate,
    "bs": moderate,
    "u": text,
    "s": moderate,
    "t": moderate,
    "ut": moderate,
}


@st.composite
def valid_records(draw: st.DrawFn) -> dict[str, Any]:
    """A record that resolves: a name and exactly one value, plus optional fields."""
    value_label = draw(st.sampled_from(sorted(VALUES)))
    rec: dict[str, Any] = {"n": draw(name), value_label: draw(VALUES[value_label])}
    for label in draw(st.lists(st.sampled_from(sorted(OPTIONAL)), unique=True, max_size=4)):
        rec[label] = draw(OPTIONAL[label])
    return rec


valid_packs = st.lists(valid_records(), min_size=1, max_size=6)


def typed(obj: Any) -> Any:
    """A structure that compares equal only if values *and* their types match."""
    if isinstance(obj, dict):
        return {(type(k).__name__, k): typed(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [typed(v) for v in obj]
    if isinstance(obj, float):
        return ("float", obj, math.copysign(1.0, obj))
    return (type(obj).__name__, obj)


@BOUNDED
@given(packs)
def test_json_round_trip(pack: senml.Pack) -> None:
    text_form = senml.encode_json(pack)
    assert typed(senml.decode_json(text_form)) == typed(pack)
    assert typed(senml.decode_json(text_form.encode("utf-8"))) == typed(pack)


@BOUNDED
@given(packs)
def test_cbor_round_trip(pack: senml.Pack) -> None:
    cbor_pack = senml.to_cbor_labels(pack)
    wire = senml.encode_cbor(cbor_pack)
    assert typed(senml.decode_cbor(wire)) == typed(cbor_pack)
    assert senml.encode_cbor(senml.decode_cbor(wire)) == wire
    assert typed(senml.to_json_labels(senml.decode_cbor(wire))) == typed(pack)


@BOUNDED
@given(valid_packs)
def test_valid_packs_resolve(pack: senml.Pack) -> None:
    records = senml.resolve(pack)
    assert len(records) == len(pack)
    base_name = ""
    for rec, raw in zip(records, pack, strict=True):
        base_name = raw.get("bn", base_name)
        assert rec.name == base_name + raw["n"]
        assert (rec.value, rec.string_value, rec.bool_value, rec.data_value).count(None) == 3


@BOUNDED
@given(st.one_of(packs, valid_packs))
def test_both_label_styles_resolve_alike(pack: senml.Pack) -> None:
    def outcome(p: Any) -> Any:
        try:
            return typed([r.__getattribute__(f) for r in senml.resolve(p) for f in r.__slots__])
        except senml.SenMLError:
            return "rejected"

    expected = outcome(pack)
    assert outcome(senml.to_cbor_labels(pack)) == expected
    assert outcome(senml.decode_cbor(senml.encode_cbor(senml.to_cbor_labels(pack)))) == expected
    assert outcome(senml.decode_json(senml.encode_json(pack))) == expected


device = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9\-:._]{0,6}", fullmatch=True)
reading_name = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9\-:./_]{0,8}", fullmatch=True)
value = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64 - 1),  # CBOR major types 0 and 1
    finite,
    st.text(max_size=10),
    st.binary(max_size=10),
)
epoch = st.floats(min_value=1.5e9, max_value=2.2e9, allow_nan=False)
any_time = st.one_of(epoch, epoch, finite)


@st.composite
def reading_lists(draw: st.DrawFn) -> list[Reading]:
    devices = draw(st.lists(device, min_size=1, max_size=3, unique=True))
    base = draw(epoch)
    items = st.builds(
        Reading,
        device=st.sampled_from(devices),
        name=reading_name,
        value=value,
        unit=st.none() | st.sampled_from(["Cel", "%RH", "%/m", "1/min", "/", "Pa"]),
        time=st.one_of(any_time, st.floats(min_value=0, max_value=600).map(lambda d: base + d)),
    )
    return draw(st.lists(items, max_size=25))


@BOUNDED
@given(reading_lists())
def test_readings_round_trip(readings: list[Reading]) -> None:
    wire = senml.encode_cbor(senml.pack_readings(readings))
    assert senml.encode_cbor(senml.pack_readings(readings)) == wire  # deterministic
    back = senml.unpack_readings(senml.decode_cbor(wire))
    assert len(back) == len(readings)
    for got, want in zip(back, readings, strict=True):
        assert (got.device, got.name, got.unit) == (want.device, want.name, want.unit)
        assert type(got.value) is type(want.value)
        assert got.value == want.value
        assert abs(got.time - want.time) <= 1e-6
        assert got.time == want.time  # stronger than promised: bt + t is checked exact


def _only_senml_errors(func: Any, arg: Any) -> Any:
    try:
        return func(arg)
    except senml.SenMLError:
        return None


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_decode_cbor_bytes(data: bytes) -> None:
    pack = _only_senml_errors(senml.decode_cbor, data)
    if pack is not None:
        assert isinstance(pack, list)
        _only_senml_errors(senml.resolve, pack)


@FUZZ
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_fuzz_decode_json(data: bytes | str) -> None:
    pack = _only_senml_errors(senml.decode_json, data)
    if pack is not None:
        assert isinstance(pack, list)
        _only_senml_errors(senml.resolve, pack)


cbor_key = st.one_of(
    st.integers(min_value=-8, max_value=10),
    st.sampled_from(sorted(KNOWN)),
    text,
    st.booleans(),
    st.floats(),
    st.none(),
)
cbor_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=8),
    st.binary(max_size=8),
)
cbor_structure = st.recursive(
    cbor_scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(cbor_key, inner, max_size=5),
    max_leaves=20,
)


@FUZZ
@given(cbor_structure)
def test_fuzz_resolve_arbitrary_structures(obj: Any) -> None:
    _only_senml_errors(senml.resolve, obj)
    _only_senml_errors(senml.unpack_readings, obj)
    _only_senml_errors(senml.to_json_labels, obj)
    wire = _only_senml_errors(senml.encode_cbor, [obj] if isinstance(obj, dict) else obj)
    if wire is not None:
        pack = _only_senml_errors(senml.decode_cbor, wire)
        if pack is not None:
            _only_senml_errors(senml.resolve, pack)


@FUZZ
@given(st.lists(st.dictionaries(cbor_key, cbor_scalar, max_size=6), max_size=5))
def test_fuzz_resolve_record_lists(pack: list[dict[Any, Any]]) -> None:
    _only_senml_errors(senml.resolve, pack)
    _only_senml_errors(senml.unpack_readings, pack)
