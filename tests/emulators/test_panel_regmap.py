"""The register map computed on demand (:class:`RegisterMap`) against the plain walk
(:func:`build_register_map`): the same registers in the same order, the same load errors
(message, file, key, fix), the same reads and point locations, for every bundled profile and
for generated layouts; and a lookup builds only what it is asked for."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.modbus_panel.profile import (
    Block,
    BlockKind,
    Location,
    PointAddress,
    PointKind,
    Profile,
    Register,
    RegisterMap,
    Role,
    Table,
    available_profiles,
    load_profile,
)
from drivers.modbus_panel.profiles.layout import coalesce
from drivers.modbus_panel.profiles.schema import ProfileData
from edgesdk.config import parse
from edgesdk.errors import CommandError, ConfigError
from tests.emulators.regmap_walk import build_register_map

BUNDLED = sorted(available_profiles())
_FLAGS = ["ack_block", "prealarm", "trouble", "inactive", "active", "enabled", "disabled"]


def det(loop: int, slot: int) -> PointAddress:
    return PointAddress(loop, PointKind.DETECTOR, slot)


def _fresh(name: str) -> Profile:
    """A bundled profile loaded anew (load_profile's copy is shared and cached)."""
    data = load_profile(name).model_dump(by_alias=True)
    return Profile.from_mapping(data, file=f"{name}.toml")


def _old_read_blocks(
    regs: dict[tuple[Table, int], Register], size: int, kind: BlockKind | None, loops: int | None
) -> list[Block]:
    """read_blocks as it was: a walk over the whole eager map."""

    def within(reg: Register) -> bool:
        if loops is None or not reg.points:
            return True
        return any(p is not None and p.loop <= loops for p in reg.points)

    out: list[Block] = []
    for k in (BlockKind.STATUS, BlockKind.ANALOG):
        if kind is not None and k is not kind:
            continue
        for table in (Table.HOLDING, Table.INPUT):
            addrs = sorted(
                a for (t, a), reg in regs.items() if t is table and reg.kind is k and within(reg)
            )
            out.extend(coalesce(addrs, table, k, size))
    return out


def _old_locations(regs: dict[tuple[Table, int], Register]) -> dict[PointAddress, Location]:
    """locate() as it was: an index of every point of the eager map."""
    out: dict[PointAddress, Location] = {}
    for reg in regs.values():
        if reg.role is Role.POINT:
            for i, p in enumerate(reg.points):
                if p is not None:
                    out[p] = Location(reg.table, reg.address, i)
    return out


def _same_as_the_walk(profile: Profile, eager: dict[tuple[Table, int], Register]) -> None:
    lazy = profile.registers
    assert isinstance(lazy, RegisterMap)
    assert len(lazy) == len(eager)
    assert list(lazy) == list(eager)  # the same keys in the same order
    for key, reg in eager.items():
        assert lazy[key] == reg and lazy.get(key) == reg and key in lazy
        for near in ((key[0], key[1] - 1), (key[0], key[1] + 1)):  # the edges of every run
            assert (near in lazy) == (near in eager)
            assert lazy.get(near) == eager.get(near)
    assert dict(lazy.items()) == eager and lazy == eager
    for loops in (None, 1, 2):
        for kind in (None, BlockKind.STATUS, BlockKind.ANALOG):
            for size in (1, 7, 125):
                want = _old_read_blocks(eager, size, kind, loops)
                assert profile.read_blocks(size, kind=kind, loops=loops) == want
    for point, location in _old_locations(eager).items():
        assert profile.locate(point) == location


@pytest.mark.parametrize("name", BUNDLED)
def test_every_bundled_map_equals_the_eager_walk(name: str) -> None:
    profile = _fresh(name)
    _same_as_the_walk(profile, build_register_map(profile, file=f"{name}.toml"))


def test_a_miss_is_none_or_key_error_whatever_the_key() -> None:
    regs = _fresh("notifier-gw").registers
    assert regs.get((Table.HOLDING, 159)) is None  # between detector and module blocks
    assert regs.get((Table.INPUT, 10**6)) is None
    assert regs.get((Table.HOLDING, -1), "x") == "x"
    for odd in [(Table.HOLDING, "0"), (Table.HOLDING, 0.5), ("coils", 0), (1, 2, 3), 5, ()]:
        assert regs.get(odd) is None  # type: ignore[call-overload]
        assert odd not in regs
        with pytest.raises(KeyError):
            regs[odd]  # type: ignore[index]
    # a plain string names the table as well as the enum does (a StrEnum: equal, same hash)
    assert regs[("holding", 0)] == regs[(Table.HOLDING, 0)]  # type: ignore[index]


def test_a_point_outside_the_map_is_a_command_error() -> None:
    profile = _fresh("notifier-gw")  # 10 loops of 159 detectors and 159 modules
    for point in [det(11, 1), det(1, 160), det(1, 0), PointAddress(0, PointKind.MODULE, 1)]:
        with pytest.raises(CommandError, match="not in the map"):
            profile.locate(point)


def _registers_alive() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is Register)


