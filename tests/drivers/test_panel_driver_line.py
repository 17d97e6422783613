"""One RS-485 line, several panels and several driver instances: one request at a time.

Two driver instances naming the same serial device share one client and one lock (a
module-level registry keyed by the device's real path), keep the inter-frame gap between
each other's requests, and the emulated line sees only clean frames.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from drivers.modbus_panel.transport import lines
from edgesdk import driver
from edgesdk.errors import ConfigError
from edgesdk.model import EventKind
from emulators.panel.emulator import PanelEmulator
from tests.drivers.cases_modbus_panel import FAST, Feed, eventually, open_driver, url_of


@pytest.fixture
async def emu() -> AsyncIterator[PanelEmulator]:
    async with PanelEmulator(units=2, tcp=None, rtu=True, time_scale=0) as e:
        yield e


async def test_two_instances_on_one_line_share_it(emu: PanelEmulator) -> None:
    url = url_of(emu, "rtu")
    async with contextlib.AsyncExitStack() as stack:
        one = await stack.enter_async_context(open_driver(url, units=[1]))
        two = await stack.enter_async_context(open_driver(url, units=[2]))
        (line,) = lines().values()
        assert line.refs == 2
        feed1 = await stack.enter_async_context(Feed(one))
        feed2 = await stack.enter_async_context(Feed(two))
        emu.set_point(1, 1, 3, alarm="fire")
        emu.set_point(2, 2, 4, alarm="fire")
        assert (await feed1.event(EventKind.FIRE)).data["unit"] == 1
        assert (await feed2.event(EventKind.FIRE)).data["unit"] == 2
        # both poll every 100 ms: their requests meet at the lock and queue, never overlap
        await eventually(lambda: one.health.counters["line_waits"] > 0, what="contention")
        cycles = two.health.counters["status_cycles"]
        await feed2.until(lambda: two.health.counters["status_cycles"] >= cycles + 5)
        for drv in (one, two):
            counters = drv.health.counters
            assert counters["line_max_in_flight"] == 1
            assert counters["timeouts"] == counters["crc_errors"] == counters["failures"] == 0
        assert feed1.events(EventKind.FIRE, unit=2) == []  # each reads its own panel
        assert feed2.events(EventKind.FIRE, unit=1) == []
    assert lines() == {}
    rtu = emu.counters()["rtu"]
    # every frame on the line arrived whole and was answered: no garbled or glued requests
    assert rtu["frames_in"] == rtu["frames_out"] > 0
    assert [rtu.get(k, 0) for k in ("crc_errors", "bad_frames", "stale_bytes")] == [0, 0, 0]
    units = emu.counters()["units"]
    assert units["1"]["reads"] > 0 and units["2"]["reads"] > 0


async def test_the_inter_frame_gap_holds_across_instances(emu: PanelEmulator) -> None:
    url = url_of(emu, "rtu")
    gap = 0.05
    async with contextlib.AsyncExitStack() as stack:
        one = await stack.enter_async_context(open_driver(url, units=[1], inter_frame_gap=gap))
        two = await stack.enter_async_context(open_driver(url, units=[2]))  # asks for less
        assert next(iter(lines().values())).gap == gap  # the line keeps the largest gap
        await stack.enter_async_context(Feed(one))
        await stack.enter_async_context(Feed(two))
        await asyncio.sleep(0.3)
        start = emu.counters()["rtu"]["frames_in"]
        await asyncio.sleep(1.0)
        sent = emu.counters()["rtu"]["frames_in"] - start
        # at most one frame per 50 ms whoever sends it; both drivers are busy meanwhile
        assert 5 <= sent <= 1.0 / gap + 2
        # one link, one set of line counters, whichever driver reports them
        assert one.health.counters["line_requests"] == two.health.counters["line_requests"]


async def test_a_second_instance_with_other_serial_settings_is_refused(
    emu: PanelEmulator,
) -> None:
    url = url_of(emu, "rtu")  # 115200 8N1
    async with open_driver(url) as first:
        other = driver.create(
            "modbus-panel", {**FAST, "url": url.replace("parity=N", "parity=E")}, instance="p2"
        )
        with pytest.raises(ConfigError, match="same baudrate, parity and stopbits"):
            async with other:
                pass
        assert first.is_open
        assert next(iter(lines().values())).refs == 1
    assert lines() == {}


async def test_a_dead_panel_does_not_starve_the_others_on_the_line(emu: PanelEmulator) -> None:
    # unit 3 is not on this line: every request to it times out (another slave's business)
    async with (
        open_driver(url_of(emu, "rtu"), units=[1, 3], timeout=0.2, offline_after=1) as drv,
        Feed(drv) as feed,
    ):
        offline = await feed.event(EventKind.DEVICE_OFFLINE, unit=3)
        assert "did not answer" in offline.data["error"]
        before = dict(drv.health.counters)
        await asyncio.sleep(1.5)
        # offline, unit 3 gets one attempt per backoff (50 ms doubling to 300 ms), not
        # (1 + retries) timeouts plus quiet time every 100 ms cycle
        timeouts = drv.health.counters["timeouts"] - before["timeouts"]
        assert 1 <= timeouts <= 10
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        emu.set_point(1, 1, 2, alarm="fire")
        await feed.event(EventKind.FIRE, unit=1, within=2.0)
        assert loop.time() - t0 < 1.0
        assert feed.events(EventKind.DEVICE_OFFLINE, unit=1) == []
