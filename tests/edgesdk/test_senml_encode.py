"""encode_readings writes exactly cbor2's canonical bytes of pack_readings; bu and blocks.

The reference is always ``cbor2.dumps(pack_readings(items), canonical=True)``: the wire
format is defined by it, and the fast encoder must never differ by a byte.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Sequence
from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgesdk import senml
from edgesdk.model import Reading, ReadingBlock, ReadingLayout
from edgesdk.senml import _encode, encode_readings, pack_readings, unpack_readings
from edgesdk.senml._cbor import bytes_item, float_item, int_item, text_item
from edgesdk.senml._readings import _fast_unpack, _full_unpack
from tests.edgesdk.senml_strategies import (
    Level,
    Mode,
    Unit,
    floats,
    int64,
    items,
    plain,
    typed,
)

PROPS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
T0 = 1_767_225_600.0


def reference(items: Sequence[Reading | ReadingBlock]) -> bytes:
    return cbor2.dumps(pack_readings(items), canonical=True)


def flatten(items: Sequence[Reading | ReadingBlock]) -> list[Reading]:
    return [r for item in items for r in ([item] if isinstance(item, Reading) else item)]


def assert_same(back: list[Reading], want: list[Reading]) -> None:
    """Exact values (type and zero sign too); text units; times equal (an int comes back
    as a float)."""
    assert len(back) == len(want)
    for got, expected in zip(back, want, strict=True):
        assert (got.device, got.name) == (expected.device, expected.name)
        assert got.unit == (None if expected.unit is None else str(expected.unit))
        assert type(got.unit) is type(None if expected.unit is None else "")
        assert typed(got.value) == typed(expected.value)
        assert got.time == expected.time


# --- the CBOR items, one by one ----------------------------------------------------------


def test_every_half_precision_value_encodes_as_cbor2_does() -> None:
    for bits in range(0x10000):
        (value,) = struct.unpack(">e", bits.to_bytes(2, "big"))
        if value == value:  # NaN: not a reading value, and cbor2 writes one NaN for all
            assert float_item(value) == cbor2.dumps(value, canonical=True), hex(bits)


@PROPS
@given(st.one_of(floats, st.floats(width=32), st.floats()))
def test_float_items_match_cbor2(value: float) -> None:
    assert float_item(value) == cbor2.dumps(value, canonical=True)


@PROPS
@given(st.one_of(st.integers(), st.integers(-(2**65), 2**65)))
def test_int_items_match_cbor2(value: int) -> None:
    assert int_item(value) == cbor2.dumps(value, canonical=True)


@PROPS
@given(st.one_of(st.text(max_size=300), st.text(max_size=3).map(lambda s: s * 30000)))
def test_text_items_match_cbor2(value: str) -> None:
    assert text_item(value) == cbor2.dumps(value, canonical=True)


@PROPS
@given(st.one_of(st.binary(max_size=300), st.binary(max_size=2).map(lambda b: b * 40000)))
def test_bytes_items_match_cbor2(value: bytes) -> None:
    assert bytes_item(value) == cbor2.dumps(value, canonical=True)


# --- whole packs ------------------------------------------------------------------------


@PROPS
@given(items())
def test_encode_readings_is_cbor2_canonical_and_bu_the_most_common_unit(
    mix: list[Reading | ReadingBlock],
) -> None:
    assert encode_readings(mix) == reference(mix)
    assert encode_readings(tuple(mix)) == reference(mix)  # any sequence
    # a block is its readings: flattening changes nothing on the wire
    assert encode_readings(flatten(mix)) == reference(mix)
    check_bu(mix)


def check_bu(mix: list[Reading | ReadingBlock]) -> None:
    """bu is the most common unit (ties: the first) when every reading has a unit."""
    pack = pack_readings(mix)
    readings = flatten(mix)
    with_bu = [i for i, rec in enumerate(pack) if -4 in rec]
    if not readings or any(r.unit is None for r in readings):
        assert with_bu == []
        assert [rec.get(1) for rec in pack] == [r.unit for r in readings]
        return
    units = [str(r.unit) for r in readings]
    counts = Counter(units)
    top = max(counts.values())
    expected = next(u for u in units if counts[u] == top)  # ties: the first one
    assert with_bu == [0]
    assert pack[0][-4] == expected
    assert type(pack[0][-4]) is str
    assert [rec.get(1) for rec in pack] == [
        r.unit if r.unit != expected else None for r in readings
    ]


@PROPS
@given(items(value=plain, number=int64))
def test_round_trip_gives_back_the_readings(mix: list[Reading | ReadingBlock]) -> None:
    wire = encode_readings(mix)
    back = unpack_readings(senml.decode_cbor(wire))
    want = flatten(mix)
    assert_same(back, want)
    # the fast path took it (times here are absolute) and agrees with the full resolver
    pack = senml.decode_cbor(wire)
    if all(r.time >= 2**28 for r in want):
        assert _fast_unpack(pack) == _full_unpack(pack) == back


# --- bu, by example -----------------------------------------------------------------------


def test_bu_examples() -> None:
    def units_on_wire(readings: Sequence[Reading | ReadingBlock]) -> list[tuple[Any, Any]]:
        return [(rec.get(-4), rec.get(1)) for rec in pack_readings(readings)]

    r = [
        Reading("p", "a", 1, "Cel", T0),
        Reading("p", "b", 2, "Cel", T0),
        Reading("p", "c", 3, "%RH", T0),
    ]
    assert units_on_wire(r) == [("Cel", None), (None, None), (None, "%RH")]
    # a tie: the unit that occurs first; the first record may carry both bu and u
    tie = [Reading("p", "a", 1, "%/m", T0), Reading("p", "b", 2, "Cel", T0)]
    assert units_on_wire(tie) == [("%/m", None), (None, "Cel")]
    later = [Reading("p", "a", 1, "Pa", T0), *[Reading("p", "b", 2, "Cel", T0)] * 2]
    assert units_on_wire(later) == [("Cel", "Pa"), (None, None), (None, None)]
    # any reading without unit: no bu, u wherever there is a unit
    none = [Reading("p", "a", 1, "Cel", T0), Reading("p", "b", 2, None, T0)]
    assert units_on_wire(none) == [(None, "Cel"), (None, None)]
    # blocks count as their readings, first occurrence across items decides a tie
    layout = ReadingLayout("panel1", ["x", "y", "z"], ["Pa", "Pa", "Cel"])
    block = ReadingBlock(layout, (1, 2, 3), T0)
    mixed: list[Reading | ReadingBlock] = [Reading("p", "a", 1, "Cel", T0), block]
    assert pack_readings(mixed)[0][-4] == "Cel"  # Cel 2, Pa 2: Cel came first
    assert pack_readings([block, Reading("p", "a", 1, "Cel", T0)])[0][-4] == "Pa"
    # a StrEnum unit counts as its text; bu is plain text
    enum_units = [Reading("p", "a", 1, Unit.CELSIUS, T0), Reading("p", "b", 2, "Cel", T0)]
    pack = pack_readings(enum_units)
    assert pack[0][-4] == "Cel" and type(pack[0][-4]) is str and 1 not in pack[1]
    for case in (r, tie, later, none, mixed, enum_units):
        assert encode_readings(case) == reference(case)


def test_bu_saves_the_unit_of_every_record() -> None:
    bench = [
        Reading("src", f"u1/l1/d{i % 200:03d}/smoke", float(i % 1000) * 0.01, "%/m", T0)
        for i in range(500)
    ]
    pack = pack_readings(bench)
    assert pack[0][-4] == "%/m"
    assert not any(1 in rec for rec in pack)
    old_style = [{**rec, 1: "%/m"} for rec in pack]
    del old_style[0][-4]
    saved = len(senml.encode_cbor(old_style)) - len(encode_readings(bench))
    assert saved == 5 * 500 - 5  # u "%/m" is 5 bytes; bu costs them once
    assert unpack_readings(senml.decode_cbor(encode_readings(bench))) == bench


def test_packs_without_bu_still_decode() -> None:
    old = cbor2.dumps(
        [
            {-2: "panel1/", -3: T0, 0: "zone3/smoke", 1: "%/m", 2: 0.25},
            {0: "zone3/temp", 1: "Cel", 2: 58.5, 6: 0.25},
            {0: "fire", 4: True},
        ],
        canonical=True,
    )
    assert unpack_readings(senml.decode_cbor(old)) == [
        Reading("panel1", "zone3/smoke", 0.25, "%/m", T0),
        Reading("panel1", "zone3/temp", 58.5, "Cel", T0 + 0.25),
        Reading("panel1", "fire", True, None, T0),
    ]


def test_bu_holds_until_another_record_sets_it() -> None:
    pack: list[dict[int, Any]] = [
        {-2: "d/", -3: T0, -4: "Cel", 0: "a", 2: 1},
        {0: "b", 1: "Pa", 2: 2},
        {-4: "%RH", 0: "c", 2: 3},
        {0: "d", 2: 4},
    ]
    units = ["Cel", "Pa", "%RH", "%RH"]
    assert [r.unit for r in unpack_readings(pack)] == units
    assert _fast_unpack(pack) == _full_unpack(pack)
    assert [r.unit for r in senml.resolve(pack)] == units


# --- blocks, caches, odd values ------------------------------------------------------------


def test_blocks_of_one_layout_in_every_position() -> None:
    layout = ReadingLayout("panel1", ["a", "b", "c/d"], ["Cel", "Cel", "Pa"])
    other = ReadingLayout("panel2", ["a"], [None])
    cases: list[list[Reading | ReadingBlock]] = [
        [ReadingBlock(layout, (1.5, 2, b"\x01"), T0)],
        [ReadingBlock(layout, (1.5, 2, b"\x01"), T0 + t) for t in (0, 0.25, 0.5, 0.5, 1e12)],
        [ReadingBlock(other, (True,), T0), ReadingBlock(layout, (0.0, -0.0, "x"), T0 + 1)],
        [Reading("panel1", "z", 1, "Pa", T0), ReadingBlock(layout, (b"", b"", b""), T0 + 2)],
        [ReadingBlock(layout, (1, 2, 3), 1.0), ReadingBlock(layout, (1, 2, 3), T0)],
        [ReadingBlock(layout, (1, 2, 3), T0), ReadingBlock(layout, (4, 5, 6), int(T0) + 3)],
    ]
    for _ in range(2):  # the second time from the layout's cache
        for case in cases:
            assert encode_readings(case) == reference(case)
            assert_same(unpack_readings(senml.decode_cbor(encode_readings(case))), flatten(case))


def test_equal_keys_of_other_types_do_not_share_cache_entries() -> None:
    # 1 == 1.0 == True and 0.0 == -0.0 as dict keys; each must keep its own bytes
    values: list[Any] = [
        1,
        1.0,
        True,
        0,
        0.0,
        -0.0,
        False,
        2,
        2.0,
        Level.HIGH,
        3,
        "auto",
        Mode.AUTO,
    ]
    for order in (values, values[::-1]):
        readings: list[Reading | ReadingBlock] = [Reading("d", "x", v, None, T0) for v in order]
        block = ReadingBlock(ReadingLayout("d", [f"n{i}" for i in range(len(order))]), order, T0)
        for case in (readings, [block], [*readings, block]):
            assert encode_readings(case) == reference(case)


class Blob(bytes):
    pass


class Stamp(float):
    pass


class Text(str):
    pass


def test_subclasses_are_written_as_cbor2_writes_them() -> None:
    layout = ReadingLayout(Text("dev"), [Text("a"), "b"], [Text("Pa"), "Pa"])
    cases: list[list[Reading | ReadingBlock]] = [
        [
            Reading("d", Text("x"), Blob(b"\x01"), Unit.CELSIUS, Stamp(T0)),
            Reading("d", "y", Blob(b"ab"), "Pa", Stamp(T0 + 0.5)),
            Reading(Text("e"), "z", Stamp(2.5), Text("Pa"), T0 + 1),
            Reading("e", "w", Text("s"), None, T0 + 1),
        ],
        [ReadingBlock(layout, (Blob(b""), Level.HIGH), T0), ReadingBlock(layout, (1, 2), T0 + 1)],
    ]
    for case in cases:
        assert encode_readings(case) == reference(case)


def test_caches_stay_bounded_and_right_when_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    caches = (_encode._names, _encode._units, _encode._devices, _encode._floats, _encode._ints)
    for cache in (*caches, _encode._texts, _encode._offsets):
        cache.clear()  # earlier tests filled them under the real limits
    monkeypatch.setattr(_encode, "_MAX_VALUES", 5)
    monkeypatch.setattr(_encode, "_MAX_NAMES", 3)
    readings: list[Reading | ReadingBlock] = [
        Reading(f"d{i % 4}", f"n{i % 7}", v, f"u{i % 5}", T0 + i * 0.5)
        for i, v in enumerate(
            [0.5, 1, "s", 2.5, 7, 0.5, 1, "s", *range(20), *map(float, range(20))]
        )
    ]
    for _ in range(3):
        assert encode_readings(readings) == reference(readings)
    assert all(len(cache) <= 5 for cache in caches)
    assert all(len(cache) <= 5 for cache in (_encode._texts, _encode._offsets))
    # one layout in packs of ten different base units, with and without t: 20 variants
    layout = ReadingLayout("panel1", ["a", "b"], ["Cel", "Pa"])
    for i in range(10):
        for dt in (0.0, 0.5):
            unit = f"U{i}"
            case: list[Reading | ReadingBlock] = [
                *[Reading("p", "x", 1, unit, T0)] * 2,
                ReadingBlock(layout, (1.5, 2), T0 + dt),
            ]
            assert encode_readings(case) == reference(case)
    codec = layout.cache[_encode._CODEC_KEY]
    assert 0 < len(codec.prefixes) <= _encode._MAX_LAYOUT_VARIANTS


def test_empty_and_errors() -> None:
    assert encode_readings([]) == reference([]) == b"\x80"
    with pytest.raises(TypeError, match="Reading or ReadingBlock"):
        encode_readings(["not a reading"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="Reading or ReadingBlock"):
        pack_readings([object()])  # type: ignore[list-item]
    # text CBOR cannot carry (a lone surrogate): a typed error, as from encode_cbor
    bad = [Reading("d", "x", "\ud800", None, T0)]
    with pytest.raises(senml.SenMLError, match="cannot encode"):
        encode_readings(bad)
    with pytest.raises(senml.SenMLError):
        senml.encode_cbor(pack_readings(bad))
    with pytest.raises(senml.SenMLError, match="cannot encode"):
        encode_readings([Reading("d", "x", 1, object(), T0)])  # type: ignore[arg-type]


def test_generators_are_accepted() -> None:
    readings = [Reading("d", f"x{i}", i, "Cel", T0) for i in range(3)]
    assert encode_readings(r for r in readings) == reference(readings)  # type: ignore[arg-type]
    assert pack_readings(r for r in readings) == pack_readings(readings)  # type: ignore[arg-type]