def test_polling_two_loops_builds_the_registers_of_two_loops_once() -> None:
    before = _registers_alive()
    profile = _fresh("notifier-gw")  # 10 loops: 6,465 registers
    assert _registers_alive() == before  # loading lays the map out, builds nothing
    blocks = profile.read_blocks(kind=None, loops=2)
    polled = sum(b.count for b in blocks)
    layouts = [profile.block_registers(b) for b in blocks]
    assert _registers_alive() - before == polled < len(profile.registers) / 4
    # every unit of every driver gets the same tuples; a shorter read of a block (its
    # installed head) shares the registers of the whole one
    assert all(profile.block_registers(b) is t for b, t in zip(blocks, layouts, strict=True))
    head = profile.block_registers(Block(blocks[0].function, blocks[0].address, 20, blocks[0].kind))
    assert head == layouts[0][:20] and all(a is b for a, b in zip(head, layouts[0], strict=False))
    assert _registers_alive() - before == polled
    for block, layout in zip(blocks, layouts, strict=True):
        regs = profile.registers
        assert layout == tuple(
            regs.get((block.table, block.address + i)) for i in range(block.count)
        )
    del layouts, head


# -- generated layouts --------------------------------------------------------------------
_TABLES = {"holding": (40001, 49999, 400001), "input": (30001, 39999, 300001)}


@st.composite
def _number(draw: st.DrawFn, table: str | None = None) -> int:
    """Register numbers that often collide, and now and then sit near the end of a table
    (in both numberings: 5 digits end at address 9998, 6 digits at 65535)."""
    low, high, six = _TABLES[table or draw(st.sampled_from(sorted(_TABLES)))]
    where = draw(st.integers(0, 9))
    if where == 0:
        return draw(st.integers(high - 40, high))
    if where == 1:
        return draw(st.integers(six + 65535 - 40, six + 65535))
    if where < 5:  # crowded: runs meet
        return draw(st.integers(low, low + 300) if where < 4 else st.integers(six, six + 300))
    return draw(st.integers(low, high - 400) if where < 8 else st.integers(six, six + 65000))


@st.composite
def _layouts(draw: st.DrawFn) -> dict[str, Any]:
    """Profile data with random runs (points, zones, panel, counters, commands, analog)."""
    encoding: dict[str, Any] = (
        {"kind": "bits2", "states": {"normal": 0, "fire": 1, "fault": 2, "disabled": 3}}
        if draw(st.booleans())
        else {
            "kind": "flags",
            "flags": {**dict(zip(_FLAGS, range(8, 15), strict=True)), "acknowledged": 15},
            "events": {"fire": 0x10, "not_present": 0xFF},
        }
    )

    # most runs in one table, so that they crowd each other
    home = draw(st.sampled_from(sorted(_TABLES)))
    number = st.integers(0, 4).flatmap(lambda n: _number(home if n else None))

    def block() -> dict[str, int]:
        return {
            "base": draw(number),
            "loop_stride": draw(st.integers(1, 80)),
            "slots": draw(st.integers(1, 60)),
        }

    points: dict[str, Any] = {"loops": draw(st.integers(1, 4)), "detector": block()}
    if draw(st.booleans()):
        points["module"] = block()
    data: dict[str, Any] = {
        "spec": 1,
        "name": "generated",
        "vendor": "test",
        "description": "generated",
        "encoding": encoding,
        "points": points,
        "panel": {
            "status": draw(number),
            "status_bits": {"fire": 0},
            "counters": {"fire": draw(st.none() | number), "total": draw(st.none() | number)},
        },
    }
    if draw(st.booleans()):
        data["panel"]["heartbeat"] = draw(number)
    if draw(st.booleans()):
        data["zones"] = {"base": draw(number), "count": draw(st.integers(1, 40))}
    if draw(st.booleans()):  # a command register is a holding register (checked at load)
        data["commands"] = {"register": draw(_number("holding")), "reset": 1}
    if draw(st.booleans()):
        channels = draw(st.integers(1, 3))
        data["analog"] = {
            "base": draw(number),
            "loop_stride": draw(st.integers(1, 200)),
            "slots": draw(st.integers(1, 40)),
            "channels": [
                {"name": f"c{i}", "quantity": "smoke", "unit": "1", "scale": 1.0}
                for i in range(channels)
            ],
        }
    return data


