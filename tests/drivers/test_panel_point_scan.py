"""Polling only the installed points (``point_scan_interval``): the profile's trim of a block
read whole, the per-unit plan (sans I/O), and the driver against the real panel emulator:
fewer requests between scans, a fire on an installed point and on a point installed since
the last scan, a quiet new device found by the periodic scan."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from drivers.modbus_panel.profile import (
    Alarm,
    Block,
    BlockKind,
    PointStatus,
    Profile,
    load_profile,
)
from drivers.modbus_panel.scan import PointScan
from edgesdk.errors import ProtocolError
from edgesdk.model import EventKind
from emulators.panel.emulator import PanelEmulator
from tests.drivers.cases_modbus_panel import Feed, open_driver, url_of

NOTIFIER = load_profile("notifier-gw")
GST = load_profile("gst-compact")
ABSENT = NOTIFIER.encode_point(PointStatus(present=False))
NORMAL = NOTIFIER.encode_point(PointStatus())
FIRE = NOTIFIER.encode_point(PointStatus(alarm=Alarm.FIRE))
# notifier-gw, 2 loops, 20 detectors and 10 modules a loop (the emulator's default panel)
MAP = [(0, 125), (125, 34), (200, 125), (325, 34), (400, 125), (525, 34), (600, 125), (725, 34)]
MAP += [(9000, 99), (9499, 5)]
INSTALLED = [(0, 20), (200, 10), (400, 20), (600, 10), (9000, 99), (9499, 5)]


def status_blocks(profile: Profile = NOTIFIER, loops: int = 2) -> list[Block]:
    return profile.read_blocks(kind=BlockKind.STATUS, loops=loops)


def point_words(block: Block, detectors: int = 20, modules: int = 10) -> list[int]:
    """A notifier-gw point block of a panel with ``detectors`` and ``modules`` a loop."""
    out = []
    for i in range(block.count):
        offset = (block.address + i) % 400  # loop stride 400: detectors, then modules at 200
        slot, installed = (offset, detectors) if offset < 200 else (offset - 200, modules)
        out.append(NORMAL if slot < installed else ABSENT)
    return out


def words_for(block: Block, detectors: int = 20, counter: int = 0, beat: int = 0) -> list[int]:
    """Any status block: points, zones (none in use) or the panel block (status word,
    heartbeat, three counters)."""
    if block.address == 9499:
        return [0, beat, counter, 0, counter]
    if block.address >= 9000:
        return [ABSENT] * block.count
    return point_words(block, detectors)


def spans(blocks: list[Block]) -> list[tuple[int, int]]:
    return [(b.address, b.count) for b in blocks]


# -- the trim -----------------------------------------------------------------------------
def test_a_point_block_is_read_up_to_its_last_installed_point() -> None:
    first = status_blocks()[0]  # loop 1 detectors 1..125
    assert (first.address, first.count) == (0, 125)
    assert NOTIFIER.trimmable(BlockKind.STATUS) and NOTIFIER.trimmable(BlockKind.ANALOG)
    part = NOTIFIER.installed_part(first, point_words(first))
    assert part == Block(3, 0, 20, BlockKind.STATUS)
    # a gap of empty slots before the last device is read (only the tail goes)
    words = [ABSENT] * first.count
    words[2] = words[60] = FIRE
    assert NOTIFIER.installed_part(first, words) == Block(3, 0, 61, BlockKind.STATUS)
    # the last slot holds a device: the block as it was; no device at all: nothing
    words[124] = NORMAL
    assert NOTIFIER.installed_part(first, words) is first
    assert NOTIFIER.installed_part(first, [ABSENT] * first.count) is None


def test_zone_and_panel_registers_are_always_read() -> None:
    zones, panel = status_blocks()[-2:]
    assert NOTIFIER.installed_part(zones, [ABSENT] * zones.count) is zones
    assert NOTIFIER.installed_part(panel, [0] * panel.count) is panel


def test_a_two_bit_map_has_no_empty_slot_to_leave_out() -> None:
    assert not GST.trimmable(BlockKind.STATUS)
    block = status_blocks(GST, loops=1)[0]
    assert GST.installed_part(block, [0] * block.count) is block


def test_analog_values_are_read_up_to_the_last_one_present() -> None:
    block = NOTIFIER.read_blocks(kind=BlockKind.ANALOG, loops=1)[0]
    smoke, heat = NOTIFIER.channel("obscuration"), NOTIFIER.channel("temperature")
    assert smoke.absent is not None and heat.absent is not None
    absent = [heat.absent if i % 2 else smoke.absent for i in range(block.count)]
    assert NOTIFIER.installed_part(block, absent) is None
    words = list(absent)
    words[2 * 9 + 1] = 215  # detector 10 is a heat detector: its smoke word stays absent
    assert NOTIFIER.installed_part(block, words) == Block(4, block.address, 20, BlockKind.ANALOG)


def test_a_reply_of_the_wrong_length_is_a_protocol_error() -> None:
    block = status_blocks()[0]
    with pytest.raises(ProtocolError, match="answered 3 registers"):
        NOTIFIER.installed_part(block, [NORMAL] * 3)


# -- the plan -----------------------------------------------------------------------------
def read_all(scan: PointScan, blocks: list[Block], **state: int) -> None:
    for block in blocks:
        scan.note(block, words_for(block, **state))


def news(scan: PointScan) -> bool:
    return scan.changed


def test_the_whole_map_first_then_the_installed_part_until_the_next_scan() -> None:
    scan = PointScan(NOTIFIER, status_blocks(), interval=60.0)
    first = scan.plan(0.0, generation=1)
    assert spans(first) == MAP
    read_all(scan, first)
    scan.done(0.5, generation=1)
    assert scan.scans == 1
    assert spans(scan.plan(1.0, generation=1)) == INSTALLED
    read_all(scan, scan.polled)
    scan.done(1.5, generation=1)
    assert scan.scans == 1  # a poll of the installed part is no scan
    assert spans(scan.plan(59.0, generation=1)) == INSTALLED
    assert spans(scan.plan(60.5, generation=1)) == MAP  # the interval is up
    # a new connection, or a unit back from offline, reads the whole map at once
    assert spans(scan.plan(2.0, generation=2)) == MAP
    fresh = PointScan(NOTIFIER, status_blocks(), interval=60.0)
    read_all(fresh, fresh.plan(0.0, 1))
    fresh.done(0.0, 1)
    assert spans(fresh.plan(1.0, 1, whole=True)) == MAP


def test_news_in_a_zone_panel_or_counter_word_reads_the_rest_at_once() -> None:
    scan = PointScan(NOTIFIER, status_blocks(), interval=60.0)
    read_all(scan, scan.plan(0.0, 1))
    scan.done(0.0, 1)
    read_all(scan, scan.plan(1.0, 1), beat=1)  # the heartbeat moves every poll: no news
    assert not news(scan)
    scan.done(1.0, 1)
    read_all(scan, scan.plan(2.0, 1), beat=2, counter=1)  # the panel counted a new event
    assert news(scan)
    rest = scan.rest()
    assert spans(rest) == MAP[:8]  # every point block, read whole
    read_all(scan, rest, detectors=25, beat=2, counter=1)  # detector 25 appeared meanwhile
    scan.done(2.5, 1)
    assert scan.scans == 2 and not news(scan)
    assert spans(scan.polled) == [(0, 25), (200, 10), (400, 25), (600, 10), (9000, 99), (9499, 5)]


def test_interval_zero_and_two_bit_maps_always_read_the_whole_map() -> None:
    for profile, interval in ((NOTIFIER, 0.0), (GST, 60.0)):
        blocks = status_blocks(profile, loops=1)
        scan = PointScan(profile, blocks, interval)
        for now in (0.0, 1.0, 2.0):
            assert scan.plan(now, 1) == blocks
            for block in blocks:
                scan.note(block, [0] * block.count)
            scan.done(now, 1)
        assert scan.polled == blocks


def test_a_panel_with_nothing_installed_still_answers_one_block_a_poll() -> None:
    blocks = [b for b in status_blocks(loops=1) if b.address < 9000]  # points only
    scan = PointScan(NOTIFIER, blocks, interval=60.0)
    for block in scan.plan(0.0, 1):
        scan.note(block, [ABSENT] * block.count)
    scan.done(0.0, 1)
    assert scan.polled == blocks[:1]


# -- against the emulator -----------------------------------------------------------------
@pytest.fixture
async def emu() -> AsyncIterator[PanelEmulator]:
    async with PanelEmulator(units=2, time_scale=0) as e:
        yield e


async def test_between_scans_only_the_installed_points_are_polled(emu: PanelEmulator) -> None:
    options = {"units": [1, 2], "point_scan_interval": 60.0, "analog_interval": 60.0}
    options["full_report_interval"] = 60.0
    async with open_driver(url_of(emu, "tcp"), **options) as drv, Feed(drv) as feed:
        await feed.until(lambda: drv.health.counters["status_cycles"] >= 3, what="polling")
        poller = drv._poller
        assert poller is not None
        for unit in (1, 2):
            assert spans(poller.scans[unit].polled) == INSTALLED
            assert poller.scans[unit].scans == 1
        before = dict(drv.health.counters)
        await feed.until(
            lambda: drv.health.counters["status_cycles"] >= before["status_cycles"] + 10
        )
        after = dict(drv.health.counters)
        cycles = after["status_cycles"] - before["status_cycles"]
        requests = after["requests"] - before["requests"]
        # 6 status reads a unit a poll instead of 10 (a poll may be half done at either end)
        assert 2 * 6 * (cycles - 1) <= requests <= 2 * 6 * (cycles + 1)
        assert after["registers"] - before["registers"] <= 2 * 184 * (cycles + 1)
        # a fire on an installed point: raised within a poll or two
        emu.set_point(2, 2, 7, alarm="fire")
        fire = await feed.event(EventKind.FIRE, within=2.0, unit=2)
        assert (fire.data["loop"], fire.data["point"]) == (2, "d007")


async def test_a_fire_on_a_point_installed_since_the_last_scan_is_seen_at_once() -> None:
    async with PanelEmulator(units=1, time_scale=0) as emu:
        emu.set_point(1, 1, 20, present=False)  # detector 20 not installed (yet)
        emu.set_point(1, 2, 10, kind="module", present=False)
        async with (
            open_driver(url_of(emu, "tcp"), point_scan_interval=3600.0) as drv,
            Feed(drv) as feed,
        ):
            await feed.until(lambda: drv.health.counters["status_cycles"] >= 3, what="polling")
            scan = drv._poller.scans[1]  # type: ignore[union-attr]
            assert spans(scan.polled)[:4] == [(0, 19), (200, 10), (400, 20), (600, 9)]
            # installed and in fire at once: its zone word and the panel's counters move,
            # so the same poll reads the whole map and finds the point
            emu.set_point(1, 1, 20, present=True, alarm="fire")
            fire = await feed.event(EventKind.FIRE, within=2.0)
            assert (fire.data["loop"], fire.data["point"]) == (1, "d020")
            await feed.until(lambda: spans(scan.polled)[0] == (0, 20), within=2.0)
            assert scan.scans >= 2


async def test_a_quiet_new_device_is_found_by_the_next_scan() -> None:
    async with PanelEmulator(units=1, time_scale=0) as emu:
        emu.set_point(1, 1, 20, present=False)
        async with (
            open_driver(url_of(emu, "tcp"), point_scan_interval=1.0) as drv,
            Feed(drv) as feed,
        ):
            await feed.until(lambda: drv.health.counters["status_cycles"] >= 3, what="polling")
            scan = drv._poller.scans[1]  # type: ignore[union-attr]
            assert spans(scan.polled)[0] == (0, 19)
            scans = scan.scans
            emu.set_point(1, 1, 20, present=True)  # a normal device: nothing to report
            await feed.until(lambda: spans(scan.polled)[0] == (0, 20), within=5.0)
            assert scan.scans > scans
            # and from now on its trouble comes from the regular poll
            emu.set_point(1, 1, 20, trouble=True)
            trouble = await feed.event(EventKind.POINT_TROUBLE, within=2.0)
            assert trouble.data["point"] == "d020"


async def test_by_default_every_poll_reads_the_whole_map(emu: PanelEmulator) -> None:
    async with open_driver(url_of(emu, "tcp")) as drv, Feed(drv) as feed:
        await feed.until(lambda: drv.health.counters["status_cycles"] >= 3, what="polling")
        scan = drv._poller.scans[1]  # type: ignore[union-attr]
        assert drv.config.point_scan_interval == 0.0
        assert spans(scan.polled) == MAP and scan.scans == 0
