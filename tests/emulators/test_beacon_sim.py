"""The beacon simulation without a pty: physiology, scenarios, alarms, acks, reproducibility."""

from __future__ import annotations

import itertools
import random

import pytest

from drivers.beacon_serial.codec import (
    Alarm,
    AlarmCause,
    Frame,
    FrameDecoder,
    FrameType,
    Hello,
    ReceiverStatus,
    Telemetry,
    TelemetryFlags,
    encode,
)
from edgesdk.errors import CommandError, ConfigError
from emulators.beacons.faults import Fault, FaultInjector
from emulators.beacons.simulation import Simulation


def telemetry_of(frames: list[Frame], beacon: int) -> list[Telemetry]:
    return [f.message for f in frames if f.beacon == beacon and isinstance(f.message, Telemetry)]


def alarms_of(frames: list[Frame], beacon: int) -> list[Frame]:
    return [f for f in frames if f.beacon == beacon and f.type is FrameType.ALARM]


def timed(sim: Simulation, until: float, step: float = 1.0) -> list[tuple[float, Frame]]:
    """Frames with the simulated second they were sent in (to ``step`` resolution)."""
    out: list[tuple[float, Frame]] = []
    t = 0.0
    while t < until:
        t = min(t + step, until)
        out += [(t, f) for f in sim.advance(t)]
    return out


def test_same_seed_same_frames_at_any_step() -> None:
    a = Simulation(crew=4, scenario="man-down", seed=11).advance(120.0)
    b_sim = Simulation(crew=4, scenario="man-down", seed=11)
    b = [f for _, f in timed(b_sim, 120.0, step=0.37)]
    assert a == b
    assert len(a) > 400
    c = Simulation(crew=4, scenario="man-down", seed=12).advance(120.0)
    assert [f.to_bytes() for f in c] != [f.to_bytes() for f in a]


def test_join_telemetry_rate_and_receiver_status() -> None:
    sim = Simulation(crew=3, seed=2)
    frames = sim.advance(60.0)
    ids = [b.id for b in sim.beacons]
    assert len(set(ids)) == 3
    assert 0 not in ids
    for beacon in ids:
        mine = [f for f in frames if f.beacon == beacon]
        assert isinstance(mine[0].message, Hello)  # hello comes first
        assert mine[0].message.rated_pressure == 300.0
        assert 57 <= len(telemetry_of(frames, beacon)) <= 61  # about 1 Hz
        seqs = [f.seq for f in mine]
        assert all((b - a) % 256 == 1 for a, b in itertools.pairwise(seqs))
    status = [f for f in frames if f.beacon == 0]
    assert all(isinstance(f.message, ReceiverStatus) for f in status)
    assert [f.message.uptime for f in status] == [0, 10, 20, 30, 40, 50, 60]  # type: ignore[union-attr]
    last = status[-1].message
    assert isinstance(last, ReceiverStatus)
    assert last.frames_received == len(frames) - len(status)
    assert -110 <= last.noise_floor <= -90


def test_patrol_is_plausible_and_raises_nothing() -> None:
    sim = Simulation(crew=5, scenario="patrol", seed=3)
    frames = sim.advance(1200.0)
    assert sim.alarms_raised == 0
    assert not [f for f in frames if f.type is FrameType.ALARM]
    for beacon in sim.beacons:
        tele = telemetry_of(frames, beacon.id)
        p = beacon.body.profile
        assert len(tele) > 1150
        hr = [t.heart_rate for t in tele if t.heart_rate is not None]
        assert len(hr) == len(tele)
        assert p.resting_hr - 5 <= min(hr)
        assert max(hr) <= p.max_hr + 8
        assert max(hr) - min(hr) > 30  # effort varies
        assert all(32.0 < t.skin_temperature < 38.0 for t in tele)
        assert all(10.0 < t.ambient_temperature < 100.0 for t in tele)
        assert all(-110 <= t.rssi <= -40 for t in tele)
        assert all(t.flags == TelemetryFlags.SENSOR_CONTACT for t in tele)
        motion = [t.motion for t in tele]
        assert max(motion) > 500
        assert min(motion) < 50
        still = longest = 0
        for mg in motion:
            still = still + 1 if mg < 50 else 0
            longest = max(longest, still)
        assert longest < 10  # pauses are short: never near the 20 s PASS pre-alert
        if p.scba:
            pressures = [t.scba_pressure for t in tele]
            assert all(pr is not None and pr > 99.0 for pr in pressures)
            assert pressures[-1] != pressures[0]
        else:
            assert all(t.scba_pressure is None for t in tele)
    assert not sim.beacons[-1].body.profile.scba  # the pump operator of a crew of 4+