@settings(max_examples=300, deadline=None)
@given(_layouts())
def test_generated_layouts_give_the_same_map_or_the_same_error(data: dict[str, Any]) -> None:
    model = parse(ProfileData, data, file="gen.toml")
    want: ConfigError | None = None
    try:
        eager = build_register_map(model, file="gen.toml")
    except ConfigError as exc:
        want = exc
    if want is None:
        _same_as_the_walk(Profile.from_mapping(data, file="gen.toml"), eager)
        return
    with pytest.raises(ConfigError) as got:
        RegisterMap(model, file="gen.toml")
    err = got.value
    assert (str(err), err.file, err.key, err.fix) == (str(want), want.file, want.key, want.fix)


def _minimal(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "spec": 1,
        "name": "edge",
        "vendor": "test",
        "description": "edge cases",
        "encoding": {
            "kind": "bits2",
            "states": {"normal": 0, "fire": 1, "fault": 2, "disabled": 3},
        },
        "points": {"loops": 2, "detector": {"base": 40001, "loop_stride": 100, "slots": 80}},
        "panel": {"status": 49001, "status_bits": {"fire": 0}},
    }
    data.update(changes)
    return data


_MODULES = {"base": 40051, "loop_stride": 100, "slots": 80}  # 10 words a loop: 50-59, 150-159


@pytest.mark.parametrize(
    ("data", "register", "key", "says"),
    [
        # the zones (55..154) overlap detector loop 2 (100..) and modules of loops 1 and 2;
        # the first clash in layout order is at 55, with the module run of loop 1
        (
            _minimal(
                points={
                    "loops": 2,
                    "detector": _minimal()["points"]["detector"],
                    "module": _MODULES,
                },
                zones={"base": 40056, "count": 800},
            ),
            40056,
            "zones.base",
            "also used by points.module.base",
        ),
        # loop 2 of a run starting near the end lies wholly past it
        (
            _minimal(
                points={"loops": 2, "detector": {"base": 49990, "loop_stride": 20, "slots": 8}}
            ),
            49999,
            "points.detector.base",
            "runs past the last register",
        ),
        # six digits reach address 65535, and the first register past it is refused
        (
            _minimal(
                points={"loops": 1, "detector": {"base": 465530, "loop_stride": 1, "slots": 64}}
            ),
            465536,
            "points.detector.base",
            "runs past the last register",
        ),
        # a five-digit run past 9998 meets a six-digit one there: past the end comes first
        (
            _minimal(
                panel={"status": 410000, "status_bits": {"fire": 0}},
                analog={
                    "base": 49995,
                    "loop_stride": 1000,
                    "slots": 8,
                    "channels": [{"name": "c", "quantity": "heat", "unit": "Cel", "scale": 1.0}],
                },
            ),
            49999,
            "analog.base",
            "runs past the last register",
        ),
    ],
)
def test_load_errors_name_the_first_register_the_walk_stops_at(
    data: dict[str, Any], register: int, key: str, says: str
) -> None:
    model = parse(ProfileData, data, file="edge.toml")
    with pytest.raises(ConfigError) as eager:
        build_register_map(model, file="edge.toml")
    with pytest.raises(ConfigError) as lazy:
        Profile.from_mapping(data, file="edge.toml")
    assert str(lazy.value) == str(eager.value)
    assert (lazy.value.file, lazy.value.key) == ("edge.toml", key)
    assert says in str(lazy.value) and str(register) in str(lazy.value)
