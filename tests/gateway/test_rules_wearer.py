"""Low air (NFPA 1981), heart rate, heat stress and lost contact: exact values and times."""

from __future__ import annotations

from edgesdk.model import Event, EventKind, EventState, Reading, Severity
from gateway.config import RulesConfig
from gateway.rules import RuleEngine

T0 = 1_700_000_000.0


def reading(name: str, value: float, t: float, device: str = "crew") -> Reading:
    return Reading(device, name, value, time=t)


def feed(engine: RuleEngine, name: str, value: float, t: float) -> list[Event]:
    return engine.feed("crew", reading(name, value, t), t)


def only(kind: str, events: list[Event]) -> list[Event]:
    """The events of one rule (a wearer who sends no motion also gets man-down)."""
    return [e for e in events if e.kind == kind]


def states(events: list[Event]) -> list[tuple[str, Severity, EventState, float]]:
    return [(e.kind, e.severity, e.state, e.time) for e in events]


# -- low air --------------------------------------------------------------------------------


def test_low_air_at_33_percent_of_an_assumed_300_bar() -> None:
    engine = RuleEngine(RulesConfig())
    assert feed(engine, "7/scba_pressure", 100.0, T0) == []
    assert feed(engine, "7/scba_pressure", 99.5, T0 + 1) == []
    [alarm] = feed(engine, "7/scba_pressure", 99.0, T0 + 2)
    assert states([alarm]) == [(EventKind.LOW_AIR, Severity.ALARM, EventState.ACTIVE, T0 + 2)]
    assert dict(alarm.data) == {
        "device": "crew",
        "beacon": 7,
        "pressure": 99.0,
        "threshold": 99.0,
        "rated_pressure": 300.0,
        "rated_assumed": True,
    }
    assert alarm.source == "gateway"
    # hysteresis: 5 % of rated (15 bar) above the limit before it clears
    for i, bar in enumerate([98.0, 100.0, 110.0, 114.0, 99.0, 114.0]):
        assert feed(engine, "7/scba_pressure", bar, T0 + 3 + i) == []
    [cleared] = feed(engine, "7/scba_pressure", 114.5, T0 + 10)
    assert (cleared.id, cleared.state, cleared.time) == (alarm.id, EventState.CLEARED, T0 + 10)
    assert cleared.data["pressure"] == 114.5
    [again] = feed(engine, "7/scba_pressure", 80.0, T0 + 11)
    assert again.state is EventState.ACTIVE
    assert again.id != alarm.id


def test_low_air_uses_the_rated_pressure_from_the_hello() -> None:
    engine = RuleEngine(RulesConfig())
    feed(engine, "7/rated_pressure", 200.0, T0)
    assert feed(engine, "7/scba_pressure", 67.0, T0 + 1) == []
    [alarm] = feed(engine, "7/scba_pressure", 66.0, T0 + 2)
    assert alarm.data["rated_pressure"] == 200.0
    assert alarm.data["rated_assumed"] is False
    assert alarm.data["threshold"] == 66.0
    # or from the beacon-joined event of another beacon
    joined = Event(
        kind=EventKind.BEACON_JOINED,
        severity=Severity.INFO,
        state=EventState.ACTIVE,
        source="crew",
        time=T0,
        data={"beacon": 8, "wearer_age": 30, "rated_pressure": 200},
    )
    assert engine.feed("crew", joined, T0 + 3) == []
    assert feed(engine, "8/scba_pressure", 67.0, T0 + 4) == []
    [alarm8] = feed(engine, "8/scba_pressure", 66.0, T0 + 5)
    assert alarm8.data["beacon"] == 8
    assert alarm8.data["rated_assumed"] is False


def test_low_air_fraction_is_configurable() -> None:
    engine = RuleEngine(RulesConfig(scba_low_fraction=0.25))  # the pre-2013 NFPA 1981 value
    assert feed(engine, "7/scba_pressure", 76.0, T0) == []
    assert [e.data["threshold"] for e in feed(engine, "7/scba_pressure", 75.0, T0)] == [75.0]


# -- heart rate ----------------------------------------------------------------------------


def heart(engine: RuleEngine, bpm_at: dict[float, float], start: float, stop: float) -> list[Event]:
    """One heart-rate reading a second (default 160 bpm), ticks every 0.25 s."""
    out: list[Event] = []
    steps = round((stop - start) / 0.25)
    assert steps < 10_000
    for i in range(steps + 1):
        now = start + i * 0.25
        if i % 4 == 0:
            out += feed(engine, "7/heart_rate", bpm_at.get(now, 160.0), now)
            out += feed(engine, "7/motion", 500.0, now)  # a firefighter at work
        out += engine.tick(now)
    return out


def test_heart_rate_above_153_for_60s_at_age_40() -> None:
    engine = RuleEngine(RulesConfig())  # default_wearer_age 40: 0.85 x 180 = 153 bpm
    assert feed(engine, "7/heart_rate", 153.0, T0 - 1) == []  # at the limit: not above
    events = heart(engine, {}, T0, T0 + 59.75)
    assert events == []
    [warning] = heart(engine, {}, T0 + 60, T0 + 70)
    assert states([warning]) == [
        (EventKind.HEART_RATE, Severity.SUPERVISORY, EventState.ACTIVE, T0 + 60)
    ]
    assert warning.data["limit"] == 153.0
    assert warning.data["age"] == 40
    assert warning.data["age_assumed"] is True
    assert warning.data["above_since"] == T0
    # hysteresis: 150 (below 153 but above 148) keeps it, 148 clears it
    assert feed(engine, "7/heart_rate", 150.0, T0 + 71) == []
    [cleared] = feed(engine, "7/heart_rate", 148.0, T0 + 72)
    assert (cleared.id, cleared.state, cleared.time) == (warning.id, EventState.CLEARED, T0 + 72)