def test_scba_consumption_is_within_40_to_100_litres_a_minute() -> None:
    sim = Simulation(crew=2, seed=4)
    sim.beacons[0].body.rotate = False
    tele = telemetry_of(sim.advance(300.0), sim.beacons[0].id)
    first, last = tele[0].scba_pressure, tele[-1].scba_pressure
    assert first is not None
    assert last is not None
    litres_per_min = (first - last) * 6.8 / (len(tele) - 1) * 60
    assert 40.0 <= litres_per_min <= 100.0


def test_man_down_motion_stops_and_pass_alarm_follows_at_30_s() -> None:
    sim = Simulation(crew=3, scenario="man-down", seed=5, event_at=10.0)
    victim = sim.beacons[0].id
    frames = timed(sim, 60.0, step=0.5)
    after = [f.message for t, f in frames if t > 11.5 and f.beacon == victim]
    motion = [m.motion for m in after if isinstance(m, Telemetry)]
    assert motion
    assert max(motion) < 10
    first = next((t, f) for t, f in frames if f.beacon == victim and f.type is FrameType.ALARM)
    assert 39.0 <= first[0] <= 42.5
    assert first[1].message.cause == AlarmCause.MOTION  # type: ignore[union-attr]
    others = [b.id for b in sim.beacons[1:]]
    assert not [f for _, f in frames if f.beacon in others and f.type is FrameType.ALARM]


def test_man_down_without_the_beacons_own_pass_alarm() -> None:
    sim = Simulation(crew=2, scenario="man-down", seed=5, pass_alarm_after=None)
    frames = sim.advance(90.0)
    assert not alarms_of(frames, sim.beacons[0].id)
    assert max(t.motion for t in telemetry_of(frames, sim.beacons[0].id)[15:]) < 10


@pytest.mark.parametrize(
    ("scenario", "cause", "flag"),
    [
        ("fall", AlarmCause.FALL, TelemetryFlags.FALL),
        ("distress", AlarmCause.DISTRESS, TelemetryFlags.DISTRESS),
    ],
)
def test_fall_and_distress_set_the_flag_and_raise_the_alarm_at_once(
    scenario: str, cause: AlarmCause, flag: TelemetryFlags
) -> None:
    sim = Simulation(crew=2, scenario=scenario, seed=6, event_at=12.0)
    victim = sim.beacons[0].id
    frames = timed(sim, 20.0, step=0.25)
    alarm_times = [t for t, f in frames if f.beacon == victim and f.type is FrameType.ALARM]
    assert 12.0 <= alarm_times[0] <= 12.5
    assert all(
        f.message.cause == cause  # type: ignore[union-attr]
        for _, f in frames
        if f.beacon == victim and f.type is FrameType.ALARM
    )
    tele = [
        (t, f.message) for t, f in frames if f.beacon == victim and isinstance(f.message, Telemetry)
    ]
    assert all(flag not in m.flags for t, m in tele if t < 12.0)
    assert all(flag in m.flags for t, m in tele if t > 13.0)
    if scenario == "fall":
        assert max(m.motion for t, m in tele if 12.0 <= t <= 14.0) > 2000  # the impact


