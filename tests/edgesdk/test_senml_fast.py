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
readings = st.builds(Reading, devices, names, values, st.one_of(st.none(), st.just("Cel")), times)
junk = st.one_of(
    st.none(),
    st.integers(-3, 3),
    st.floats(),
    st.text(max_size=3),
    st.binary(max_size=3),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)
labels = st.sampled_from([-6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, "n"])


def _full(pack: Any) -> list[Reading] | str:
    try:
        return _full_unpack(pack)
    except EdgeError as exc:
        return type(exc).__name__


@settings(max_examples=400, deadline=None, derandomize=True)
@given(
    st.lists(readings, min_size=1, max_size=8),
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


def test_fast_path_declines_relative_times_and_other_shapes() -> None:
    r = Reading("d", "x", 1.5, None, 1_700_000_000.0)
    pack: list[Any] = pack_readings([r])
    assert unpack_readings(pack) == [r]
    pack[0][-3] = 10.0  # a relative time: only the full path (with now) may resolve it
    assert _fast_unpack(pack) is None
    assert unpack_readings(pack, now=1_700_000_000.0)[0].time == 1_700_000_010.0
    pack[0][-3] = math.inf
    assert _fast_unpack(pack) is None