def test_a_dip_resets_the_heart_rate_timer() -> None:
    engine = RuleEngine(RulesConfig())
    events = heart(engine, {T0 + 30: 150.0}, T0, T0 + 95)
    assert states(events) == [
        (EventKind.HEART_RATE, Severity.SUPERVISORY, EventState.ACTIVE, T0 + 31 + 60)
    ]


def test_heart_rate_limit_follows_the_wearer_age() -> None:
    engine = RuleEngine(RulesConfig())
    feed(engine, "7/wearer_age", 30, T0 - 2)  # 0.85 x 190 = 161.5
    feed(engine, "7/wearer_age", 0, T0 - 1)  # 0 is "unknown": ignored
    assert heart(engine, {}, T0, T0 + 80) == []  # 160 is below 161.5
    events = heart(engine, {T0 + 81 + i: 170.0 for i in range(70)}, T0 + 81, T0 + 141)
    assert [(e.time, e.data["limit"], e.data["age"], e.data["age_assumed"]) for e in events] == [
        (T0 + 141, 161.5, 30, False)
    ]


# -- heat stress ---------------------------------------------------------------------------


def test_skin_temperature_and_ambient_heat_with_hysteresis() -> None:
    engine = RuleEngine(RulesConfig())
    assert feed(engine, "7/skin_temp", 39.0, T0) == []
    [skin] = feed(engine, "7/skin_temp", 39.2, T0 + 1)
    assert states([skin]) == [
        (EventKind.SKIN_TEMPERATURE, Severity.SUPERVISORY, EventState.ACTIVE, T0 + 1)
    ]
    assert skin.data["temperature"] == 39.2
    assert skin.data["limit"] == 39.0
    assert feed(engine, "7/skin_temp", 38.8, T0 + 2) == []
    [cleared] = feed(engine, "7/skin_temp", 38.5, T0 + 3)
    assert (cleared.id, cleared.state) == (skin.id, EventState.CLEARED)

    assert feed(engine, "7/ambient_temp", 150.0, T0) == []
    [heat] = feed(engine, "7/ambient_temp", 180.0, T0 + 1)
    assert heat.kind == EventKind.AMBIENT_HEAT
    assert heat.severity is Severity.SUPERVISORY
    assert feed(engine, "7/ambient_temp", 145.0, T0 + 2) == []
    [cleared] = feed(engine, "7/ambient_temp", 140.0, T0 + 3)
    assert (cleared.id, cleared.state) == (heat.id, EventState.CLEARED)


def test_heat_limits_are_configurable() -> None:
    engine = RuleEngine(RulesConfig(skin_temperature_max=38.0, ambient_heat_max=60.0))
    assert [e.kind for e in feed(engine, "7/skin_temp", 38.1, T0)] == ["skin-temperature"]
    assert [e.kind for e in feed(engine, "7/ambient_temp", 61.0, T0)] == ["ambient-heat"]


# -- lost contact --------------------------------------------------------------------------


def test_lost_contact_after_15s_of_silence_and_cleared_on_return() -> None:
    engine = RuleEngine(RulesConfig())
    feed(engine, "7/battery", 90, T0)
    out: list[Event] = []
    for i in range(1, 4 * 20):
        out += engine.tick(T0 + i * 0.25)
        if i == 4 * 10:  # a receiver status reading is not a sign of life of beacon 7
            out += engine.feed("crew", reading("receiver/uptime", 5, T0 + 10), T0 + 10)
    [lost] = only(EventKind.LOST_CONTACT, out)
    assert states([lost]) == [(EventKind.LOST_CONTACT, Severity.ALARM, EventState.ACTIVE, T0 + 15)]
    assert dict(lost.data) == {"device": "crew", "beacon": 7, "last_seen": T0, "silent_s": 15.0}
    [back] = only(EventKind.LOST_CONTACT, feed(engine, "7/rssi", -70, T0 + 20))
    assert (back.id, back.state, back.time) == (lost.id, EventState.CLEARED, T0 + 20)
    assert back.data["silent_s"] == 20.0


def test_driver_events_are_signs_of_life_and_put_beacons_on_duty() -> None:
    engine = RuleEngine(RulesConfig())
    distress = Event(
        kind=EventKind.DISTRESS,
        severity=Severity.ALARM,
        state=EventState.ACTIVE,
        source="crew",
        time=T0,
        data={"beacon": 12, "alarm_id": 3},
    )
    # the driver's distress is forwarded by the gateway, not duplicated by the rules
    assert engine.feed("crew", distress, T0) == []
    assert engine.on_duty() == [("crew", 12)]
    assert engine.tick(T0 + 14.75) == []
    assert engine.feed("crew", distress, T0 + 14.75) == []
    [lost] = only(EventKind.LOST_CONTACT, engine.tick(T0 + 29.75))
    assert (lost.kind, lost.time) == (EventKind.LOST_CONTACT, T0 + 29.75)
