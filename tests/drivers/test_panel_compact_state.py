"""The panel state kept compactly (words as ``array('H')``, analog values decoded from them
when asked, last reported values in ``array('d')`` per block) reports exactly what the
dict-based state did: checked against a reference model of it over generated reads. Bad
words are a ProtocolError that changes nothing; a 44-panel site's state stays small."""

from __future__ import annotations

import gc
import tracemalloc
from array import array
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.modbus_panel.profile import (
    Block,
    BlockKind,
    PointAddress,
    PointKind,
    PointStatus,
    Profile,
    Role,
    load_profile,
)
from drivers.modbus_panel.state import UnitState, reading_name
from edgesdk.errors import ProtocolError
from edgesdk.model import Item, RawItem, Reading, ReadingBlock

NOTIFIER = load_profile("notifier-gw")
_Row = tuple[str, str, str | None, float]  # name, repr(value), unit, time


def _raw_profile() -> Profile:
    """notifier-gw with one analog channel that has no 'absent' word (every word a value)."""
    data = NOTIFIER.model_dump(by_alias=True)
    data["analog"]["channels"] = [
        {"name": "raw", "quantity": "smoke", "unit": "1", "scale": 1.0, "signed": False}
    ]
    return Profile.from_mapping(data, file="raw.toml")


def _three_channels() -> Profile:
    """Two smoke channels (named by channel, not quantity) and a signed heat channel."""
    data = NOTIFIER.model_dump(by_alias=True)
    data["analog"]["channels"].insert(
        1, {"name": "ion", "quantity": "smoke", "unit": "%/m", "scale": 0.5, "absent": 0}
    )
    data["analog"]["loop_stride"] = 600
    return Profile.from_mapping(data, file="three.toml")


PROFILES = [NOTIFIER, _raw_profile(), _three_channels()]


class DictState:
    """The analog part of the state as it was kept before: dicts keyed by (point, channel)
    of the values last read and the values last reported (the reference)."""

    def __init__(self, unit: int, profile: Profile, deadbands: Sequence[float], every: bool):
        self.unit, self.profile, self.every = unit, profile, every
        assert profile.analog is not None
        self.channels = profile.analog.channels
        quantities = [c.quantity.value for c in self.channels]
        self.suffix = [
            q if quantities.count(q) == 1 else c.name
            for q, c in zip(quantities, self.channels, strict=True)
        ]
        self.deadband = list(deadbands)
        self.words: dict[tuple[int, int], list[int]] = {}
        self.values: dict[tuple[PointAddress, int], float | None] = {}
        self.reported: dict[tuple[PointAddress, int], float] = {}

    def read(self, block: Block, words: list[int], wall: float) -> list[_Row]:
        key = (block.function, block.address)
        prev = self.words.get(key)
        if prev == words and not self.every:
            return []
        self.words[key] = words
        if self.every or prev is None:
            changed: Sequence[int] = range(len(words))
        else:
            changed = [i for i, (a, b) in enumerate(zip(words, prev, strict=True)) if a != b]
        out = []
        for i in changed:
            reg = self.profile.registers.get((block.table, block.address + i))
            if reg is None or reg.role is not Role.ANALOG or reg.points[0] is None:
                continue
            akey = (reg.points[0], reg.channel)
            value = self.profile.decode_analog(self.channels[reg.channel], words[i])
            self.values[akey] = value
            if value is None:
                self.reported.pop(akey, None)
                continue
            last = self.reported.get(akey)
            band = self.deadband[reg.channel] - 1e-9
            if self.every or last is None or abs(value - last) >= band:
                out.append(self._row(akey, value, wall))
        return out

    def full_report(self, wall: float) -> list[_Row]:
        return [self._row(k, v, wall) for k, v in self.values.items() if v is not None]

    def _row(self, akey: tuple[PointAddress, int], value: float, wall: float) -> _Row:
        self.reported[akey] = value
        point, ch = akey
        name = reading_name(self.unit, point, self.suffix[ch])
        return name, repr(value), self.channels[ch].unit, wall


