"""Fuzzing SenML (RFC 8428): ``decode_cbor``, ``decode_json``, ``resolve``, ``unpack_readings``.

Documented contract (``edgesdk/senml``): decoders and :func:`resolve` reject malformed or
forbidden input with :class:`~edgesdk.senml.SenMLError` (a ProtocolError) and nothing else;
:func:`unpack_readings` likewise. A pack that decodes is pushed on through ``resolve`` and
``unpack_readings``, as a receiver does; what comes out must be finite and well named.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import cbor2
from hypothesis import given
from hypothesis import strategies as st

from edgesdk import senml
from edgesdk.model import Reading
from edgesdk.senml import Record, SenMLError
from tests.reliability.fuzzkit import SCALES, FuzzCount, expect, fuzz_settings
from tests.reliability.hostile import cbor_bytes, cbor_values, json_texts, mutants, scalars
from tests.reliability.signed import reading_records
from tests.support import VECTORS

_JSON_LABELS = ["bver", "bn", "bt", "bu", "bv", "bs", "n", "u", "v", "vs", "vb", "s", "t", "ut"]
_LABELS = st.one_of(
    st.integers(-6, 8),
    st.sampled_from([*_JSON_LABELS, "vd", "x_", "ext", ""]),
    st.integers(-(2**70), 2**70),
    st.text(max_size=6),
    st.booleans(),
    st.floats(allow_nan=False),
    st.binary(max_size=3),
)
_GOOD = {  # one plausible value per known label, so records often get past the first field
    "bver": st.integers(1, 10),
    "bn": st.sampled_from(["dev1/", "panel1/", "a", ""]),
    "n": st.sampled_from(["zone1/smoke", "t", "x/y", "", " bad", "a/\n"]),
    "v": st.floats() | st.integers(-(2**1100), 2**1100),
}
_VALUES = st.one_of(scalars, cbor_values, *_GOOD.values())

_FINITE = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15)
_valid_records = st.fixed_dictionaries(
    {"n": st.sampled_from(["dev1/x", "panel1/zone1/smoke", "b:1/t.2"])},
    optional={
        "v": _FINITE | st.integers(-(2**53), 2**53),
        "u": st.sampled_from(["Cel", "%", "%/m"]),
        "t": _FINITE,
        "bt": _FINITE,
        "ut": _FINITE,
    },
)
_near_records = st.builds(  # a good record with one field added or replaced by a bad one
    lambda good, bad: {**good, **bad}, _valid_records, st.dictionaries(_LABELS, _VALUES, max_size=1)
)
records = st.one_of(st.dictionaries(_LABELS, _VALUES, max_size=6), _valid_records, _near_records)
packs: st.SearchStrategy[Any] = st.one_of(
    st.lists(records | scalars, max_size=5),
    st.lists(records, min_size=1, max_size=4),
    scalars,
    st.dictionaries(st.text(max_size=3), scalars, max_size=2),
)
"""Python packs of every shape: the input of resolve(), and (encoded) of the decoders."""


def _corpus_cbor() -> list[bytes]:
    out = [senml.encode_cbor(reading_records(3))]
    out += [(VECTORS / "senml" / n).read_bytes() for n in ("ex3.gen.cbor", "ex5.gen.cbor")]
    return out


def _corpus_json() -> list[bytes]:
    ours = senml.encode_json(senml.to_json_labels(reading_records(3))).encode()
    return [ours] + [
        (VECTORS / "senml" / f"ex{i}.json").read_bytes() for i in (1, 2, 3, 4, 5, 7, 9, 11)
    ]


def _json_pack(value: Any) -> str:
    # bytes and CBOR objects become strings; keys JSON cannot have are left out
    try:
        return json.dumps(value, default=repr, skipkeys=True)
    except ValueError:  # an integer too long to print: the JSON text gets one too
        return '[{"n": "a/b", "v": ' + "9" * 5000 + "}]"


def _check_resolved(pack: Any, now: Any) -> bool:
    """Resolve and unpack a pack as a receiver would; only SenMLError may stop it.

    Returns whether readings came out (the inputs must reach that path too).
    """
    resolved = expect(SenMLError, lambda: senml.resolve(pack, now=now))
    if resolved is not None:
        for rec in resolved:
            assert isinstance(rec, Record)
            assert rec.name and math.isfinite(rec.time)
            assert rec.value is None or math.isfinite(rec.value)
    readings = expect(SenMLError, lambda: senml.unpack_readings(pack, now=now))
    if readings is not None:
        assert resolved is not None and len(readings) == len(resolved)
        for reading in readings:
            assert isinstance(reading, Reading) and math.isfinite(reading.time)
    return bool(readings)


_NOW = st.one_of(
    st.none(), st.floats(), st.integers(-(2**1100), 2**1100), st.sampled_from([1.7e9, 10**5000])
)


def _fuzz_decoder(
    count: FuzzCount, decode: Callable[[Any], Any], inputs: Any, examples: int, scale: int
) -> None:
    """Decode every input: a typed error or a pack of records that resolve safely."""
    seen = {"packs": 0, "errors": 0, "readings": 0}

    @fuzz_settings(examples, scale)
    @given(inputs, _NOW)
    def prop(data: Any, now: Any) -> None:
        with count.example():
            pack = expect(SenMLError, lambda: decode(data))
            seen["errors" if pack is None else "packs"] += 1
            if pack is not None:
                assert isinstance(pack, list) and all(isinstance(r, dict) for r in pack)
                seen["readings"] += _check_resolved(pack, now)

    prop()
    assert all(seen.values()), f"the inputs missed a path: {seen}"


@SCALES
def test_fuzz_senml_cbor(scale: int, fuzz: Callable[[str], FuzzCount]) -> None:
    inputs = st.one_of(
        cbor_bytes(*_corpus_cbor()),
        packs.map(cbor2.dumps),
        st.lists(records, min_size=1, max_size=3).map(cbor2.dumps),
    )
    _fuzz_decoder(fuzz("senml-cbor"), senml.decode_cbor, inputs, 1500, scale)


@SCALES
def test_fuzz_senml_json(scale: int, fuzz: Callable[[str], FuzzCount]) -> None:
    inputs = st.one_of(
        json_texts,
        packs.map(_json_pack),
        mutants(_corpus_json()),  # bytes, often no longer UTF-8
        st.binary(max_size=40),
    )
    _fuzz_decoder(fuzz("senml-json"), senml.decode_json, inputs, 1200, scale)


@SCALES
def test_fuzz_senml_resolve(scale: int, fuzz: Callable[[str], FuzzCount]) -> None:
    """resolve() and unpack_readings() on Python packs that no decoder vetted."""
    count = fuzz("senml-resolve")
    seen = {"readings": 0}

    @fuzz_settings(1500, scale)
    @given(packs, _NOW)
    def prop(pack: Any, now: Any) -> None:
        with count.example():
            seen["readings"] += _check_resolved(pack, now)

    prop()
    assert all(seen.values()), f"the inputs missed a path: {seen}"
