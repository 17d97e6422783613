"""The beacon-serial driver against the real emulator on a real pty: readings, joins,
alarms and their acks, evacuations, commands and configuration."""

from __future__ import annotations

import asyncio

import pytest

from drivers.beacon_serial import BeaconSerialDriver
from drivers.beacon_serial.codec import AlarmCause
from edgesdk import driver
from edgesdk.driver import DriverState
from edgesdk.errors import CommandError, ConfigError
from edgesdk.model import EventState, Reading, Severity, Value
from emulators.beacons.emulator import BeaconEmulator, FirefighterView
from tests.drivers.cases_beacon_serial import Feed, eventually, open_driver

UNITS = {
    "heart_rate": "1/min",
    "skin_temp": "Cel",
    "ambient_temp": "Cel",
    "motion": "mg",
    "scba_pressure": "bar",
    "battery": "%",
    "rssi": "dBm",
    "wearer_age": "a",
    "rated_pressure": "bar",
}


def latest(feed: Feed, beacon: int, name: str) -> Reading:
    found = feed.readings(f"{beacon}/{name}")
    assert found, f"no {beacon}/{name} reading"
    return found[-1]


def test_registered_and_cheap_to_import() -> None:
    assert driver.load("beacon-serial") is BeaconSerialDriver
    drv = driver.create("beacon-serial", {"port": "/dev/ttyACM9"}, instance="crew")
    assert drv.config.baudrate == 115200
    assert drv.config.silence_timeout == 15.0
    assert drv.health.state is DriverState.CLOSED
    assert drv.health.counters["acks_sent"] == 0  # every counter exists from the start


@pytest.mark.parametrize(
    ("options", "key", "hint"),
    [
        ({}, "port", "add this key"),
        ({"port": "/dev/x", "baudrate": 0}, "baudrate", "50..4000000"),
        ({"port": "/dev/x", "reconnect_min": 2.0, "reconnect_max": 1.0}, "reconnect_max", ">="),
        ({"port": "/dev/x", "max_frame_length": 300}, "max_frame_length", "6..255"),
        ({"port": "/dev/x", "speed": 9600}, "speed", "known keys"),
    ],
)
def test_bad_options_name_the_key_and_the_fix(
    options: dict[str, object], key: str, hint: str
) -> None:
    with pytest.raises(ConfigError) as info:
        driver.create("beacon-serial", options, instance="crew", prefix="devices.crew")
    assert info.value.key == f"devices.crew.{key}"
    assert hint in str(info.value)


async def test_readings_for_every_firefighter_match_the_crew() -> None:
    async with (
        BeaconEmulator(crew=4, seed=21, time_scale=10) as emu,
        open_driver(emu.path) as drv,
        Feed(drv) as feed,
    ):
        ids = emu.beacon_ids
        pinned = {b: 120 + 37 * i for i, b in enumerate(ids)}  # motion the beacons will read
        for beacon, mg in pinned.items():
            emu.set_motion(beacon, mg)

        def pinned_seen() -> bool:
            return all(
                feed.readings(f"{b}/motion") and feed.readings(f"{b}/motion")[-1].value == mg
                for b, mg in pinned.items()
            )

        await feed.until(pinned_seen, what="pinned motion in every beacon's readings")
        views: dict[int, FirefighterView] = {v.beacon: v for v in emu.firefighters}
        for beacon in ids:
            view = views[beacon]
            assert latest(feed, beacon, "heart_rate").value == pytest.approx(view.heart_rate, abs=8)
            assert latest(feed, beacon, "skin_temp").value == pytest.approx(
                view.skin_temperature, abs=0.5
            )
            assert latest(feed, beacon, "ambient_temp").value == pytest.approx(
                view.ambient_temperature, abs=6
            )
            assert latest(feed, beacon, "battery").value == pytest.approx(view.battery, abs=1)
            rssi = latest(feed, beacon, "rssi").value
            assert isinstance(rssi, int) and -128 <= rssi <= -20
            if view.scba:
                assert view.scba_pressure is not None
                assert latest(feed, beacon, "scba_pressure").value == pytest.approx(
                    view.scba_pressure, abs=2
                )
            else:  # the pump operator outside carries no cylinder: no reading at all
                assert feed.readings(f"{beacon}/scba_pressure") == []
        assert not views[ids[-1]].scba and views[ids[0]].scba
        for reading in feed.readings():
            assert reading.device == "crew"
            head, _, tail = reading.name.partition("/")
            if head == "receiver":
                continue
            assert int(head) in pinned
            assert reading.unit == UNITS[tail], reading
        counters = drv.health.counters
        assert counters["readings"] == len(feed.readings())
        motion = [r for r in feed.readings() if r.name.endswith("/motion")]
        assert counters["frames_telemetry"] == len(motion) >= 4  # one motion per telemetry
        assert counters["noise_bytes"] == counters["bad_crc"] == counters["truncated"] == 0
        assert drv.state is DriverState.ONLINE