def _rows(items: Sequence[RawItem | Item]) -> list[_Row]:
    out: list[_Row] = []
    for item in items:
        for r in item if isinstance(item, ReadingBlock) else [item]:
            assert isinstance(r, Reading)
            if not r.name.endswith("/heartbeat"):
                out.append((r.name, repr(r.value), r.unit, r.time))
    return out


@st.composite
def _words(draw: st.DrawFn, profile: Profile, block: Block, before: list[int] | None) -> list[int]:
    """A read of ``block``: fresh words, or the last ones with a few changed."""
    assert profile.analog is not None
    special = [c.absent for c in profile.analog.channels if c.absent is not None] + [0, 0xFFFF]
    word = st.integers(0, 0xFFFF) | st.sampled_from(special)
    if before is None or draw(st.integers(0, 3)) == 0:
        return draw(st.lists(word, min_size=block.count, max_size=block.count))
    words = list(before)
    for i in draw(st.lists(st.integers(0, block.count - 1), max_size=6)):
        if draw(st.integers(0, 4)):  # mostly small steps: values creep inside their band
            words[i] = min(0xFFFF, max(0, words[i] + draw(st.integers(-8, 8))))
        else:
            words[i] = draw(word)
    return words


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_compact_state_reports_exactly_what_the_dict_state_did(data: st.DataObject) -> None:
    profile = data.draw(st.sampled_from(PROFILES), label="profile")
    assert profile.analog is not None
    every = data.draw(st.booleans(), label="every_poll")
    size = data.draw(st.sampled_from([125, 60, 7]), label="max_registers")
    blocks = profile.read_blocks(size, kind=BlockKind.ANALOG, loops=data.draw(st.integers(1, 2)))
    bands = [data.draw(st.sampled_from([0.0, 0.05, 0.5, 3.0])) for _ in profile.analog.channels]
    state = UnitState(3, profile, "p", deadbands=bands, every_poll=every)
    model = DictState(3, profile, bands, every)
    last: dict[Block, list[int]] = {}
    for step in range(data.draw(st.integers(1, 10), label="polls")):
        wall = float(step)
        # a poll reads some of the blocks (an offline unit, a cancelled poll), in any order
        order = data.draw(st.permutations(blocks))[: data.draw(st.integers(1, len(blocks)))]
        for block in order:
            words = data.draw(_words(profile, block, last.get(block)))
            last[block] = words
            as_link = array("H", words) if data.draw(st.booleans()) else words
            assert _rows(state.analog_block(block, as_link, wall)) == model.read(block, words, wall)
        if data.draw(st.integers(0, 2)) == 0:  # the deadband then counts from these values
            assert _rows(state.full_report(wall)) == model.full_report(wall)
        known = sorted(model.values, key=str)  # what was read, absent words included
        if known:
            for key in data.draw(st.lists(st.sampled_from(known), max_size=5)):
                assert state.analog(*key) == model.values[key]
    assert _rows(state.full_report(99.0)) == model.full_report(99.0)


def test_analog_queries() -> None:
    state = UnitState(1, NOTIFIER, "p")
    block = NOTIFIER.read_blocks(kind=BlockKind.ANALOG, loops=1)[1]  # slots 63..125
    smoke, heat = NOTIFIER.channel("obscuration"), NOTIFIER.channel("temperature")
    assert smoke.absent is not None and heat.absent is not None
    words = ([heat.absent, smoke.absent] * block.count)[: block.count]  # starts with heat
    words[1] = NOTIFIER.encode_analog(smoke, 1.25)  # slot 64 smoke
    words[0] = NOTIFIER.encode_analog(heat, -10.0)  # slot 63 heat
    state.analog_block(block, words, 1.0)
    d63, d64 = PointAddress(1, PointKind.DETECTOR, 63), PointAddress(1, PointKind.DETECTOR, 64)
    assert (state.analog(d63, 1), state.analog(d64, 0)) == (-10.0, 1.25)
    assert state.analog(d63, 0) is None  # its word says 'absent'
    assert state.analog(PointAddress(1, PointKind.DETECTOR, 1), 0) is None  # not read yet
    assert state.analog(PointAddress(1, PointKind.MODULE, 64), 0) is None  # no analog value
    assert state.analog(PointAddress(11, PointKind.DETECTOR, 1), 0) is None  # not in the map
    assert state.analog(d64, 2) is None and state.analog(d64, -1) is None  # no such channel


