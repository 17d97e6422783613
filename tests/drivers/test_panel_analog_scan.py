"""Analog blocks read through the installed-points scan (``point_scan_interval``): the plan
over an analog map (sans I/O), and the driver against the real panel emulator: fewer analog
requests, the same readings as a whole-map poll, a detector installed into a trimmed-off
slot found by the scan or at once by the status scan, a reconnect reading the map whole,
and the default (no scan) reading every analog block whole."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from drivers.modbus_panel import ModbusPanelDriver
from drivers.modbus_panel.profile import Block, BlockKind
from drivers.modbus_panel.scan import PointScan
from edgesdk.model import EventKind
from emulators.panel.emulator import PanelEmulator
from tests.drivers.cases_modbus_panel import Feed, open_driver, url_of
from tests.drivers.test_panel_point_scan import NOTIFIER, spans, status_blocks, words_for

SMOKE, HEAT = NOTIFIER.channel("obscuration"), NOTIFIER.channel("temperature")
# notifier-gw analog map, 2 loops: 159 detectors x (smoke, heat) words a loop, at 0 and 400
ANALOG_MAP = [(0, 125), (125, 125), (250, 68), (400, 125), (525, 125), (650, 68)]
# status polls rare, analog polls quick: the requests between status polls are analog ones
QUIET_STATUS: dict[str, Any] = {"status_interval": 30.0, "analog_interval": 0.1}


def analog_blocks(loops: int = 2) -> list[Block]:
    return NOTIFIER.read_blocks(kind=BlockKind.ANALOG, loops=loops)


def analog_words(block: Block, detectors: int = 20) -> list[int]:
    """An analog block of a panel with ``detectors`` smoke detectors a loop (value 10)."""
    assert SMOKE.absent is not None and HEAT.absent is not None
    out = []
    for i in range(block.count):
        slot, word = divmod((block.address + i) % 400, 2)
        if slot < detectors and word == 0:
            out.append(10)
        else:
            out.append(HEAT.absent if word else SMOKE.absent)
    return out


def controller(drv: ModbusPanelDriver) -> Any:
    poller = drv._poller
    assert poller is not None
    return poller


async def more_polls(drv: ModbusPanelDriver, feed: Feed[ModbusPanelDriver], n: int) -> None:
    """Wait (bounded) for ``n`` more analog polls of ``drv``."""
    cycles = drv.health.counters["analog_cycles"]  # health is a snapshot: read it anew
    await feed.until(lambda: drv.health.counters["analog_cycles"] >= cycles + n, what="polls")


async def count_of(feed: Feed[ModbusPanelDriver], name: str, n: int) -> None:
    """Wait (bounded) for ``n`` readings named ``name``."""
    await feed.until(lambda: feed.count(name) >= n, what=f"{n} readings of {name}")


async def assert_analog_requests(
    drv: ModbusPanelDriver, feed: Feed[ModbusPanelDriver], per_poll: int
) -> None:
    """``per_poll`` requests per analog poll over 10 polls (status polls 30 s apart: none in
    between; a poll may be half done when the counters are read, at either end).

    First the first status cycle must be over, and then two analog polls: its status
    requests share the link, and with a scan its first whole read makes the next analog
    poll read the analog map whole (6 requests). On a slow machine that first status cycle
    can end after the analog scan has trimmed (CI saw 25 requests in 10 polls of 2)."""
    poller = controller(drv)
    status = poller.scans[1]
    await feed.until(
        lambda: (
            drv.health.counters["status_cycles"] >= 1
            and (status.scans >= 1 or not poller.analog_scans)
        ),
        what="the first status cycle",
    )
    await more_polls(drv, feed, 3)  # a status cycle reads 1-4 blocks: over by then
    before = drv.health.counters
    await more_polls(drv, feed, 10)
    after = drv.health.counters
    cycles = after["analog_cycles"] - before["analog_cycles"]
    requests = after["requests"] - before["requests"]
    assert per_poll * (cycles - 1) <= requests <= per_poll * (cycles + 1), (requests, cycles)


# -- the plan -----------------------------------------------------------------------------
def test_an_analog_map_is_read_whole_then_up_to_its_last_value() -> None:
    scan = PointScan(NOTIFIER, analog_blocks(), interval=60.0)
    first = scan.plan(0.0, generation=1)
    assert spans(first) == ANALOG_MAP
    for block in first:
        scan.note(block, analog_words(block))
    scan.done(0.5, generation=1)
    # detector 20's heat word is absent: the last value is its smoke word (index 38)
    assert scan.scans == 1 and spans(scan.plan(1.0, 1)) == [(0, 39), (400, 39)]
    assert spans(scan.plan(1.0, 1, whole=True)) == ANALOG_MAP  # the status scan asks
    assert spans(scan.plan(1.0, 2)) == ANALOG_MAP  # a new link
    assert spans(scan.plan(60.5, 1)) == ANALOG_MAP  # the interval is up
    assert scan.news == 0  # an analog map has no watched register


def test_the_status_scan_counts_its_news_for_the_analog_scan() -> None:
    status = PointScan(NOTIFIER, status_blocks(), interval=60.0)
    for block in status.plan(0.0, 1):
        status.note(block, words_for(block))
    status.done(0.0, 1)
    assert (status.scans, status.news) == (1, 0)
    for block in status.plan(1.0, 1):
        status.note(block, words_for(block, beat=1))  # the heartbeat is no news
    assert status.news == 0
    for block in status.plan(2.0, 1):
        status.note(block, words_for(block, beat=2, counter=1))
    assert status.news == 1 and status.changed


# -- against the emulator -----------------------------------------------------------------
@pytest.fixture
async def emu() -> AsyncIterator[PanelEmulator]:
    async with PanelEmulator(units=1, time_scale=0) as e:
        yield e


async def test_scanning_reads_fewer_analog_blocks_and_the_same_readings(
    emu: PanelEmulator,
) -> None:
    """Two drivers on one panel, scanning and not: the same readings, fewer requests."""
    url = url_of(emu, "tcp")
    async with (
        open_driver(url, point_scan_interval=60.0, **QUIET_STATUS) as on,
        Feed(on) as on_feed,
        open_driver(url, **QUIET_STATUS) as off,
        Feed(off) as off_feed,
    ):
        for feed in (on_feed, off_feed):
            await count_of(feed, "u1/l2/d020/heat", 1)  # the last value of the map
        scan = controller(on).analog_scans[1]
        await on_feed.until(lambda: spans(scan.polled) == [(0, 40), (400, 40)], within=2.0)
        assert scan.scans >= 1
        assert controller(off).analog_scans == {}
        await assert_analog_requests(on, on_feed, 2)
        await assert_analog_requests(off, off_feed, 6)
        # a change above the deadband, one below it, on installed detectors of both loops
        smoke = "u1/l2/d004/smoke"
        old = float(on_feed.readings(smoke)[0].value)
        emu.set_analog(1, 2, 4, old + 1.0)
        emu.set_analog(1, 1, 3, float(on_feed.readings("u1/l1/d003/smoke")[0].value) + 0.01)
        emu.set_analog(1, 1, 20, 0.9)
        for drv, feed in ((on, on_feed), (off, off_feed)):
            await count_of(feed, smoke, 2)
            await count_of(feed, "u1/l1/d020/heat", 2)
            await more_polls(drv, feed, 3)

        def seen(feed: Feed[ModbusPanelDriver]) -> dict[str, list[object]]:
            out: dict[str, list[object]] = {}
            for r in feed.readings():
                out.setdefault(r.name, []).append(r.value)
            return out

        got = seen(on_feed)
        assert got == seen(off_feed)
        assert got[smoke] == [pytest.approx(old), pytest.approx(old + 1.0)]
        assert len(got["u1/l1/d003/smoke"]) == 1  # under the deadband: not reported
        assert len(got) == 41  # 40 detectors and the heartbeat


async def test_every_poll_sampling_is_unchanged_by_the_scan(emu: PanelEmulator) -> None:
    url = url_of(emu, "tcp")
    options = {"analog_every_poll": True, **QUIET_STATUS}
    async with (
        open_driver(url, point_scan_interval=60.0, **options) as on,
        Feed(on) as on_feed,
        open_driver(url, **options) as off,
        Feed(off) as off_feed,
    ):
        polls = []
        for drv, feed in ((on, on_feed), (off, off_feed)):
            await more_polls(drv, feed, 3)
            mark = len(feed.items)
            await more_polls(drv, feed, 3)
            polls.append({(r.name, r.value) for r in feed.readings(since=mark)})
        assert spans(controller(on).analog_scans[1].polled) == [(0, 40), (400, 40)]
        assert len(polls[0]) == 40 and polls[0] == polls[1]


async def test_a_quiet_new_detector_gets_readings_from_the_next_scan() -> None:
    async with PanelEmulator(units=1, time_scale=0) as emu:
        emu.set_point(1, 1, 20, present=False)  # detector 20 not installed (yet)
        options = {"point_scan_interval": 0.5, "analog_interval": 0.1}
        async with open_driver(url_of(emu, "tcp"), **options) as drv, Feed(drv) as feed:
            await feed.until(lambda: drv.health.counters["analog_cycles"] >= 3, what="polling")
            scan = controller(drv).analog_scans[1]
            assert spans(scan.polled)[0] == (0, 37)  # up to detector 19's smoke word
            assert feed.count("u1/l1/d020/heat") == 0
            scans = scan.scans
            emu.set_point(1, 1, 20, present=True)  # a normal device: no event, no news
            await feed.until(lambda: feed.count("u1/l1/d020/heat") >= 1, within=5.0)
            # the readings come during the whole read; the new plan right after it
            await feed.until(lambda: spans(scan.polled)[0] == (0, 40), within=2.0)
            assert scan.scans > scans
            # from now on its values come with the regular poll
            emu.set_analog(1, 1, 20, 1.5)
            await feed.until(lambda: feed.count("u1/l1/d020/heat") >= 2, within=3.0)
            assert feed.readings("u1/l1/d020/heat")[-1].value == pytest.approx(1.5)


async def test_a_detector_the_status_scan_finds_is_read_at_the_next_analog_poll() -> None:
    async with PanelEmulator(units=1, time_scale=0) as emu:
        emu.set_point(1, 1, 20, present=False)
        options = {"point_scan_interval": 3600.0, "analog_interval": 0.2}
        async with open_driver(url_of(emu, "tcp"), **options) as drv, Feed(drv) as feed:
            await feed.until(lambda: drv.health.counters["analog_cycles"] >= 3, what="polling")
            scan = controller(drv).analog_scans[1]
            assert spans(scan.polled)[0] == (0, 37)
            scans = scan.scans
            # installed in fire: the status scan sees news and reads its map whole, and the
            # analog scan follows (its own interval is an hour away)
            emu.set_point(1, 1, 20, present=True, alarm="fire")
            await feed.event(EventKind.FIRE, within=2.0, point="d020")
            await feed.until(lambda: feed.count("u1/l1/d020/heat") >= 1, within=3.0)
            # the readings come during the whole read; the new plan right after it
            await feed.until(lambda: spans(scan.polled)[0] == (0, 40), within=2.0)
            assert scan.scans > scans


async def test_a_reconnect_reads_the_analog_map_whole(emu: PanelEmulator) -> None:
    options = {"point_scan_interval": 3600.0, "analog_interval": 0.1}
    async with open_driver(url_of(emu, "tcp"), **options) as drv, Feed(drv) as feed:
        await feed.until(lambda: drv.health.counters["analog_cycles"] >= 3, what="polling")
        scan = controller(drv).analog_scans[1]
        scans = scan.scans
        assert emu.drop_connections() >= 1
        await feed.until(lambda: drv.health.counters["connects"] >= 2, what="a reconnect")
        await feed.until(lambda: scan.scans > scans, within=3.0, what="a whole analog read")
        assert spans(scan.polled) == [(0, 40), (400, 40)]


async def test_by_default_every_analog_block_is_read_whole(emu: PanelEmulator) -> None:
    async with open_driver(url_of(emu, "tcp"), **QUIET_STATUS) as drv, Feed(drv) as feed:
        assert drv.config.point_scan_interval == 0.0
        poller = controller(drv)
        assert poller.analog_scans == {}
        assert spans(poller.analog_blocks[1]) == ANALOG_MAP
        await assert_analog_requests(drv, feed, 6)
