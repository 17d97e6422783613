"""The fast path of ``unpack_readings`` never disagrees with the full resolver."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from edgesdk.errors import EdgeError
from edgesdk.model import Reading
from edgesdk.senml import pack_readings, unpack_readings
from edgesdk.senml._readings import _fast_unpack, _full_unpack

names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-/]{0,12}", fullmatch=True)
devices = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,8}", fullmatch=True)
values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**40), 2**40),
    st.booleans(),
    st.text(max_size=5),
    st.binary(max_size=5),
)
times = st.floats(min_value=2.0**28, max_value=4e9)
units = st.sampled_from(["Cel", "Pa", "°C", ""])
readings = st.builds(Reading, devices, names, values, st.one_of(st.none(), units), times)
# every reading with a unit: the pack gets a bu (the most common unit)
unit_readings = st.builds(Reading, devices, names, values, units, times)
junk = st.one_of(
    st.none(),
    st.integers(-3, 3),
    st.floats(),
    st.text(max_size=3),
    st.binary(max_size=3),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
    # what only the full path may judge: lone surrogates, integers beyond a double
    st.sampled_from(["\ud800", "x\udfff", "°C", 2**1100, -(2**1100)]),
)
labels = st.sampled_from([-6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, "n"])


def _full(pack: Any) -> list[Reading] | str:
    try:
        return _full_unpack(pack)
    except EdgeError as exc:
        return type(exc).__name__


@settings(max_examples=400, deadline=None, derandomize=True)
@given(
    st.one_of(
        st.lists(readings, min_size=1, max_size=8),
        st.lists(unit_readings, min_size=1, max_size=8),
    ),
    st.lists(st.tuples(st.integers(0, 7), labels, st.one_of(junk, st.just(None))), max_size=3),
)
def test_fast_path_agrees_with_full_resolver(
    rs: list[Reading], edits: list[tuple[int, Any, Any]]
) -> None:
    pack: list[Any] = pack_readings(rs)
    for index, label, value in edits:  # mutations: set or drop a label in a record
        rec = pack[index % len(pack)]
        if value is None:
            rec.pop(label, None)
        else:
            rec[label] = value
    fast = _fast_unpack(pack)
    full = _full(pack)
    if fast is not None:
        assert not isinstance(full, str), f"fast accepted what the full path rejects: {full}"
        assert fast == full
    if not edits:
        assert fast is not None, "an untouched pack must take the fast path"
        assert fast == rs
        assert (-4 in pack[0]) == all(r.unit is not None for r in rs)


def test_fast_path_declines_relative_times_and_other_shapes() -> None:
    r = Reading("d", "x", 1.5, None, 1_700_000_000.0)
    pack: list[Any] = pack_readings([r])
    assert unpack_readings(pack) == [r]
    pack[0][-3] = 10.0  # a relative time: only the full path (with now) may resolve it
    assert _fast_unpack(pack) is None
    assert unpack_readings(pack, now=1_700_000_000.0)[0].time == 1_700_000_010.0
    pack[0][-3] = math.inf
    assert _fast_unpack(pack) is None


def test_fast_path_declines_what_only_the_full_path_may_judge() -> None:
    r = Reading("d", "x", 1, "Cel", 1_700_000_000.0)
    for label, bad in [(-4, "\ud800"), (1, "x\udfff"), (-4, None), (1, None), (-4, 5)]:
        pack: list[Any] = pack_readings([r])
        pack[0][label] = bad
        assert _fast_unpack(pack) is None
        assert isinstance(_full(pack), str)  # rejected
    pack = pack_readings([Reading("d", "x", "\ud800", None, 1_700_000_000.0)])
    assert _fast_unpack(pack) is None
    assert isinstance(_full(pack), str)
    pack = pack_readings([Reading("d", "x", 1, None, 1_700_000_000.0)])
    pack[0][2] = 2**1100  # a Reading refuses it; a hostile pack may still carry it
    assert _fast_unpack(pack) is None
    assert isinstance(_full(pack), str)
    # valid non-ASCII text stays on the fast path
    pack = pack_readings([Reading("d", "x", "Ω", "°C", 1_700_000_000.0)])
    assert _fast_unpack(pack) == _full(pack) == [Reading("d", "x", "Ω", "°C", 1_700_000_000.0)]