@pytest.mark.parametrize("kind", [BlockKind.STATUS, BlockKind.ANALOG])
def test_bad_words_are_a_protocol_error_that_changes_nothing(kind: BlockKind) -> None:
    block = NOTIFIER.read_blocks(kind=kind, loops=1)[0]
    state = UnitState(1, NOTIFIER, "p")

    def feed(words: Sequence[int]) -> list[RawItem] | list[Item]:
        if kind is BlockKind.STATUS:
            return state.status_block(block, words, 0.0, 1.0)
        return state.analog_block(block, words, 1.0)

    if kind is BlockKind.STATUS:
        fire = NOTIFIER.encode_point(PointStatus(alarm="fire"))  # type: ignore[arg-type]
        good = [fire] + [NOTIFIER.encode_point(PointStatus())] * (block.count - 1)
    else:
        good = [NOTIFIER.encode_analog(NOTIFIER.channel(0), 0.3)] * block.count
    for bad in (
        [*good[:-1], 0x10000],
        [-1, *good[1:]],
        [*good[:-1], 1.5],
        good[:-1],  # one word short
        [*good, 0],  # one too many
        array("H", good[:-1]),
    ):
        with pytest.raises(ProtocolError):
            feed(bad)  # type: ignore[arg-type]
    first = feed(good)  # still the first read: everything is news
    assert len(first) == (1 if kind is BlockKind.STATUS else block.count)
    assert feed(array("H", good)) == []


def _site_words(profile: Profile, block: Block) -> array[int]:
    """A loop of the footprint site: detectors and modules 1-20 installed (every fifth
    detector a heat detector), the other slots empty."""
    smoke, heat = profile.channel("obscuration"), profile.channel("temperature")
    assert smoke.absent is not None and heat.absent is not None
    empty = profile.encode_point(PointStatus(present=False))
    words = array("H")
    for reg in profile.block_registers(block):
        assert reg is not None
        point = reg.points[0] if reg.points else None
        if reg.role is Role.ANALOG and point is not None:
            is_heat = point.slot % 5 == 0
            if point.slot > 20 or is_heat != (reg.channel == 1):
                words.append(heat.absent if reg.channel else smoke.absent)
            else:
                words.append(
                    profile.encode_analog(heat if is_heat else smoke, 21.0 if is_heat else 0.2)
                )
        elif reg.role is Role.POINT and point is not None and point.slot > 20:
            words.append(empty)
        else:
            words.append(
                profile.encode_point(PointStatus()) if reg.role is not Role.HEARTBEAT else 7
            )
    return words


def test_a_44_panel_site_keeps_its_state_small() -> None:
    """The footprint benchmark's site: 44 panels of two loops. The words, layouts, names
    and analog state of every unit take under 1.5 MB (0.95 MB measured; as lists of ints
    and dicts keyed by (point, channel) they took 5.1 MB)."""
    profile = Profile.from_mapping(NOTIFIER.model_dump(by_alias=True), file="site.toml")
    status = [
        (b, _site_words(profile, b)) for b in profile.read_blocks(kind=BlockKind.STATUS, loops=2)
    ]
    analog = [
        (b, _site_words(profile, b)) for b in profile.read_blocks(kind=BlockKind.ANALOG, loops=2)
    ]
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        states = [UnitState(u, profile, "site", deadbands=[0.05, 0.5]) for u in range(1, 45)]
        for state in states:
            for block, words in status:  # a new array per read, as from the link
                state.status_block(block, array("H", words), 0.0, 1.0)
            for block, words in analog:
                state.analog_block(block, array("H", words), 1.0)
        used = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert used < 1_500_000, f"{used / 1e6:.2f} MB"
    assert all(s.heartbeat == 7 for s in states)
    # 20 detectors on each of 2 loops, one value each
    assert sum(len(s.full_report(2.0)) - 1 for s in states) == 44 * 2 * 20
