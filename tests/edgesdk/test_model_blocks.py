"""ReadingLayout and ReadingBlock: many readings of one device at one time, checked as
Readings are, standing for exactly the Readings they flatten to."""

from __future__ import annotations

import math

import pytest

from edgesdk.model import Reading, ReadingBlock, ReadingLayout


def _layout(n: int = 4) -> ReadingLayout:
    return ReadingLayout(
        "panel1", [f"u1/l1/d{i:03d}/smoke" for i in range(n)], ["%/m"] * (n - 1) + [None]
    )


def test_a_block_flattens_to_the_readings_it_stands_for() -> None:
    layout = _layout()
    block = ReadingBlock(layout, [0.1, 2, True, "x"], 1.7e9)
    assert len(block) == 4 and block.device == "panel1"
    assert (
        list(block)
        == block.readings()
        == [
            Reading("panel1", "u1/l1/d000/smoke", 0.1, "%/m", 1.7e9),
            Reading("panel1", "u1/l1/d001/smoke", 2, "%/m", 1.7e9),
            Reading("panel1", "u1/l1/d002/smoke", True, "%/m", 1.7e9),
            Reading("panel1", "u1/l1/d003/smoke", "x", None, 1.7e9),
        ]
    )


def test_a_slice_is_a_block_of_its_own_and_its_layout_is_kept() -> None:
    layout = _layout()
    block = ReadingBlock(layout, [0.0, 1.0, 2.0, 3.0], 5.0)
    part = block.slice(1, 3)
    assert [r.name for r in part] == ["u1/l1/d001/smoke", "u1/l1/d002/smoke"]
    assert [r.value for r in part] == [1.0, 2.0] and part.time == 5.0
    assert block.slice(1, 3).layout is part.layout  # cut at the same place: the same layout
    assert layout.sub(0, 2) is not layout.sub(1, 3)


@pytest.mark.parametrize(
    ("device", "names", "units", "error"),
    [
        ("bad/device", ["a"], None, ValueError),
        ("dev", ["-starts-badly"], None, ValueError),
        ("dev", ["a" * 300], None, ValueError),
        ("dev", [], None, ValueError),
        ("dev", ["a", "b"], ["Cel"], ValueError),
        ("dev", ["a"], [7], TypeError),
    ],
)
def test_a_layout_checks_its_names_once(
    device: str, names: list[str], units: list[object] | None, error: type[Exception]
) -> None:
    with pytest.raises(error):
        ReadingLayout(device, names, units)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("values", "time", "error"),
    [
        ([1.0, 2.0, 3.0], 1.0, ValueError),  # 3 values for 4 names
        ([1.0, math.nan, 3.0, 4.0], 1.0, ValueError),
        ([1.0, 2.0, math.inf, 4.0], 1.0, ValueError),
        ([1.0, "x", math.nan, 4.0], 1.0, ValueError),  # mixed types: checked one by one
        ([1.0, 2.0, 3.0, None], 1.0, TypeError),
        ([1.0, 2.0, 3.0, [1]], 1.0, TypeError),
        ([1.0, 2.0, 3.0, 4.0], math.nan, ValueError),
        ([1, 2, 3, 2**64], 1.0, ValueError),  # needs a bignum tag: no batch decoder takes it
        ([1, 2, 3, -(2**64) - 1], 1.0, ValueError),
        ([1, "x", 3, 2**64], 1.0, ValueError),
    ],
)
def test_a_block_checks_its_values_as_a_reading_does(
    values: list[object], time: float, error: type[Exception]
) -> None:
    with pytest.raises(error):
        ReadingBlock(_layout(), values, time)  # type: ignore[arg-type]


def test_only_the_ints_of_a_mixed_block_are_held_to_64_bits() -> None:
    # A float beyond 2**64 is an ordinary value; found by hypothesis in CI.
    big = 1.8446744073709552e19
    block = ReadingBlock(ReadingLayout("d", ["a", "b", "c"]), (0.0, big, 0), 1.0)
    assert [r.value for r in block] == [0.0, big, 0]
    assert ReadingBlock(ReadingLayout("d", ["a", "b"]), (-1e300, -5), 1.0).values == (-1e300, -5)
    with pytest.raises(ValueError, match="64 bits"):
        ReadingBlock(ReadingLayout("d", ["a", "b"]), (1.0, 2**64), 1.0)


def test_ints_span_cbors_64_bit_range_and_no_further() -> None:
    for ok in (2**64 - 1, -(2**64)):
        assert Reading("d", "n", ok).value == ok
        assert ReadingBlock(ReadingLayout("d", ["n"]), [ok], 1.0).values == [ok]
    for bad in (2**64, -(2**64) - 1):
        with pytest.raises(ValueError, match="64-bit"):
            Reading("d", "n", bad)
