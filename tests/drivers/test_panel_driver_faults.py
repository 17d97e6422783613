"""Every fault the panel emulator injects, with the exact counters and events it must cause.

Each test lets the driver settle (the one analog poll of the run done, a few status polls),
takes the counters, injects a fault for a known number of requests and checks the deltas:
with ``retries=1`` a failed request is two attempts, and ``offline_after=3`` failed requests
raise ``device-offline``, which the next answer clears (same id).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest

from drivers.modbus_panel.transport import lines
from edgesdk.driver import DriverState
from edgesdk.model import EventKind, EventState, Severity
from emulators.panel.emulator import PanelEmulator
from tests.drivers.cases_modbus_panel import Feed, open_driver, url_of

ERRORS = ("timeouts", "exceptions", "crc_errors", "framing_errors", "retries", "failures")
SETTLED = {"analog_interval": 60.0, "full_report_interval": 60.0}  # one analog poll, at start


def delta(after: Mapping[str, int], before: Mapping[str, int], *keys: str) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in keys}


async def settle(feed: Feed) -> dict[str, int]:
    drv = feed.drv
    await feed.until(
        lambda: (
            drv.health.counters["analog_cycles"] >= 1 and drv.health.counters["status_cycles"] >= 3
        )
    )
    return dict(feed.drv.health.counters)


@pytest.fixture
async def emu() -> AsyncIterator[PanelEmulator]:
    async with PanelEmulator(units=2, rtu=True, time_scale=0) as e:
        yield e


async def _offline_and_back(feed: Feed, mark: int) -> None:
    """device-offline raised once for unit 1 after three failures, then cleared."""
    offline = await feed.event(EventKind.DEVICE_OFFLINE, since=mark)
    assert offline.severity is Severity.TROUBLE
    assert offline.data["unit"] == 1
    assert offline.data["failures"] == 3
    cleared = await feed.event(EventKind.DEVICE_OFFLINE, EventState.CLEARED, since=mark)
    assert cleared.id == offline.id
    assert len(feed.events(EventKind.DEVICE_OFFLINE, since=mark)) == 2
    await feed.until(lambda: feed.drv.state is DriverState.ONLINE)


@pytest.mark.parametrize("transport", ["tcp", "rtu"])
async def test_timeouts(emu: PanelEmulator, transport: str) -> None:
    async with (
        open_driver(url_of(emu, transport), timeout=0.2, **SETTLED) as drv,
        Feed(drv) as feed,
    ):
        before, mark = await settle(feed), len(feed.items)
        emu.set_fault(1, "timeout", count=6)
        await _offline_and_back(feed, mark)
        offline = feed.events(EventKind.DEVICE_OFFLINE, since=mark)[0]
        assert "did not answer within 0.2s" in offline.data["error"]
        got = delta(drv.health.counters, before, *ERRORS, "offline_raised", "disconnects")
        assert got == {
            "timeouts": 6,
            "exceptions": 0,
            "crc_errors": 0,
            "framing_errors": 0,
            "retries": 3,
            "failures": 3,
            "offline_raised": 1,
            "disconnects": 0,
        }
        assert emu.counters()["units"]["1"]["injected"] == {"timeout": 6}
        assert drv.health.last_error is not None


@pytest.mark.parametrize(
    ("transport", "code"), [("tcp", 2), ("tcp", 4), ("tcp", 6), ("tcp", 11), ("rtu", 4)]
)
async def test_exception_replies(emu: PanelEmulator, transport: str, code: int) -> None:
    async with open_driver(url_of(emu, transport), **SETTLED) as drv, Feed(drv) as feed:
        before, mark = await settle(feed), len(feed.items)
        emu.set_fault(1, "exception", code=code, count=6)
        await _offline_and_back(feed, mark)
        offline = feed.events(EventKind.DEVICE_OFFLINE, since=mark)[0]
        assert f"Modbus exception {code} (" in offline.data["error"]
        assert delta(drv.health.counters, before, *ERRORS) == {
            "timeouts": 0,
            "exceptions": 6,
            "crc_errors": 0,
            "framing_errors": 0,
            "retries": 3,
            "failures": 3,
        }


async def test_crc_errors_on_the_rtu_line(emu: PanelEmulator) -> None:
    async with open_driver(url_of(emu, "rtu"), **SETTLED) as drv, Feed(drv) as feed:
        before, mark = await settle(feed), len(feed.items)
        emu.set_fault(1, "crc", count=6)
        await _offline_and_back(feed, mark)
        assert "CRC" in feed.events(EventKind.DEVICE_OFFLINE, since=mark)[0].data["error"]
        after = drv.health.counters
        assert delta(after, before, *ERRORS, "line_crc_errors") == {
            "timeouts": 0,  # a bad CRC fails the request at once, no waiting for a timeout
            "exceptions": 0,
            "crc_errors": 6,
            "framing_errors": 0,
            "retries": 3,
            "failures": 3,
            "line_crc_errors": 6,
        }


async def test_a_crc_fault_does_nothing_over_tcp(emu: PanelEmulator) -> None:
    async with open_driver(url_of(emu, "tcp"), **SETTLED) as drv, Feed(drv) as feed:
        before = await settle(feed)
        emu.set_fault(1, "crc")  # TCP has no CRC: the emulator replies normally
        await feed.until(
            lambda: drv.health.counters["status_cycles"] >= before["status_cycles"] + 5
        )
        assert delta(drv.health.counters, before, *ERRORS) == dict.fromkeys(ERRORS, 0)
        assert feed.events(EventKind.DEVICE_OFFLINE) == []


@pytest.mark.parametrize("transport", ["tcp", "rtu"])
async def test_slow_replies_within_the_timeout_overrun_but_never_fail(
    emu: PanelEmulator, transport: str
) -> None:
    async with (
        open_driver(url_of(emu, transport), timeout=1.0, **SETTLED) as drv,
        Feed(drv) as feed,
    ):
        before = await settle(feed)
        emu.set_fault(1, "delay", delay=0.25, count=3)
        await feed.until(lambda: emu.stores[1].fault is None)
        await feed.until(
            lambda: drv.health.counters["status_cycles"] >= before["status_cycles"] + 3
        )
        after = drv.health.counters
        assert delta(after, before, *ERRORS) == dict.fromkeys(ERRORS, 0)
        # 3 x 250 ms in one 100 ms schedule: the missed slots are skipped and counted
        assert after["status_overruns"] - before["status_overruns"] >= 5
        assert after["overruns"] >= after["status_overruns"]
        assert feed.events(EventKind.DEVICE_OFFLINE) == []
        assert drv.state is DriverState.ONLINE


async def test_replies_later_than_the_timeout_on_rtu_are_not_taken_for_the_next(
    emu: PanelEmulator,
) -> None:
    # the late reply lands in the quiet time the line keeps after a timeout (one more
    # timeout), so it cannot pass for the answer to the next request
    async with (
        open_driver(url_of(emu, "rtu"), timeout=0.3, **SETTLED) as drv,
        Feed(drv) as feed,
    ):
        before, mark = await settle(feed), len(feed.items)
        emu.set_fault(1, "delay", delay=0.45, count=2)
        await feed.until(lambda: emu.stores[1].fault is None)
        await feed.until(
            lambda: (
                drv.health.counters["failures"] > before["failures"]
                and drv.health.counters["status_cycles"] >= before["status_cycles"] + 8
            )
        )
        assert delta(drv.health.counters, before, *ERRORS) == {
            "timeouts": 2,
            "exceptions": 0,
            "crc_errors": 0,
            "framing_errors": 0,
            "retries": 1,
            "failures": 1,
        }
        assert feed.events(since=mark) == []  # no made-up state changes, no offline


async def test_dropped_connections_reconnect(emu: PanelEmulator) -> None:
    async with open_driver(url_of(emu, "tcp"), **SETTLED) as drv, Feed(drv) as feed:
        keys = ("disconnects", "connects", "connect_failures", "failures", "timeouts")
        before = await settle(feed)
        emu.set_fault(1, "drop", count=1)  # the emulator closes the connection instead
        await feed.until(lambda: drv.health.counters["connects"] > before["connects"])
        await feed.until(lambda: drv.state is DriverState.ONLINE)
        assert delta(drv.health.counters, before, *keys) == {
            "disconnects": 1,
            "connects": 1,
            "connect_failures": 0,
            "failures": 1,  # one failure each for the unit: below offline_after
            "timeouts": 0,  # noticed at once, not by waiting for the reply
        }
        before = dict(drv.health.counters)
        assert emu.drop_connections() == 1  # closed while the driver is between polls
        await feed.until(lambda: drv.health.counters["connects"] > before["connects"])
        cycles = drv.health.counters["status_cycles"]
        await feed.until(lambda: drv.health.counters["status_cycles"] >= cycles + 3)
        assert delta(drv.health.counters, before, *keys)["disconnects"] == 1
        assert feed.events(EventKind.DEVICE_OFFLINE) == []
        emu.set_point(1, 1, 4, alarm="fire")
        await feed.event(EventKind.FIRE, point="d004")


async def test_panel_gone_then_back_on_the_same_port() -> None:
    first = PanelEmulator(units=1, time_scale=0)
    await first.__aenter__()
    assert first.tcp_address is not None
    host, port = first.tcp_address
    second: PanelEmulator | None = None
    try:
        async with open_driver(f"tcp://{host}:{port}", **SETTLED) as drv, Feed(drv) as feed:
            first.set_point(1, 1, 2, trouble=True)
            trouble = await feed.event(EventKind.POINT_TROUBLE)
            await first.__aexit__(None, None, None)
            offline = await feed.event(EventKind.DEVICE_OFFLINE, within=5)
            assert offline.data["failures"] == 3  # the loss, then two failed reconnects
            assert "cannot connect" in offline.data["error"]
            assert drv.state is DriverState.OFFLINE
            await asyncio.sleep(0.5)
            fails = drv.health.counters["connect_failures"]
            assert 2 <= fails <= 15  # backoff: 50 ms doubling up to 300 ms, not a busy loop
            second = PanelEmulator(units=1, tcp=("127.0.0.1", port), time_scale=0)
            second.set_point(1, 1, 8, alarm="fire")  # raised while the gateway was away
            await second.__aenter__()
            await feed.event(EventKind.DEVICE_OFFLINE, EventState.CLEARED, within=5)
            await feed.event(EventKind.FIRE, point="d008")
            # the new panel has no trouble at L1D002: it is reported cleared, same id
            cleared = await feed.event(EventKind.POINT_TROUBLE, EventState.CLEARED)
            assert cleared.id == trouble.id
            assert drv.health.counters["disconnects"] == 1
            assert drv.health.counters["connects"] == 2
            assert drv.health.state is DriverState.ONLINE
    finally:
        if second is not None:
            await second.__aexit__(None, None, None)


async def test_serial_port_gone_then_back_at_the_same_path() -> None:
    directory = Path(tempfile.mkdtemp(prefix="edgesdk-panel-"))
    link = directory / "rs485"
    emu = PanelEmulator(units=1, tcp=None, rtu=True, link=link, time_scale=0)
    await emu.__aenter__()
    try:
        async with open_driver(url_of(emu, "rtu"), **SETTLED) as drv, Feed(drv) as feed:
            await settle(feed)
            await emu.__aexit__(None, None, None)  # the USB adapter is pulled
            await feed.event(EventKind.DEVICE_OFFLINE, within=5)
            emu = PanelEmulator(units=1, tcp=None, rtu=True, link=link, time_scale=0)
            emu.set_point(1, 2, 5, alarm="fire")
            await emu.__aenter__()
            await feed.event(EventKind.DEVICE_OFFLINE, EventState.CLEARED, within=5)
            await feed.event(EventKind.FIRE, loop=2, point="d005")
            assert drv.health.counters["disconnects"] == 1
        assert lines() == {}  # the last user closed the line
    finally:
        await emu.__aexit__(None, None, None)
        shutil.rmtree(directory, ignore_errors=True)


async def test_a_unit_that_never_answers_goes_offline_alone(emu: PanelEmulator) -> None:
    async with (
        open_driver(url_of(emu, "tcp"), units=[1, 9], **SETTLED) as drv,
        Feed(drv) as feed,
    ):
        offline = await feed.event(EventKind.DEVICE_OFFLINE, unit=9)
        assert "exception 11 (gateway target failed to respond)" in offline.data["error"]
        emu.set_point(1, 1, 3, alarm="fire")
        await feed.event(EventKind.FIRE, unit=1)
        assert drv.state is DriverState.DEGRADED
        assert drv.health.counters["units_offline"] == 1
        assert feed.events(EventKind.DEVICE_OFFLINE, unit=1) == []


async def test_a_port_that_cannot_be_opened_says_why() -> None:
    async with open_driver("rtu:///dev/edgesdk-no-such-port") as drv, Feed(drv) as feed:
        assert drv.state is DriverState.OFFLINE  # opening failed, the driver is still open
        offline = await feed.event(EventKind.DEVICE_OFFLINE, within=5)
        assert offline.data["error"] == (
            "rtu:///dev/edgesdk-no-such-port: cannot connect: "
            "/dev/edgesdk-no-such-port does not exist"
        )
        assert drv.health.counters["connect_failures"] >= 3
        assert drv.health.counters["connects"] == 0
    assert lines() == {}
