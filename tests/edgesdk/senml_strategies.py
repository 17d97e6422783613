"""Hypothesis strategies for readings and reading blocks, shared by the encoder tests.

Layouts come partly from a fixed pool, so one layout (and what encoders cached in
``layout.cache``) meets many packs: with and without ``bu``, first in a pack or not,
with and without a ``t``.
"""

from __future__ import annotations

import enum
from typing import Any

from hypothesis import strategies as st

from edgesdk.model import Reading, ReadingBlock, ReadingLayout, Value

__all__ = [
    "Level",
    "Mode",
    "Unit",
    "devices",
    "int64",
    "items",
    "names",
    "plain",
    "typed",
    "values",
]


class Level(enum.IntEnum):
    HIGH = 3


class Mode(enum.StrEnum):
    AUTO = "auto"


class Unit(enum.StrEnum):
    CELSIUS = "Cel"


devices = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9\-:._]{0,6}", fullmatch=True)
names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9\-:./_]{0,10}", fullmatch=True)
text_units = st.sampled_from(["Cel", "%/m", "Pa", "%RH", "1/min", "/", "", "°C"])
units = st.one_of(st.none(), text_units)

halves = st.floats(width=16, allow_nan=False, allow_infinity=False)
singles = st.floats(width=32, allow_nan=False, allow_infinity=False)
doubles = st.floats(allow_nan=False, allow_infinity=False)  # subnormals included
subnormals = st.floats(min_value=-2.3e-308, max_value=2.3e-308).filter(bool)
special_floats = st.sampled_from(
    [0.0, -0.0, 5e-324, 2.0**-24, -(2.0**-24), 2.0**-149, 2.0**-126, 65504.0, 65520.0,
     3.4028234663852886e38, 1.7976931348623157e308, 0.1, 1.5, -2.5]
)  # fmt: skip
floats = st.one_of(halves, singles, doubles, subnormals, special_floats)
# CBOR: 0..23, 1, 2, 4 and 8 byte heads (a Reading refuses ints needing a bignum tag)
ints = st.one_of(
    st.integers(-30, 30),
    st.integers(-(2**64), 2**64 - 1),
    st.sampled_from([23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1, -(2**64)]),
)
values = st.one_of(
    floats,
    ints,
    st.booleans(),
    st.text(max_size=30),
    st.binary(max_size=30),
    st.sampled_from([Level.HIGH, Mode.AUTO, b"", "", "x" * 24, b"y" * 300]),
)
# what survives a signed batch: no bignum (tags are refused) and no enum (comes back plain)
int64 = st.integers(-(2**64), 2**64 - 1)
plain = st.one_of(
    floats,
    int64,
    st.booleans(),
    st.text(max_size=30),
    st.binary(max_size=30),
)

BASE = 1_767_225_600.0
times = st.one_of(
    st.just(BASE),
    st.floats(0, 600).map(lambda d: BASE + d),
    st.integers(0, 600).map(lambda d: int(BASE) + d),
    st.floats(min_value=2.0**28, max_value=4e9),
    doubles,
)


def _pool() -> list[ReadingLayout]:
    return [
        ReadingLayout("panel1", [f"r{i:03d}" for i in range(12)], ["Cel"] * 12),
        ReadingLayout("panel1", ["a", "b", "c"], ["Pa", "Cel", "Cel"]),
        ReadingLayout("panel2", ["x", "y/z", "w"], ["%/m", None, "%/m"]),
        ReadingLayout("beacon4", ["air", "hr"], [Unit.CELSIUS, "1/min"]),
        ReadingLayout("cam1", ["label"]),
    ]


POOL = _pool()


@st.composite
def layouts(draw: st.DrawFn, all_units: bool = False) -> ReadingLayout:
    """A layout from the pool or a new one; ``all_units``: every name has a unit."""
    pool = [x for x in POOL if None not in x.units] if all_units else POOL
    if draw(st.booleans()):
        return draw(st.sampled_from(pool))
    size = draw(st.integers(1, 8))
    unit = text_units if all_units else draw(st.sampled_from([st.none(), text_units, units]))
    return ReadingLayout(
        draw(devices), draw(st.lists(names, min_size=size, max_size=size)),
        draw(st.lists(unit, min_size=size, max_size=size)),
    )  # fmt: skip


@st.composite
def blocks(
    draw: st.DrawFn,
    value: st.SearchStrategy[Value] = values,
    number: st.SearchStrategy[int] = ints,
    all_units: bool = False,
) -> ReadingBlock:
    """A block of all floats, all ints (the encoder's fast paths) or any values."""
    layout = draw(layouts(all_units))
    n = len(layout.names)
    kind = draw(st.sampled_from([floats, number, value, value]))
    return ReadingBlock(layout, tuple(draw(st.lists(kind, min_size=n, max_size=n))), draw(times))


@st.composite
def items(
    draw: st.DrawFn,
    value: st.SearchStrategy[Value] = values,
    number: st.SearchStrategy[int] = ints,
    max_size: int = 12,
) -> list[Reading | ReadingBlock]:
    """Readings and blocks mixed: devices change, units may all be set, times repeat."""
    device_pool = draw(st.lists(devices, min_size=1, max_size=3, unique=True))
    all_units = draw(st.booleans())
    unit = st.one_of(text_units, st.just(Unit.CELSIUS)) if all_units else units
    reading = st.builds(
        Reading,
        device=st.sampled_from(device_pool),
        name=names,
        value=value,
        unit=unit,
        time=times,
    )
    block = blocks(value, number, all_units)
    return draw(st.lists(st.one_of(reading, reading, block), max_size=max_size))


def typed(obj: Any) -> Any:
    """A structure equal only when values *and* their exact types (and zero signs) match."""
    if isinstance(obj, dict):
        return {(type(k).__name__, k): typed(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [typed(v) for v in obj]
    if isinstance(obj, Reading):
        return typed([obj.device, obj.name, obj.value, obj.unit, obj.time])
    if isinstance(obj, float):
        return ("float", obj, str(obj))
    return (type(obj).__name__, obj)
