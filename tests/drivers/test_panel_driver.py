"""The modbus-panel driver against the real panel emulator, over Modbus TCP and RTU on a pty.

Point, zone and panel events with their data and ids, analog readings with deadband and
full reports, commands that change the emulator's state, state reported on (re)connect,
polling on schedule. Faults are in ``test_panel_driver_faults.py``, the shared RTU line in
``test_panel_driver_line.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from drivers.modbus_panel import ModbusPanelDriver
from drivers.modbus_panel.profile import Alarm, PointAddress, PointKind
from edgesdk import driver
from edgesdk.driver import DriverState
from edgesdk.errors import CommandError
from edgesdk.model import EventKind, EventState, Severity, Value
from emulators.panel.emulator import PanelEmulator
from tests.drivers.cases_modbus_panel import FAST, Feed, eventually, open_driver, url_of

TRANSPORTS = ["tcp", "rtu"]
ZONES = {"l1/d001-d010": 1, "l1/d011-d020": 2, "l1/m001-m010": 1}


@pytest.fixture
async def emu() -> AsyncIterator[PanelEmulator]:
    async with PanelEmulator(units=2, rtu=True, time_scale=0) as e:
        yield e


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_fire_reported_within_a_poll_and_cleared_with_the_same_id(
    emu: PanelEmulator, transport: str
) -> None:
    async with (
        open_driver(url_of(emu, transport), units=[1, 2], point_zones=ZONES) as drv,
        Feed(drv) as feed,
    ):
        await feed.until(lambda: drv.health.counters["status_cycles"] >= 2, what="polling")
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        emu.set_point(2, 1, 5, alarm="fire")
        fire = await feed.event(EventKind.FIRE, within=1.0, unit=2)
        latency = loop.time() - t0
        assert latency < 1.0  # one 100 ms poll + margin; the benchmark measures it
        assert fire.severity is Severity.FIRE
        assert fire.source == "panel1"
        assert dict(fire.data) == {
            "unit": 2,
            "loop": 1,
            "point": "d005",
            "address": 40005,
            "zone": 1,
            "code": 0x10,
        }
        zone = await feed.event(EventKind.ZONE_FIRE, unit=2)
        assert dict(zone.data) == {"unit": 2, "zone": 1}
        assert zone.severity is Severity.FIRE
        # nothing about unit 1, and the fire is raised once however many polls see it
        await feed.until(lambda: drv.health.counters["status_cycles"] >= 10)
        assert feed.events(EventKind.FIRE, EventState.ACTIVE) == [fire]
        # the cause goes, the fire latches until a reset
        emu.set_point(2, 1, 5, alarm="none")
        await drv.write("u2/reset", True)
        cleared = await feed.event(EventKind.FIRE, EventState.CLEARED)
        assert cleared.id == fire.id
        assert dict(cleared.data) == dict(fire.data)
        zone_cleared = await feed.event(EventKind.ZONE_FIRE, EventState.CLEARED)
        assert zone_cleared.id == zone.id
        assert drv.state is DriverState.ONLINE


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_point_conditions_each_raise_and_clear_their_own_event(
    emu: PanelEmulator, transport: str
) -> None:
    async with open_driver(url_of(emu, transport)) as drv, Feed(drv) as feed:
        await feed.until(lambda: drv.health.counters["status_cycles"] >= 1)
        emu.set_point(1, 1, 7, prealarm=True)
        emu.set_point(1, 1, 8, trouble=True)
        emu.set_point(1, 1, 3, kind="module", alarm="supervisory")
        emu.set_point(1, 2, 9, disabled=True)
        pre = await feed.event(EventKind.PREALARM, point="d007")
        trouble = await feed.event(EventKind.POINT_TROUBLE, point="d008")
        sup = await feed.event(EventKind.SUPERVISORY, point="m003")
        dis = await feed.event(EventKind.POINT_DISABLED, point="d009", loop=2)
        assert (pre.severity, trouble.severity) == (Severity.PREALARM, Severity.TROUBLE)
        assert (sup.severity, dis.severity) == (Severity.SUPERVISORY, Severity.TROUBLE)
        assert sup.data["code"] == 0x30  # the supervisory event type
        assert sup.data["address"] == 40203  # loop 1 module 3
        assert dis.data["address"] == 40409  # loop 2 detector 9
        assert pre.data["zone"] is None  # no point_zones configured
        emu.set_point(1, 1, 8, trouble=False)
        emu.set_point(1, 1, 3, kind="module", alarm="none")
        emu.set_point(1, 2, 9, disabled=False)
        emu.set_point(1, 1, 7, prealarm=False)
        emu.command(1, "reset")  # prealarms latch until a reset
        for active in (pre, trouble, sup, dis):
            cleared = await feed.event(active.kind, EventState.CLEARED, point=active.data["point"])
            assert cleared.id == active.id
        assert len(feed.events(state=EventState.ACTIVE)) == 4


async def test_panel_wide_conditions(emu: PanelEmulator) -> None:
    async with open_driver(url_of(emu, "tcp")) as drv, Feed(drv) as feed:
        await feed.until(lambda: drv.health.counters["status_cycles"] >= 1)
        expected = {
            "mains_fail": (EventKind.MAINS_FAIL, Severity.TROUBLE),
            "battery_fault": (EventKind.BATTERY_FAULT, Severity.TROUBLE),
            "earth_fault": (EventKind.EARTH_FAULT, Severity.TROUBLE),
            "silenced": (EventKind.SILENCED, Severity.INFO),
            "test_mode": (EventKind.PANEL_TEST, Severity.INFO),
        }
        for flag in expected:
            emu.set_panel_flag(1, flag, True)
        raised = {}
        for flag, (kind, severity) in expected.items():
            raised[flag] = await feed.event(kind)
            assert raised[flag].severity is severity
            assert dict(raised[flag].data) == {"unit": 1}
        for flag in expected:
            emu.set_panel_flag(1, flag, False)
        for flag, (kind, _) in expected.items():
            assert (await feed.event(kind, EventState.CLEARED)).id == raised[flag].id


async def test_analog_readings_deadband_and_full_report(emu: PanelEmulator) -> None:
    options = {"analog_interval": 0.2, "full_report_interval": 1.5, "loops": 1}
    async with open_driver(url_of(emu, "tcp"), **options) as drv, Feed(drv) as feed:
        smoke, heat = "u1/l1/d004/smoke", "u1/l1/d005/heat"  # every fifth detector is heat
        # the first polls report every value (20 detectors on loop 1) and the heartbeat
        await feed.until(lambda: len(feed.readings()) >= 21, what="first report")
        first = {r.name: r for r in feed.readings()}
        assert len(first) == 21
        assert first["u1/heartbeat"].value == 0 and first["u1/heartbeat"].unit is None
        assert first[smoke].unit == "%/m"
        assert first[heat].unit == "Cel"
        assert first[heat].value == pytest.approx(21.0)
        assert 0.1 < float(first[smoke].value) < 0.3
        mark = len(feed.items)
        emu.set_analog(1, 1, 4, float(first[smoke].value) + 0.02)  # below the 0.05 band
        emu.set_analog(1, 1, 5, 21.3)  # below 0.5 Cel
        cycles = drv.health.counters["analog_cycles"]
        await feed.until(lambda: drv.health.counters["analog_cycles"] >= cycles + 2)
        assert feed.readings(since=mark) == []
        emu.set_analog(1, 1, 4, 1.2)
        emu.set_analog(1, 1, 5, 35.0)
        await feed.until(lambda: len(feed.readings(since=mark)) >= 2, what="big changes")
        got = {r.name: r.value for r in feed.readings(since=mark)}
        assert got == {smoke: pytest.approx(1.2), heat: pytest.approx(35.0)}
        # the full report: every value again, the heartbeat too, whatever the deadband
        await feed.until(lambda: drv.health.counters["full_reports"] >= 1, within=5)
        await feed.until(lambda: len(feed.readings(since=mark)) >= 2 + 21)
        report = {r.name: r.value for r in feed.readings(since=mark)[2:]}
        assert len(report) == 21
        assert report[smoke] == pytest.approx(1.2)
        assert report["u1/heartbeat"] == 0  # time_scale=0: the clock stands still


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_commands_change_the_panel(emu: PanelEmulator, transport: str) -> None:
    panel = emu.panel(1)
    async with open_driver(url_of(emu, transport), units=[1, 2]) as drv, Feed(drv) as feed:
        await drv.write("u1/silence", True)
        assert panel.flags.silenced and not emu.panel(2).flags.silenced
        await feed.event(EventKind.SILENCED, unit=1)
        address = PointAddress(1, PointKind.DETECTOR, 5)
        await drv.write("u1/l1/d005", "disable")
        assert panel.point(address).disabled
        await feed.event(EventKind.POINT_DISABLED, point="d005")
        await drv.write("u1/l1/d005", "enable")
        assert not panel.point(address).disabled
        await feed.event(EventKind.POINT_DISABLED, EventState.CLEARED, point="d005")
        emu.set_point(1, 1, 6, alarm="fire")
        emu.set_point(2, 1, 6, alarm="fire")
        await drv.write("u1/l1/d006", "ack")
        assert panel.point(PointAddress(1, PointKind.DETECTOR, 6)).acknowledged
        await drv.write("acknowledge", True)  # every unit
        assert emu.panel(2).point(PointAddress(1, PointKind.DETECTOR, 6)).acknowledged
        emu.set_point(1, 1, 6, alarm="none")
        emu.set_point(2, 1, 6, alarm="none")
        await drv.write("reset", True)  # every unit: the latched fires go, silence too
        for unit in (1, 2):
            status = emu.panel(unit).point_status(PointAddress(1, PointKind.DETECTOR, 6))
            assert status.alarm is Alarm.NONE
        assert not emu.panel(1).panel_status().silenced
        # six write() calls, eight register writes (acknowledge and reset go to both units)
        assert drv.health.counters["commands"] == 6
        assert drv.health.counters["commands_sent"] == 8
        assert emu.counters()["total"]["commands"] == 8
        assert drv.health.counters["command_errors"] == 0


async def test_bad_commands_are_refused_before_anything_is_sent(emu: PanelEmulator) -> None:
    async with open_driver(url_of(emu, "tcp"), units=[1, 2]) as drv:
        bad: list[tuple[str, Value]] = [
            ("evacuate", True),  # no such command
            ("u3/reset", True),  # unit not polled
            ("reset", False),  # a command runs on True
            ("l1/d005", "disable"),  # two units: which one?
            ("u1/l1/d005", "explode"),
            ("u1/l1/d999", "disable"),  # not in the map
            ("u1/l11/d001", "disable"),
        ]
        for point, value in bad:
            with pytest.raises(CommandError):
                await drv.write(point, value)
        assert drv.health.counters["command_errors"] == len(bad)
        assert emu.counters()["total"]["writes"] == 0


async def test_gst_compact_profile_end_to_end() -> None:
    async with (
        PanelEmulator(units=1, profile="gst-compact", time_scale=0) as emu,
        open_driver(url_of(emu, "tcp"), profile="gst-compact") as drv,
        Feed(drv) as feed,
    ):
        emu.set_point(1, 2, 9, alarm="fire")
        emu.set_point(1, 1, 3, kind="module", trouble=True)
        emu.point_command(1, 1, 12, "disable")
        fire = await feed.event(EventKind.FIRE)
        assert dict(fire.data) == {
            "unit": 1,
            "loop": 2,
            "point": "d009",
            "address": 40063 + 1,  # loop 2 detectors 9-16 share the second word
            "zone": None,
            "code": 0b01,
        }
        trouble = await feed.event(EventKind.POINT_TROUBLE)
        assert (trouble.data["point"], trouble.data["address"]) == ("m003", 40047)
        assert (await feed.event(EventKind.POINT_DISABLED)).data["point"] == "d012"
        assert (await feed.event(EventKind.ZONE_FIRE)).data["zone"] == 3
        with pytest.raises(CommandError, match="points take no"):
            await drv.write("l1/d012", "enable")
        emu.set_point(1, 2, 9, alarm="none")
        await drv.write("reset", True)
        assert (await feed.event(EventKind.FIRE, EventState.CLEARED)).id == fire.id
        # no analog values in this map: the heartbeat, once, is the only reading
        assert [r.name for r in feed.readings()] == ["u1/heartbeat"]


async def test_state_present_before_the_driver_starts_is_reported(emu: PanelEmulator) -> None:
    emu.set_point(1, 1, 2, alarm="fire")
    emu.set_point(1, 2, 3, trouble=True)
    emu.set_panel_flag(1, "mains_fail", True)
    async with open_driver(url_of(emu, "rtu")) as drv, Feed(drv) as feed:
        await feed.event(EventKind.FIRE, point="d002", loop=1, within=2)
        await feed.event(EventKind.POINT_TROUBLE, point="d003", loop=2)
        await feed.event(EventKind.MAINS_FAIL)
        # in severity order within a poll: the fire comes before the troubles
        kinds = [e.kind for e in feed.events()]
        assert kinds.index(EventKind.FIRE) < kinds.index(EventKind.POINT_TROUBLE)


async def test_state_changed_while_disconnected_is_reconciled_on_reconnect(
    emu: PanelEmulator,
) -> None:
    emu.set_point(1, 1, 2, alarm="fire")  # will clear while the link is down
    emu.set_point(1, 1, 9, trouble=True)  # stays active throughout
    async with open_driver(url_of(emu, "tcp")) as drv, Feed(drv) as feed:
        old_fire = await feed.event(EventKind.FIRE, point="d002")
        trouble = await feed.event(EventKind.POINT_TROUBLE, point="d009")
        emu.set_fault(1, "drop")  # every request closes the connection
        await feed.event(EventKind.DEVICE_OFFLINE, within=5)
        assert drv.state is DriverState.OFFLINE
        mark = len(feed.items)
        emu.set_point(1, 1, 2, alarm="none")
        emu.command(1, "reset")
        emu.set_point(1, 1, 6, alarm="fire")  # raised while the gateway cannot see it
        emu.clear_fault(1)
        new_fire = await feed.event(EventKind.FIRE, point="d006", since=mark)
        cleared = await feed.event(EventKind.FIRE, EventState.CLEARED, since=mark)
        assert cleared.id == old_fire.id
        assert new_fire.id != old_fire.id
        await feed.event(EventKind.DEVICE_OFFLINE, EventState.CLEARED, since=mark)
        await feed.until(lambda: drv.health.counters["status_cycles"] >= 5)
        # the trouble that never ended is not raised a second time
        assert feed.events(EventKind.POINT_TROUBLE) == [trouble]
        assert drv.health.counters["disconnects"] >= 1
        assert drv.health.state is DriverState.ONLINE


async def test_polls_status_and_analog_on_their_own_fixed_schedules(emu: PanelEmulator) -> None:
    options = {"status_interval": 0.1, "analog_interval": 0.5, "full_report_interval": 60}
    async with open_driver(url_of(emu, "tcp"), **options) as drv, Feed(drv) as feed:
        await feed.until(lambda: drv.health.counters["status_cycles"] >= 1)
        before = dict(drv.health.counters)
        emu_before = emu.counters()["units"]["1"]["status_cycles"]
        await asyncio.sleep(2.0)
        after = drv.health.counters
        status = after["status_cycles"] - before["status_cycles"]
        analog = after["analog_cycles"] - before["analog_cycles"]
        # 10 polls per second and 2 analog polls per second, with generous margins
        assert 14 <= status + after["status_overruns"] - before["status_overruns"] <= 22
        assert 3 <= analog <= 5
        # every status cycle read every status register of the panel once
        assert emu.counters()["units"]["1"]["status_cycles"] - emu_before >= status - 1


async def test_heartbeat_stuck_is_raised_and_cleared() -> None:
    async with (
        PanelEmulator(units=1, time_scale=0) as emu,
        open_driver(url_of(emu, "tcp"), heartbeat_timeout=0.5) as drv,
        Feed(drv) as feed,
    ):
        stuck = await feed.event(EventKind.HEARTBEAT_STUCK, within=3)
        assert stuck.severity is Severity.TROUBLE
        assert stuck.data["unit"] == 1
        assert stuck.data["heartbeat"] == 0
        assert stuck.data["seconds"] >= 0.5
        assert drv.state is DriverState.DEGRADED
        emu.advance(1)  # the panel's clock moves again
        cleared = await feed.event(EventKind.HEARTBEAT_STUCK, EventState.CLEARED)
        assert cleared.id == stuck.id
        await eventually(lambda: drv.state is DriverState.ONLINE)
        assert drv.health.counters["heartbeat_stuck"] == 1


async def test_reopening_the_same_driver_does_not_raise_again(emu: PanelEmulator) -> None:
    emu.set_point(1, 1, 2, alarm="fire")
    emu.set_point(1, 1, 3, trouble=True)
    drv = driver.create("modbus-panel", {**FAST, "url": url_of(emu, "tcp")}, instance="p")
    assert isinstance(drv, ModbusPanelDriver)
    async with drv, Feed(drv) as first:
        await first.event(EventKind.FIRE)
        trouble = await first.event(EventKind.POINT_TROUBLE)
    emu.set_point(1, 1, 3, trouble=False)  # ends while the driver is closed
    async with drv, Feed(drv) as second:
        cleared = await second.event(EventKind.POINT_TROUBLE, EventState.CLEARED)
        assert cleared.id == trouble.id
        await second.until(lambda: drv.health.counters["status_cycles"] >= 5)
    # items not consumed before the first close come out of the second stream: nothing is
    # lost, and nothing still active is raised twice
    raised = first.events(state=EventState.ACTIVE) + second.events(state=EventState.ACTIVE)
    assert sorted(e.kind for e in raised) == [
        EventKind.FIRE,
        EventKind.POINT_TROUBLE,
        EventKind.ZONE_FIRE,
    ]
