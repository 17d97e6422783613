"""SenML against the RFC 8428 examples (shared vectors), label conversion, the wire convention.

The vectors live in ``<shared>/vectors/senml`` (see its README for the quirks honoured
here); expectations are read from the vector files with the standard ``json`` module, never
with the code under test.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from edgesdk import senml
from edgesdk.model import Reading

EXAMPLES = [f"ex{n}" for n in range(1, 14)]
WITH_RESOLVED = [name for name in EXAMPLES if name != "ex13"]  # ex13 has no resolved file
RELATIVE = 2**28


def _dir(vectors: Path) -> Path:
    return vectors / "senml"


def _raw(vectors: Path, name: str) -> Any:
    return json.loads((_dir(vectors) / name).read_text(encoding="utf-8"))


def _decoded(vectors: Path, name: str) -> senml.Pack:
    return senml.decode_json((_dir(vectors) / f"{name}.json").read_bytes())


def _assert_record(rec: senml.Record, exp: dict[str, Any]) -> None:
    assert rec.name == exp["n"]
    assert rec.unit == exp.get("u")
    assert rec.value == exp.get("v")
    assert rec.string_value == exp.get("vs")
    assert rec.bool_value == exp.get("vb")
    assert rec.sum == exp.get("s")
    if rec.time >= RELATIVE:
        assert rec.time == pytest.approx(exp["t"], abs=1e-6)
    else:  # README: upstream resolved "now" with its own 2017 clock; ours stays relative
        assert exp["t"] >= RELATIVE


@pytest.mark.parametrize("name", WITH_RESOLVED)
def test_example_resolves_like_the_resolved_file(vectors: Path, name: str) -> None:
    records = senml.resolve(_decoded(vectors, name))
    expected = _raw(vectors, f"{name}.gen.resolved.json")
    if name == "ex7":  # README: the resolved file drops the vd record
        assert len(records) == len(expected) + 1
        vd = _raw(vectors, "ex7.json")[3]["vd"]
        assert records[3].data_value == base64.urlsafe_b64decode(vd + "=" * (-len(vd) % 4))
        assert records[3].name.endswith(":nfv-reader")
        records = records[:3]
    if name == "ex3":  # README: the resolved file's order is not normative
        assert [r.time for r in records[1:]] == sorted(r.time for r in records[1:])
        records = sorted(records, key=lambda r: (r.name, r.time))
        expected = sorted(expected, key=lambda e: (e["n"], e["t"]))
    assert len(records) == len(expected)
    for rec, exp in zip(records, expected, strict=True):
        _assert_record(rec, exp)


@pytest.mark.parametrize("name", EXAMPLES)
def test_generated_and_original_forms_resolve_alike(vectors: Path, name: str) -> None:
    gen = senml.decode_json((_dir(vectors) / f"{name}.gen.json").read_text(encoding="utf-8"))
    assert senml.resolve(gen) == senml.resolve(_decoded(vectors, name))


def test_ex9_base_only_record_yields_no_record(vectors: Path) -> None:
    raw = _raw(vectors, "ex9.json")
    assert list(raw[0]) == ["bn"]
    records = senml.resolve(_decoded(vectors, "ex9"))
    assert len(records) == len(raw) - 1
    assert all(r.name.startswith(raw[0]["bn"]) for r in records)


def test_ex13_resolves_from_its_base_time(vectors: Path) -> None:
    raw = _raw(vectors, "ex13.json")  # no resolved file: expectations from the input itself
    bt = raw[0]["bt"]
    records = senml.resolve(_decoded(vectors, "ex13"))
    assert [r.name for r in records] == [r["n"] for r in raw]
    assert [r.value for r in records] == [r["v"] for r in raw]
    assert {r.unit for r in records} == {raw[0]["bu"]}
    assert [r.time for r in records] == pytest.approx([bt + r.get("t", 0) for r in raw], abs=1e-6)


def test_ex3_keeps_input_order_and_applies_base_unit(vectors: Path) -> None:
    raw = _raw(vectors, "ex3.json")
    records = senml.resolve(_decoded(vectors, "ex3"))
    assert [r.name for r in records] == [raw[0]["bn"] + r["n"] for r in raw]
    assert records[0].unit == raw[0]["u"]
    assert {r.unit for r in records[1:]} == {raw[0]["bu"]}


@pytest.mark.parametrize("name", ["ex1", "ex2", "ex7", "ex9"])
def test_relative_times_resolve_against_now(vectors: Path, name: str) -> None:
    pack = _decoded(vectors, name)
    relative = senml.resolve(pack)
    assert all(r.time < RELATIVE for r in relative)
    now = 1_700_000_000.25
    absolute = senml.resolve(pack, now=now)
    assert [r.time for r in absolute] == [now + r.time for r in relative]
    assert [r.name for r in absolute] == [r.name for r in relative]


def test_absolute_times_ignore_now(vectors: Path) -> None:
    pack = _decoded(vectors, "ex4")
    assert senml.resolve(pack, now=5.0) == senml.resolve(pack)


@pytest.mark.parametrize("name", ["ex3", "ex5"])
def test_cbor_vectors_decode_to_the_json_data(vectors: Path, name: str) -> None:
    cbor_pack = senml.decode_cbor((_dir(vectors) / f"{name}.gen.cbor").read_bytes())
    json_pack = _decoded(vectors, name)
    assert senml.to_json_labels(cbor_pack) == json_pack
    assert senml.resolve(cbor_pack) == senml.resolve(json_pack)
    expected = _raw(vectors, f"{name}.gen.resolved.json")
    records = sorted(senml.resolve(cbor_pack), key=lambda r: (r.name, r.time))
    for rec, exp in zip(records, sorted(expected, key=lambda e: (e["n"], e["t"])), strict=True):
        _assert_record(rec, exp)


def test_ex3_cbor_uses_integer_labels_from_the_diag(vectors: Path) -> None:
    cbor_pack = senml.decode_cbor((_dir(vectors) / "ex3.gen.cbor").read_bytes())
    assert set(cbor_pack[0]) == {-2, -3, -4, -1, 0, 1, 2}
    assert cbor_pack[0][-1] == _raw(vectors, "ex3.json")[0]["bver"]


@pytest.mark.parametrize("name", EXAMPLES)
def test_label_and_encoding_round_trips(vectors: Path, name: str) -> None:
    pack = _decoded(vectors, name)
    cbor_pack = senml.to_cbor_labels(pack)
    keys: set[object] = {k for rec in cbor_pack for k in rec}
    assert {k for k in keys if type(k) is not int} <= {"l"}  # ex8's link stays text
    assert senml.to_json_labels(cbor_pack) == pack
    wire = senml.encode_cbor(cbor_pack)
    assert senml.decode_cbor(wire) == cbor_pack
    assert senml.encode_cbor(senml.decode_cbor(wire)) == wire
    text = senml.encode_json(pack)
    assert senml.decode_json(text) == pack
    assert senml.decode_json(text.encode("utf-8")) == pack
    resolved = senml.resolve(pack)
    assert senml.resolve(cbor_pack) == resolved
    assert senml.resolve(senml.decode_cbor(wire)) == resolved


def test_vd_is_unpadded_base64url_in_json_and_bytes_in_cbor() -> None:
    data = b"\xfb\xff\x00hi"
    text = senml.encode_json([{"n": "cam1/snap", "vd": data}])
    assert json.loads(text)[0]["vd"] == base64.urlsafe_b64encode(data).decode().rstrip("=")
    assert "=" not in text
    assert senml.decode_json(text)[0]["vd"] == data
    wire = senml.encode_cbor(senml.to_cbor_labels(senml.decode_json(text)))
    assert senml.decode_cbor(wire)[0][8] == data


def test_cbor_is_canonical_and_floats_shortest_exact() -> None:
    a = senml.encode_cbor([{2: 1.5, 0: "x"}])
    b = senml.encode_cbor([{0: "x", 2: 1.5}])
    assert a == b
    assert len(senml.encode_cbor([{2: 1.5}])) < len(senml.encode_cbor([{2: 1.1}]))
    for number in (1.5, 1.1, 1276020076.001, 65504.0, 1e-8, -0.0, 2**53 + 1, -(2**64)):
        back = senml.decode_cbor(senml.encode_cbor([{0: "x", 2: number}]))[0][2]
        assert back == number
        assert type(back) is type(number)


def test_decimal_fraction_in_cbor_becomes_float() -> None:
    # [{0: "a", 2: 4([-2, 12345])}]: tag 4 decimal fraction 123.45 (RFC 8428 section 6)
    wire = bytes.fromhex("81a2006161" + "02c482211930 39".replace(" ", ""))
    pack = senml.decode_cbor(wire)
    assert pack[0][2] == 123.45
    assert type(pack[0][2]) is float


def test_base_value_sum_and_update_time() -> None:
    pack: list[dict[str, Any]] = [
        {"bn": "meter1/", "bv": 100, "bs": 10.5, "bu": "W", "n": "p", "v": 5, "ut": 30},
        {"n": "p", "v": -2.5, "s": 1},
        {"n": "label", "vs": "x"},
        {"bs": 0, "n": "e", "s": 2},
    ]
    records = senml.resolve(pack)
    assert [r.value for r in records] == [105, 97.5, None, None]
    assert type(records[0].value) is int
    assert [r.sum for r in records] == [10.5, 11.5, 10.5, 2]
    assert records[0].update_time == 30.0
    assert [r.unit for r in records] == ["W"] * 4
    assert records[2].string_value == "x"


def test_unknown_extension_fields_are_ignored() -> None:
    pack: list[dict[Any, Any]] = [
        {"n": "a", "v": 1, "l": "[]", "foo": {"x": 1}},
        {0: "b", 2: 2, 99: "?", "q": 1},
    ]
    records = senml.resolve(pack)
    assert [(r.name, r.value) for r in records] == [("a", 1), ("b", 2)]


# --- rejections --------------------------------------------------------------------------

NEGATIVE_RESOLVE: dict[str, Any] = {
    "must-understand field": [{"n": "a", "v": 1, "foo_": 1}],
    "must-understand field, CBOR record": [{0: "a", 2: 1, "foo_": 1}],
    "bver above 10": [{"bver": 11, "n": "a", "v": 1}],
    "bver zero": [{"bver": 0, "n": "a", "v": 1}],
    "bver float": [{"bver": 10.0, "n": "a", "v": 1}],
    "bver text": [{"bver": "10", "n": "a", "v": 1}],
    "bver changes in pack": [{"bver": 5, "n": "a", "v": 1}, {"bver": 6, "n": "b", "v": 1}],
    "v and vs": [{"n": "a", "v": 1, "vs": "x"}],
    "v and vb": [{"n": "a", "v": 1, "vb": True}],
    "vs and vd": [{"n": "a", "vs": "x", "vd": b"x"}],
    "vb and vd, CBOR": [{0: "a", 4: False, 8: b"x"}],
    "no value no sum": [{"n": "a"}],
    "only time": [{"n": "a", "t": 1}],
    "empty record": [{}],
    "name starts with dash": [{"n": "-a", "v": 1}],
    "name starts with underscore": [{"n": "_a", "v": 1}],
    "name starts with slash": [{"n": "/a", "v": 1}],
    "name with space": [{"n": "a b", "v": 1}],
    "name with newline": [{"n": "a\n", "v": 1}],
    "name non-ascii": [{"n": "tempé", "v": 1}],
    "bad base name": [{"bn": "dev 1/", "n": "a", "v": 1}],
    "no name": [{"v": 1}],
    "empty name": [{"n": "", "v": 1}],
    "empty bn and n": [{"bn": "", "n": "", "v": 1}],
    "v infinite": [{"n": "a", "v": float("inf")}],
    "v nan": [{"n": "a", "v": float("nan")}],
    "t infinite": [{"n": "a", "v": 1, "t": float("-inf")}],
    "bt nan": [{"bt": float("nan"), "n": "a", "v": 1}],
    "s infinite": [{"n": "a", "s": float("inf")}],
    "ut nan": [{"n": "a", "v": 1, "ut": float("nan")}],
    "bv + v overflows": [{"bv": 1e308, "n": "a", "v": 1e308}],
    "int beyond double": [{"n": "a", "v": 10**400}],
    "v text": [{"n": "a", "v": "1"}],
    "v bool": [{"n": "a", "v": True}],
    "v None": [{"n": "a", "v": None}],
    "vs number": [{"n": "a", "vs": 1}],
    "vb int": [{"n": "a", "vb": 1}],
    "vb text": [{"n": "a", "vb": "true"}],
    "vd text": [{"n": "a", "vd": "aGk"}],
    "n number": [{"n": 1, "v": 1}],
    "u number": [{"n": "a", "u": 1, "v": 1}],
    "bn number": [{"bn": 1, "n": "a", "v": 1}],
    "t text": [{"n": "a", "v": 1, "t": "0"}],
    "CBOR v text": [{0: "a", 2: "1"}],
    "label given twice": [{0: "a", "n": "b", "v": 1}],
    "float label": [{1.5: "a", "n": "a", "v": 1}],
    "bool label": [{True: "Cel", "n": "a", "v": 1}],
    "bytes label": [{b"n": "a", "v": 1}],
    "record not a map": [1],
    "record a list": [["n", "a"]],
    "pack a map": {"n": "a", "v": 1},
    "pack text": "[]",
    "pack None": None,
}


@pytest.mark.parametrize("pack", NEGATIVE_RESOLVE.values(), ids=NEGATIVE_RESOLVE.keys())
def test_resolve_rejects(pack: Any) -> None:
    with pytest.raises(senml.SenMLError):
        senml.resolve(pack)


def test_resolve_rejects_non_finite_now() -> None:
    with pytest.raises(senml.SenMLError):
        senml.resolve([{"n": "a", "v": 1}], now=float("nan"))


NEGATIVE_JSON: dict[str, str | bytes] = {
    "not JSON": "[{",
    "trailing data": '[{"n":"a","v":1}] x',
    "duplicate key": '[{"n":"a","v":1,"v":2}]',
    "NaN constant": '[{"n":"a","v":NaN}]',
    "Infinity constant": '[{"n":"a","v":Infinity}]',
    "number overflows": '[{"n":"a","v":1e999}]',
    "too many digits": '[{"n":"a","v":' + "9" * 5000 + "}]",
    "top level object": '{"n":"a","v":1}',
    "record not object": '[["n","a"]]',
    "vd padded": '[{"n":"a","vd":"aGk="}]',
    "vd standard alphabet": '[{"n":"a","vd":"+/8"}]',
    "vd impossible length": '[{"n":"a","vd":"aGkgC"}]',
    "vd not text": '[{"n":"a","vd":5}]',
    "lone surrogate": '[{"n":"a","vs":"\\ud800"}]',
    "not UTF-8": b'[{"n":"a","vs":"\xff"}]',
    "deep nesting": "[" * 100_000,
    "bver too high": '[{"bver":11,"n":"a","v":1}]',
    "must-understand": '[{"n":"a","v":1,"x_":1}]',
    "v wrong type": '[{"n":"a","v":"1"}]',
}


@pytest.mark.parametrize("text", NEGATIVE_JSON.values(), ids=NEGATIVE_JSON.keys())
def test_decode_json_rejects(text: str | bytes) -> None:
    with pytest.raises(senml.SenMLError):
        senml.decode_json(text)


def _cbor(hex_text: str) -> bytes:
    return bytes.fromhex(hex_text.replace(" ", ""))


NEGATIVE_CBOR: dict[str, bytes] = {
    "empty": b"",
    "truncated": _cbor("81 a2 00 61"),
    "trailing bytes": _cbor("81 a2 00 61 61 02 01 00"),
    "duplicate key": _cbor("81 a3 00 61 61 02 01 02 02"),
    "not an array": _cbor("a2 00 61 61 02 01"),
    "record not a map": _cbor("81 01"),
    "vd as text": _cbor("81 a2 00 61 61 08 61 78"),
    "v as text": _cbor("81 a2 00 61 61 02 61 31"),
    "v as datetime tag": _cbor("81 a2 00 61 61 02 c1 1a 51 4b 67 b0"),
    "v NaN half float": _cbor("81 a2 00 61 61 02 f9 7e 00"),
    "bver negative int": _cbor("81 a3 20 20 00 61 61 02 01"),
    "invalid UTF-8 text": _cbor("81 a2 00 62 c3 28 02 01"),
    "nesting too deep": b"\x81" * 40 + b"\x80",
    "reserved additional info": _cbor("81 1c"),
}


@pytest.mark.parametrize("data", NEGATIVE_CBOR.values(), ids=NEGATIVE_CBOR.keys())
def test_decode_cbor_rejects(data: bytes) -> None:
    with pytest.raises(senml.SenMLError):
        senml.decode_cbor(data)


def test_decoders_reject_wrong_input_types() -> None:
    with pytest.raises(senml.SenMLError):
        senml.decode_cbor("[]")  # type: ignore[arg-type]
    with pytest.raises(senml.SenMLError):
        senml.decode_json(None)  # type: ignore[arg-type]


NEGATIVE_CONVERT: dict[str, tuple[Any, Any]] = {
    "to_json_labels: unknown integer label": (senml.to_json_labels, [{0: "a", 42: 1}]),
    "to_json_labels: label twice": (senml.to_json_labels, [{0: "a", "n": "b"}]),
    "to_json_labels: bool label": (senml.to_json_labels, [{True: "a"}]),
    "to_json_labels: not a pack": (senml.to_json_labels, {0: "a"}),
    "to_cbor_labels: integer label": (senml.to_cbor_labels, [{0: "a"}]),
    "to_cbor_labels: record not a map": (senml.to_cbor_labels, ["n"]),
    "encode_json: integer label": (senml.encode_json, [{0: "a", 2: 1}]),
    "encode_json: vd text": (senml.encode_json, [{"n": "a", "vd": "aGk"}]),
    "encode_json: NaN": (senml.encode_json, [{"n": "a", "v": float("nan")}]),
    "encode_json: object": (senml.encode_json, [{"n": "a", "x": object()}]),
    "encode_cbor: object": (senml.encode_cbor, [{0: "a", 2: object()}]),
    "encode_cbor: lone surrogate": (senml.encode_cbor, [{0: "\ud800"}]),
}


@pytest.mark.parametrize("case", NEGATIVE_CONVERT.values(), ids=NEGATIVE_CONVERT.keys())
def test_conversions_reject(case: tuple[Any, Any]) -> None:
    func, arg = case
    with pytest.raises(senml.SenMLError):
        func(arg)


def test_senml_error_is_a_protocol_error() -> None:
    from edgesdk.errors import EdgeError, ProtocolError

    assert issubclass(senml.SenMLError, ProtocolError)
    assert issubclass(senml.SenMLError, EdgeError)


# --- readings on the wire ----------------------------------------------------------------


def test_pack_readings_layout() -> None:
    t0 = 1_700_000_000.125
    readings = [
        Reading("panel1", "zone3/smoke", 0.12, "%/m", t0),
        Reading("panel1", "zone3/heat", 21, "Cel", t0),
        Reading("panel1", "fire", True, None, t0 + 0.5),
        Reading("beacon7", "state", "moving", None, t0 + 1.0),
        Reading("beacon7", "raw", b"\x01\x02", None, t0 + 1.25),
    ]
    pack = senml.pack_readings(readings)
    assert pack == [
        {-2: "panel1/", -3: t0, 0: "zone3/smoke", 1: "%/m", 2: 0.12},
        {0: "zone3/heat", 1: "Cel", 2: 21},
        {0: "fire", 6: 0.5, 4: True},
        {-2: "beacon7/", 0: "state", 6: 1.0, 3: "moving"},
        {0: "raw", 6: 1.25, 8: b"\x01\x02"},
    ]
    assert type(pack[1][2]) is int
    assert senml.encode_cbor(pack) == senml.encode_cbor(senml.pack_readings(readings))
    back = senml.unpack_readings(senml.decode_cbor(senml.encode_cbor(pack)))
    assert back == readings
    assert [type(r.value) for r in back] == [float, int, bool, str, bytes]


def test_pack_readings_of_nothing() -> None:
    assert senml.pack_readings([]) == []
    assert senml.unpack_readings(senml.decode_cbor(senml.encode_cbor([]))) == []


def test_far_apart_times_restart_base_time_and_stay_exact() -> None:
    times = [1_700_000_000.123456, 0.1, 1e-9, -3.3, 1e12 + 0.1, 1_700_000_000.123457]
    assert times[0] + (times[1] - times[0]) != times[1]  # one bt would lose bits here
    readings = [Reading("d", "x", i, None, t) for i, t in enumerate(times)]
    pack = senml.pack_readings(readings)
    assert [-3 in rec for rec in pack][:3] == [True, True, True]
    back = senml.unpack_readings(senml.decode_cbor(senml.encode_cbor(pack)))
    assert [r.time for r in back] == times


def test_enum_values_pack_as_their_base_type() -> None:
    import enum

    class Level(enum.IntEnum):
        HIGH = 3

    class Mode(enum.StrEnum):
        AUTO = "auto"

    pack = senml.pack_readings([Reading("d", "lvl", Level.HIGH), Reading("d", "m", Mode.AUTO)])
    back = senml.unpack_readings(senml.decode_cbor(senml.encode_cbor(pack)))
    assert [(r.value, type(r.value)) for r in back] == [(3, int), ("auto", str)]


def test_unpack_readings_accepts_json_labels_and_now() -> None:
    pack = senml.decode_json('[{"bn":"cam1/","n":"person","vb":true,"t":-2}]')
    (reading,) = senml.unpack_readings(pack, now=1_700_000_000.0)
    assert (reading.device, reading.name, reading.value) == ("cam1", "person", True)
    assert reading.time == 1_699_999_998.0
    assert senml.unpack_readings(pack)[0].time == -2.0


NEGATIVE_UNPACK: dict[str, Any] = {
    "name without slash": [{"n": "temp", "v": 1}],
    "empty reading name": [{"bn": "dev/", "v": 1}],
    "reading name starts with slash": [{"n": "dev//x", "v": 1}],
    "sum only": [{"n": "dev/e", "s": 5}],
    "invalid pack": [{"n": "dev/x"}],
}


@pytest.mark.parametrize("pack", NEGATIVE_UNPACK.values(), ids=NEGATIVE_UNPACK.keys())
def test_unpack_readings_rejects(pack: Any) -> None:
    with pytest.raises(senml.SenMLError):
        senml.unpack_readings(pack)


def test_large_pack_round_trips_and_trailing_bytes_are_caught() -> None:
    # cbor2 6.1.0 corrupted payloads over 4096 bytes; this pack is well over 100 kB.
    readings = [
        Reading(f"dev{i // 100}", f"ch{i}", i * 1.5, "Cel", 1.7e9 + i * 0.013) for i in range(5000)
    ]
    wire = senml.encode_cbor(senml.pack_readings(readings))
    assert len(wire) > 100_000
    assert senml.unpack_readings(senml.decode_cbor(wire)) == readings
    with pytest.raises(senml.SenMLError, match="1 trailing"):
        senml.decode_cbor(wire + b"\x00")
    with pytest.raises(senml.SenMLError):
        senml.decode_cbor(wire[:-1])