def test_low_air_crosses_a_third_of_rated_pressure_near_event_at() -> None:
    sim = Simulation(crew=2, scenario="low-air", seed=7, event_at=30.0)
    frames = timed(sim, 60.0)
    tele = [
        (t, f.message)
        for t, f in frames
        if f.beacon == sim.beacons[0].id and isinstance(f.message, Telemetry)
    ]
    crossed = next(t for t, m in tele if m.scba_pressure is not None and m.scba_pressure < 99.0)
    assert 28.0 <= crossed <= 34.0
    assert all(m.scba_pressure is not None and m.scba_pressure > 99.0 for t, m in tele if t < 28.0)


def test_heat_stress_heats_up_and_raises_a_thermal_alarm() -> None:
    sim = Simulation(crew=2, scenario="heat-stress", seed=8, event_at=10.0)
    victim = sim.beacons[0]
    frames = sim.advance(120.0)
    tele = telemetry_of(frames, victim.id)
    assert max(t.ambient_temperature for t in tele) > 150.0
    assert tele[-1].skin_temperature > tele[5].skin_temperature + 1.0
    hr = [t.heart_rate or 0 for t in tele]
    assert max(hr[60:]) > 0.85 * victim.body.profile.max_hr
    causes = {f.message.cause for f in alarms_of(frames, victim.id)}  # type: ignore[union-attr]
    assert causes == {AlarmCause.THERMAL}


def test_lost_contact_goes_silent_then_says_hello_again() -> None:
    sim = Simulation(crew=2, scenario="lost-contact", seed=9, event_at=20.0)
    victim = sim.beacons[0]
    before = sim.advance(20.0)
    rssi = [t.rssi for t in telemetry_of(before, victim.id)]
    assert sum(rssi[-3:]) / 3 < sum(rssi[3:8]) / 5 - 8  # the signal fades first
    during = sim.advance(40.0)
    assert not [f for f in during if f.beacon == victim.id]
    assert telemetry_of(during, sim.beacons[1].id)
    sim.set_silent(victim.id, False)
    back = [f for f in sim.advance(45.0) if f.beacon == victim.id]
    assert isinstance(back[0].message, Hello)
    assert len(back) > 3
    # the beacon kept counting while unheard: a gap in seq shows the lost frames
    assert (back[0].seq - [f.seq for f in before if f.beacon == victim.id][-1]) % 256 > 10


def test_alarm_repeats_every_second_until_acked() -> None:
    sim = Simulation(crew=2, scenario="distress", seed=10, event_at=5.0)
    victim = sim.beacons[0].id
    frames = sim.advance(10.0)
    repeats = alarms_of(frames, victim)
    assert len(repeats) == 6  # at 5 s, then every second
    assert len({f.message.alarm_id for f in repeats}) == 1  # type: ignore[union-attr]
    assert len({f.seq for f in repeats}) == 6
    assert not sim.ack(victim, FrameType.TELEMETRY, repeats[2].seq)  # wrong type
    assert not sim.ack(victim + 1, FrameType.ALARM, repeats[2].seq)  # wrong beacon
    assert sim.acks_unmatched == 2
    assert sim.ack(victim, FrameType.ALARM, repeats[2].seq)  # an older repeat will do
    assert sim.alarms_acked == 1
    assert not alarms_of(sim.advance(30.0), victim)
    # the flag stays until the wearer resets the beacon
    assert telemetry_of(sim.advance(31.0), victim)[-1].distress
    sim.reset(victim)
    assert not telemetry_of(sim.advance(33.0), victim)[-1].distress


def test_reset_stops_repeats_and_a_new_press_is_a_new_alarm() -> None:
    sim = Simulation(crew=1, seed=10)
    victim = sim.beacons[0].id
    sim.advance(2.0)
    sim.press_distress(victim)
    first = alarms_of(sim.advance(4.0), victim)
    sim.reset(victim)
    assert not alarms_of(sim.advance(8.0), victim)
    sim.press_distress(victim)
    second = alarms_of(sim.advance(9.0), victim)
    assert first
    assert second
    assert first[0].message.alarm_id != second[0].message.alarm_id  # type: ignore[union-attr]


