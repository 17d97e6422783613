"""``analog_every_poll``: every analog value of every poll is reported (raw sampling, as a
historian or ThingsBoard's ON_RECEIVED strategy wants), and analog channels without an
``absent`` word (every word is a value). The state is tested sans-I/O; the driver against
the real panel emulator over Modbus TCP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.modbus_panel.profile import BlockKind, Profile, load_profile
from drivers.modbus_panel.state import UnitState
from edgesdk.errors import CommandError
from edgesdk.model import Event, RawItem, Reading, ReadingBlock
from emulators.panel.emulator import PanelEmulator
from tests.drivers.cases_modbus_panel import Feed, eventually, open_driver, url_of

NOTIFIER = load_profile("notifier-gw")


def _flat(items: list[RawItem]) -> list[RawItem]:
    """Blocks as the readings they stand for (the driver's stream() does the same)."""
    out: list[RawItem] = []
    for item in items:
        out.extend(item if isinstance(item, ReadingBlock) else [item])
    return out


def _raw_profile() -> Profile:
    """notifier-gw with one analog channel that has no 'absent' word."""
    data = NOTIFIER.model_dump(by_alias=True)
    data["analog"]["channels"] = [
        {"name": "raw", "quantity": "smoke", "unit": "1", "scale": 1.0, "signed": False}
    ]
    data["analog"]["loop_stride"] = 400
    return Profile.from_mapping(data, file="raw.toml")


def test_every_poll_reports_unchanged_values_and_ignores_the_deadband() -> None:
    block = NOTIFIER.read_blocks(kind=BlockKind.ANALOG, loops=1)[0]
    smoke, heat = NOTIFIER.channel("obscuration"), NOTIFIER.channel("temperature")
    assert smoke.absent is not None and heat.absent is not None
    words = ([smoke.absent, heat.absent] * block.count)[: block.count]  # the whole block
    words[0] = NOTIFIER.encode_analog(smoke, 0.20)
    words[3] = NOTIFIER.encode_analog(heat, 21.0)
    every = UnitState(1, NOTIFIER, "p", deadbands=[0.05, 0.5], every_poll=True)
    usual = UnitState(1, NOTIFIER, "p", deadbands=[0.05, 0.5])
    for t in (1.0, 2.0, 3.0):  # the same words three times
        got = _flat(every.analog_block(block, list(words), t))
        assert [(r.name, r.value, r.time) for r in got if isinstance(r, Reading)] == [
            ("u1/l1/d001/smoke", 0.2, t),
            ("u1/l1/d002/heat", 21.0, t),
        ]
        assert len(usual.analog_block(block, list(words), t)) == (2 if t == 1.0 else 0)
    words[0] = NOTIFIER.encode_analog(smoke, 0.21)  # inside the 0.05 band: still reported
    got = _flat(every.analog_block(block, list(words), 4.0))
    assert {r.name: r.value for r in got if isinstance(r, Reading)}["u1/l1/d001/smoke"] == 0.21
    assert usual.analog_block(block, list(words), 4.0) == []
    words[0] = smoke.absent  # 'no value' is still not a reading
    got = _flat(every.analog_block(block, list(words), 5.0))
    assert [r.name for r in got if isinstance(r, Reading)] == ["u1/l1/d002/heat"]


def test_a_channel_without_absent_reads_every_word_as_a_value() -> None:
    profile = _raw_profile()
    raw = profile.channel("raw")
    assert raw.absent is None
    assert [profile.decode_analog(raw, w) for w in (0, 0x8000, 0xFFFF)] == [0.0, 32768.0, 65535.0]
    assert profile.encode_analog(raw, 65535.0) == 0xFFFF  # no sentinel to steer clear of
    with pytest.raises(CommandError, match="no 'absent' word"):
        profile.encode_analog(raw, None)
    state = UnitState(1, profile, "p", every_poll=True)
    block = profile.read_blocks(kind=BlockKind.ANALOG, loops=1)[0]
    blocks = state.analog_block(block, [0xFFFF] * block.count, 1.0)
    assert len(blocks) == 1 and isinstance(blocks[0], ReadingBlock)  # one block, not 125
    got = _flat(blocks)
    assert len(got) == block.count
    assert {r.value for r in got if isinstance(r, Reading)} == {65535.0}


@pytest.fixture
async def emu() -> AsyncIterator[PanelEmulator]:
    async with PanelEmulator(units=1, time_scale=0) as e:
        yield e


async def test_driver_reports_every_value_of_every_analog_poll(emu: PanelEmulator) -> None:
    options = {"analog_interval": 0.1, "loops": 1, "analog_every_poll": True}
    async with open_driver(url_of(emu, "tcp"), **options) as drv, Feed(drv) as feed:
        assert drv.config.analog_every_poll
        # loop 1 has 20 detectors: every poll reports the 20 values again, with the poll's
        # own time (the emulator's values stand still: time_scale=0)
        await feed.until(lambda: drv.health.counters["analog_cycles"] >= 5, what="polls")
        readings = [r for r in feed.readings() if r.name != "u1/heartbeat"]
        polls = drv.health.counters["analog_cycles"]
        by_time: dict[float, set[str]] = {}
        for r in readings:
            by_time.setdefault(r.time, set()).add(r.name)
        assert len(readings) >= 20 * (polls - 1)
        complete = [names for names in by_time.values() if len(names) == 20]
        assert len(complete) >= polls - 1 >= 4


async def test_driver_reports_changes_only_by_default(emu: PanelEmulator) -> None:
    async with open_driver(url_of(emu, "tcp"), analog_interval=0.1, loops=1) as drv:
        assert not drv.config.analog_every_poll
        async with Feed(drv) as feed:
            await feed.until(lambda: drv.health.counters["analog_cycles"] >= 5, what="polls")
            names = [r.name for r in feed.readings() if r.name != "u1/heartbeat"]
            assert len(names) == len(set(names)) == 20  # the first poll only


async def test_every_poll_comes_as_blocks_and_pressure_skips_analog_polls_not_alarms(
    emu: PanelEmulator,
) -> None:
    options = {"analog_interval": 0.1, "loops": 1, "analog_every_poll": True}
    async with open_driver(url_of(emu, "tcp"), **options) as drv:
        items: list[RawItem] = []

        async def pump() -> None:
            async for item in drv.stream_blocks():
                items.append(item)

        task = asyncio.create_task(pump())
        try:
            await eventually(lambda: drv.health.counters["analog_cycles"] >= 3, what="polls")
            blocks = [i for i in items if isinstance(i, ReadingBlock)]
            assert blocks and all(len(b) == 20 for b in blocks)  # loop 1's 20 detectors
            drv.set_pressure(True)
            await eventually(lambda: drv.health.counters["analog_skipped"] >= 5, what="skips")
            cycles = drv.health.counters["analog_cycles"]
            emu.set_point(1, 1, 7, alarm="fire")  # a fire while telemetry is held back
            await eventually(
                lambda: any(isinstance(i, Event) and i.kind == "fire" for i in items),
                what="the fire",
            )
            assert drv.health.counters["analog_cycles"] == cycles  # no analog poll meanwhile
            drv.set_pressure(False)
            await eventually(
                lambda: drv.health.counters["analog_cycles"] >= cycles + 3, what="polls again"
            )
        finally:
            task.cancel()
            await asyncio.wait({task}, timeout=5)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_whole_blocks_decode_exactly_as_value_by_value(data: st.DataObject) -> None:
    profile = data.draw(st.sampled_from([NOTIFIER, _raw_profile()]))
    block = profile.read_blocks(kind=BlockKind.ANALOG, loops=1)[0]
    every = UnitState(1, profile, "p", every_poll=True)
    for t in (1.0, 2.0):
        absent = [c.absent for c in profile.analog.channels if c.absent is not None]  # type: ignore[union-attr]
        word = st.integers(0, 0xFFFF) | st.sampled_from(absent or [0])
        words = data.draw(st.lists(word, min_size=block.count, max_size=block.count))
        usual = UnitState(1, profile, "p")  # a first read reports every present value
        want = [
            (r.name, r.value, r.unit)
            for r in _flat(usual.analog_block(block, words, t))
            if isinstance(r, Reading)
        ]
        got = [
            (r.name, r.value, r.unit)
            for r in _flat(every.analog_block(block, words, t))
            if isinstance(r, Reading)
        ]
        assert [(n, repr(v), u) for n, v, u in got] == [(n, repr(v), u) for n, v, u in want]
        report = usual.full_report(t)
        assert every.full_report(t) == [
            r for r in report if isinstance(r, Reading) and r.name != "u1/heartbeat"
        ]