async def test_hello_gives_readings_and_a_beacon_joined_event() -> None:
    async with (
        BeaconEmulator(crew=4, seed=22, time_scale=20) as emu,
        open_driver(emu.path) as drv,
        Feed(drv) as feed,
    ):
        ids = emu.beacon_ids
        await feed.until(lambda: len(feed.events("beacon-joined")) == 4, what="four joins")
        await feed.until(lambda: feed.count("receiver/uptime") >= 1, what="receiver status")
        views = {v.beacon: v for v in emu.firefighters}
        joined = {e.data["beacon"]: e for e in feed.events("beacon-joined")}
        assert set(joined) == set(ids)
        for beacon, event in joined.items():
            view = views[beacon]
            rated = 300.0 if view.scba else 0.0
            assert event.severity is Severity.INFO
            assert event.state is EventState.ACTIVE
            assert event.source == "crew"
            assert dict(event.data) == {
                "beacon": beacon,
                "firmware": "2.3",
                "model": 7,
                "wearer_age": view.age,
                "rated_pressure": rated,
            }
            assert [r.value for r in feed.readings(f"{beacon}/wearer_age")] == [view.age]
            assert [r.value for r in feed.readings(f"{beacon}/rated_pressure")] == [rated]
        assert {r.unit for r in feed.readings("receiver/noise_floor")} == {"dBm"}
        assert {r.unit for r in feed.readings("receiver/uptime")} == {"s"}
        counters = drv.health.counters
        assert counters["joins"] == 4 and counters["joins_without_hello"] == 0
        assert counters["frames_hello"] == 4


async def test_a_late_gateway_counts_telemetry_as_a_join() -> None:
    async with BeaconEmulator(crew=2, seed=23, time_scale=20) as emu:
        await eventually(lambda: emu.counters.sent.get("telemetry", 0) >= 6, what="telemetry")
        # the hellos went out before the port was opened; pyserial discards them on open
        async with open_driver(emu.path) as drv, Feed(drv) as feed:
            await feed.until(lambda: len(feed.events("beacon-joined")) == 2, what="joins")
            joined = feed.events("beacon-joined")
            assert sorted(e.data["beacon"] for e in joined) == sorted(emu.beacon_ids)
            assert all(dict(e.data) == {"beacon": e.data["beacon"]} for e in joined)
            assert drv.health.counters["joins_without_hello"] == 2
            assert drv.health.counters["frames_hello"] == 0
            # the join comes before that beacon's first reading
            first = feed.items.index(joined[0])
            beacon = joined[0].data["beacon"]
            assert not any(
                r.name.startswith(f"{beacon}/")
                for r in feed.readings()
                if feed.items.index(r) < first
            )


async def test_distress_is_one_event_acked_only_once_confirmed() -> None:
    async with (
        BeaconEmulator(crew=2, seed=24, time_scale=20) as emu,
        open_driver(emu.path) as drv,
        Feed(drv) as feed,
    ):
        victim, other = emu.beacon_ids
        await feed.until(lambda: feed.count(f"{victim}/motion") >= 2, what="telemetry")
        emu.press_distress(victim)
        await feed.until(
            lambda: drv.health.counters["alarm_repeats"] >= 4, what="the receiver repeating"
        )
        distress = feed.events("distress")
        assert len(distress) == 1  # the repeats are the same occurrence
        event = distress[0]
        [(cause, alarm_id, acked)] = emu.firefighters[0].alarms
        assert (cause, acked) == (AlarmCause.DISTRESS, False)
        assert event.severity is Severity.ALARM and event.state is EventState.ACTIVE
        assert dict(event.data) == {"beacon": victim, "alarm_id": alarm_id, "cause": 1}
        # nothing is acked before the gateway says the event is stored
        assert emu.counters.alarms_acked == 0
        assert drv.health.counters["acks_sent"] == 0
        await drv.confirm(feed.items[0])  # a reading: nothing to ack
        assert drv.health.counters["acks_sent"] == 0

        await drv.confirm(event)
        await eventually(lambda: emu.counters.alarms_acked == 1, what="the ack counted")
        assert drv.health.counters["acks_sent"] >= 1
        sent = emu.counters.sent["alarm"]
        ticks = feed.count(f"{victim}/motion")
        await feed.until(lambda: feed.count(f"{victim}/motion") >= ticks + 5, what="more ticks")
        assert emu.counters.sent["alarm"] == sent  # the repeats stopped
        assert drv.health.counters["frames_alarm"] == sent
        assert emu.firefighters[0].alarms == ((AlarmCause.DISTRESS, alarm_id, True),)
        assert len(feed.events("distress")) == 1  # the flag stays set: no second event
        assert not [
            e for e in feed.events() if e.data.get("beacon") == other and e.kind != "beacon-joined"
        ]

        emu.reset(victim)  # the wearer resets the beacon: the flag falls
        await feed.until(lambda: len(feed.events("distress")) == 2, what="distress cleared")
        cleared = feed.events("distress")[1]
        assert cleared.state is EventState.CLEARED and cleared.id == event.id
        assert drv.health.counters["events"] == len(feed.events())