def test_evacuate_one_or_all() -> None:
    sim = Simulation(crew=3, seed=11)
    sim.advance(5.0)
    a, b, c = sim.beacons
    assert sim.evacuate(b.id) == 1
    assert (a.evacuations, b.evacuations, c.evacuations) == (0, 1, 0)
    assert b.body.evacuating
    assert sim.evacuate(0) == 3
    assert (a.evacuations, b.evacuations, c.evacuations) == (1, 2, 1)
    assert sim.evacuate(0xDEAD) == 0
    assert sim.evacuations == 4


def test_receiver_restart_resets_uptime_and_beacons_rejoin() -> None:
    sim = Simulation(crew=2, seed=12)
    sim.advance(35.0)
    sim.restart_receiver()
    frames = sim.advance(36.0)
    status = [f.message for f in frames if isinstance(f.message, ReceiverStatus)]
    assert status[0].uptime == 0
    assert {f.beacon for f in frames if isinstance(f.message, Hello)} == {b.id for b in sim.beacons}


def test_bad_parameters_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="scenario"):
        Simulation(scenario="picnic")
    with pytest.raises(ConfigError, match="crew"):
        Simulation(crew=0)
    with pytest.raises(ConfigError, match="victim"):
        Simulation(crew=2, victim=2)
    with pytest.raises(ConfigError, match="pass_alarm_after"):
        Simulation(pass_alarm_after=0.0)
    with pytest.raises(ConfigError, match="ids"):
        Simulation(crew=2, ids=[5, 5])
    with pytest.raises(CommandError, match="no beacon"):
        Simulation(crew=1).press_distress(12345)


def test_fixed_ids() -> None:
    sim = Simulation(crew=2, seed=1, ids=[101, 102])
    assert {f.beacon for f in sim.advance(3.0)} == {0, 101, 102}


def test_fault_injector_damage_is_seen_by_the_decoder() -> None:
    sim = Simulation(crew=3, seed=13)
    clean = [encode(f.message, f.seq, f.beacon) for f in sim.advance(40.0)]
    for fault, counter in [
        (Fault.NOISE, "noise_bytes"),
        (Fault.TRUNCATE, "truncated"),
        (Fault.BAD_CRC, "bad_crc"),
    ]:
        faults = FaultInjector(random.Random(1))
        faults.inject(fault, 5)
        dec = FrameDecoder()
        got = dec.feed(b"".join(faults.apply(raw) for raw in clean)) + dec.flush()
        assert faults.applied[fault] == 5
        assert dec.counters()[counter] >= 5 if fault is not Fault.NOISE else dec.noise_bytes > 5
        lost = 0 if fault is Fault.NOISE else 5
        assert len(got) >= len(clean) - lost - 2  # a false sync in noise may cost a frame
    faults = FaultInjector(random.Random(1))
    faults.inject(Fault.BURST, 10)
    written = [faults.apply(raw) for raw in clean[:12]]
    assert written[:9] == [b""] * 9
    assert written[9] == b"".join(clean[:10])
    with pytest.raises(ConfigError, match="fault"):
        faults.inject("smoke")
    with pytest.raises(ConfigError):
        faults.set_rate(Fault.NOISE, 2.0)


def test_telemetry_stays_encodable_in_extremes() -> None:
    sim = Simulation(crew=1, scenario="heat-stress", seed=14, event_at=0.0)
    body = sim.beacons[0].body
    body.battery = 3.0
    body.contact = False
    frames = sim.advance(600.0)
    tele = telemetry_of(frames, sim.beacons[0].id)
    assert all(encode(t, 0, 1) for t in tele)
    assert tele[-1].heart_rate is None
    assert not tele[-1].sensor_contact
    assert tele[-1].low_battery
    assert all(isinstance(f.message, Alarm | Telemetry | Hello | ReceiverStatus) for f in frames)