@pytest.mark.parametrize(
    ("scenario", "kind", "cause", "clears"),
    [
        ("fall", "fall", AlarmCause.FALL, True),
        ("man-down", "beacon-alarm", AlarmCause.MOTION, False),
        ("heat-stress", "thermal", AlarmCause.THERMAL, False),
    ],
)
async def test_scenario_alarms(scenario: str, kind: str, cause: int, clears: bool) -> None:
    async with (
        BeaconEmulator(
            crew=2, seed=25, time_scale=40, scenario=scenario, event_at=1.0, pass_alarm_after=3.0
        ) as emu,
        open_driver(emu.path) as drv,
        Feed(drv) as feed,
    ):
        victim = emu.victim
        assert victim is not None
        await feed.until(lambda: bool(feed.events(kind)), within=20, what=f"{kind} event")
        await feed.until(lambda: drv.health.counters["alarm_repeats"] >= 3, what="repeats")
        [event] = feed.events(kind)
        [(got_cause, alarm_id, _)] = [a for a in emu.firefighters[0].alarms if a[0] == cause]
        assert got_cause == cause
        assert dict(event.data) == {"beacon": victim, "alarm_id": alarm_id, "cause": cause}
        assert [e.kind for e in feed.events() if e.kind != "beacon-joined"] == [kind]
        if scenario == "fall":  # the impact shows in the motion readings
            assert max(float(r.value) for r in feed.readings(f"{victim}/motion")) >= 2000
        await drv.confirm(event)
        await eventually(lambda: emu.counters.alarms_acked == 1, what="the ack counted")
        emu.reset(victim)
        ticks = feed.count(f"{victim}/motion")
        await feed.until(lambda: feed.count(f"{victim}/motion") >= ticks + 3, what="ticks")
        after = feed.events(kind)[1:]
        if clears:  # a fall clears with its telemetry flag, under the same id
            assert [(e.state, e.id) for e in after] == [(EventState.CLEARED, event.id)]
        else:
            # the beacon's own PASS and thermal alarms latch (no frame says they ended): a
            # person acknowledges them upstream. Still in the heat after the reset, the
            # beacon raises a new thermal alarm: a new occurrence with a new id
            assert all(e.state is EventState.ACTIVE for e in after)
            assert len({e.id for e in feed.events(kind)}) == len(feed.events(kind))
            assert len({e.data["alarm_id"] for e in feed.events(kind)}) == len(feed.events(kind))


async def test_evacuate_reaches_one_beacon_or_all() -> None:
    async with (
        BeaconEmulator(crew=3, seed=26, time_scale=20) as emu,
        open_driver(emu.path) as drv,
        Feed(drv) as feed,
    ):
        a, b, c = emu.beacon_ids
        await feed.until(lambda: len(feed.events("beacon-joined")) == 3, what="joins")
        await drv.write(str(b), "evacuate")
        await eventually(lambda: emu.counters.evacuations == 1, what="one evacuation")
        assert [f.evacuations for f in emu.firefighters] == [0, 1, 0]
        await drv.write("all", "evacuate")
        await eventually(lambda: emu.counters.evacuations == 4, what="everyone")
        assert [f.evacuations for f in emu.firefighters] == [1, 2, 1]
        assert drv.health.counters["evacuations_sent"] == 2
        assert emu.counters.gateway_frames == 2
        assert emu.counters.gateway_decoder["bad_crc"] == 0

        refused: list[tuple[str, Value]] = [
            ("12345", "evacuate"),  # no such beacon reported
            ("no-such-point", "evacuate"),
            (str(a), "leave"),
            ("all", True),
            (f"0x{a:x}", "evacuate"),
        ]
        for point, value in refused:
            with pytest.raises(CommandError):
                await drv.write(point, value)
        assert drv.health.counters["command_errors"] == 5
        assert drv.health.counters["evacuations_sent"] == 2
        await asyncio.sleep(0.1)
        assert emu.counters.gateway_frames == 2  # nothing was sent for the refused ones
        assert [f.evacuations for f in emu.firefighters] == [1, 2, 1]
        assert c in drv._tracker.beacons  # the third was heard, just never evacuated alone
