"""Man-down (PASS, NFPA 1982): exact times, no sleeping."""

from __future__ import annotations

from collections.abc import Callable

from edgesdk.model import Event, EventKind, EventState, Reading, Severity
from gateway.config import RulesConfig
from gateway.rules import RuleEngine

T0 = 1_700_000_000.0  # quarter seconds are exact at this magnitude
STILL = 20.0  # mg: a firefighter lying still (below the 100 mg threshold)
MOVING = 500.0

Emitted = list[tuple[float, Event]]


def motion(beacon: int, mg: float, t: float) -> Reading:
    return Reading("crew", f"{beacon}/motion", mg, "mg", time=t)


def run(
    engine: RuleEngine,
    start: float,
    stop: float,
    mg: Callable[[int, float], float | None],
    beacons: tuple[int, ...] = (7,),
) -> Emitted:
    """Quarter-second steps from start to stop (inclusive): at each whole second one motion
    reading per beacon (``mg`` gives its value, ``None`` for no reading), then a tick."""
    out: Emitted = []
    steps = round((stop - start) / 0.25)
    assert steps < 10_000
    for i in range(steps + 1):
        now = start + i * 0.25
        if i % 4 == 0:
            for b in beacons:
                value = mg(b, now)
                if value is not None:
                    out += [(now, e) for e in engine.feed("crew", motion(b, value, now), now)]
        out += [(now, e) for e in engine.tick(now)]
    return out


def kinds(emitted: Emitted) -> list[tuple[str, Severity, EventState, float]]:
    return [(e.kind, e.severity, e.state, e.time) for _, e in emitted]


def test_prealarm_at_exactly_20s_then_latched_alarm_at_30s() -> None:
    engine = RuleEngine(RulesConfig())
    moving_until = T0 + 10
    emitted = run(engine, T0, T0 + 45, lambda b, t: MOVING if t <= moving_until else STILL)
    assert kinds(emitted) == [
        (EventKind.MAN_DOWN, Severity.PREALARM, EventState.ACTIVE, T0 + 30),
        (EventKind.MAN_DOWN, Severity.ALARM, EventState.ACTIVE, T0 + 40),
        (EventKind.MAN_DOWN, Severity.PREALARM, EventState.CLEARED, T0 + 40),
    ]
    (n_pre, pre), (n_alarm, alarm), (_, superseded) = emitted
    assert n_pre == T0 + 30
    assert n_alarm == T0 + 40
    assert pre.source == "gateway"
    assert dict(pre.data) == {
        "device": "crew",
        "beacon": 7,
        "last_motion": T0 + 10,
        "stationary_s": 20.0,
    }
    assert alarm.data["last_motion"] == T0 + 10
    assert alarm.data["stationary_s"] == 30.0
    assert alarm.data["prealarm"] == pre.id
    assert alarm.id != pre.id
    assert superseded.id == pre.id
    assert superseded.data["reason"] == "escalated"
    assert superseded.data["alarm"] == alarm.id
    assert engine.active() == [alarm]

    # latched: a minute of vigorous motion does not clear it
    assert run(engine, T0 + 45.25, T0 + 105, lambda b, t: MOVING) == []
    assert engine.active() == [alarm]

    acked = engine.acknowledge(alarm.id, T0 + 106, by="commander")
    assert len(acked) == 1
    assert (acked[0].id, acked[0].state, acked[0].time) == (
        alarm.id,
        EventState.ACKNOWLEDGED,
        T0 + 106,
    )
    assert acked[0].data["by"] == "commander"
    assert acked[0].severity is Severity.ALARM
    assert engine.active() == []
    assert engine.acknowledge(alarm.id, T0 + 107) == []  # once only

    # the watch goes on: still again -> a fresh pre-alert 20 s after the later of the
    # last movement (T0 + 105) and the acknowledgement (T0 + 106)
    emitted = run(engine, T0 + 107, T0 + 130, lambda b, t: STILL)
    assert kinds(emitted) == [
        (EventKind.MAN_DOWN, Severity.PREALARM, EventState.ACTIVE, T0 + 106 + 20)
    ]
    assert emitted[0][1].id not in {pre.id, alarm.id}


def test_acknowledged_alarm_restarts_the_timer_from_the_ack() -> None:
    engine = RuleEngine(RulesConfig())
    emitted = run(engine, T0, T0 + 31, lambda b, t: STILL)
    alarm = next(e for _, e in emitted if e.severity is Severity.ALARM)
    assert alarm.time == T0 + 30
    assert engine.acknowledge(alarm.id, T0 + 31)[0].state is EventState.ACKNOWLEDGED
    emitted = run(engine, T0 + 32, T0 + 52, lambda b, t: STILL)
    assert kinds(emitted) == [(EventKind.MAN_DOWN, Severity.PREALARM, EventState.ACTIVE, T0 + 51)]


def test_motion_during_the_prealert_clears_it_and_restarts_the_timer() -> None:
    engine = RuleEngine(RulesConfig())
    emitted = run(engine, T0, T0 + 54, lambda b, t: MOVING if t == T0 + 25 else STILL)
    assert kinds(emitted) == [
        (EventKind.MAN_DOWN, Severity.PREALARM, EventState.ACTIVE, T0 + 20),
        (EventKind.MAN_DOWN, Severity.PREALARM, EventState.CLEARED, T0 + 25),
        (EventKind.MAN_DOWN, Severity.PREALARM, EventState.ACTIVE, T0 + 45),
    ]
    first, cleared, second = (e for _, e in emitted)
    assert cleared.id == first.id
    assert second.id != first.id
    assert cleared.data["reason"] == "motion"
    assert cleared.data["moved_at"] == T0 + 25
    assert second.data["last_motion"] == T0 + 25
    assert engine.active() == [second]  # no alarm yet: it is due at T0 + 55
    assert kinds(run(engine, T0 + 54.25, T0 + 55, lambda b, t: STILL)) == [
        (EventKind.MAN_DOWN, Severity.ALARM, EventState.ACTIVE, T0 + 55),
        (EventKind.MAN_DOWN, Severity.PREALARM, EventState.CLEARED, T0 + 55),
    ]


def test_motion_at_the_threshold_is_not_movement() -> None:
    engine = RuleEngine(RulesConfig(motion_threshold=100.0))
    emitted = run(engine, T0, T0 + 20, lambda b, t: 100.0)
    assert kinds(emitted) == [(EventKind.MAN_DOWN, Severity.PREALARM, EventState.ACTIVE, T0 + 20)]
    emitted = run(engine, T0 + 21, T0 + 21, lambda b, t: 100.5)
    assert [(e.state, e.time) for _, e in emitted] == [(EventState.CLEARED, T0 + 21)]


def test_two_firefighters_are_independent() -> None:
    engine = RuleEngine(RulesConfig())
    emitted = run(engine, T0, T0 + 40, lambda b, t: MOVING if b == 7 else STILL, beacons=(7, 9))
    assert {e.data["beacon"] for _, e in emitted} == {9}
    assert kinds(emitted) == [
        (EventKind.MAN_DOWN, Severity.PREALARM, EventState.ACTIVE, T0 + 20),
        (EventKind.MAN_DOWN, Severity.ALARM, EventState.ACTIVE, T0 + 30),
        (EventKind.MAN_DOWN, Severity.PREALARM, EventState.CLEARED, T0 + 30),
    ]
    assert sorted(engine.on_duty()) == [("crew", 7), ("crew", 9)]
    # the same beacon id on another receiver is another firefighter
    engine.feed("crew2", motion(9, MOVING, T0 + 40), T0 + 40)
    assert [e.data["device"] for e in engine.active()] == ["crew"]


def test_nobody_is_watched_before_going_on_duty() -> None:
    engine = RuleEngine(RulesConfig())
    assert run(engine, T0, T0 + 100, lambda b, t: None) == []
    assert engine.on_duty() == []
    # on duty from the first item (here a battery reading): its time is the baseline
    engine.feed("crew", Reading("crew", "7/battery", 80, "%", time=T0 + 100), T0 + 100)
    emitted = run(engine, T0 + 101, T0 + 120, lambda b, t: STILL)
    assert kinds(emitted) == [(EventKind.MAN_DOWN, Severity.PREALARM, EventState.ACTIVE, T0 + 120)]


def test_a_late_check_reports_every_transition_with_its_own_time() -> None:
    engine = RuleEngine(RulesConfig(lost_contact=60.0))
    engine.feed("crew", motion(7, STILL, T0), T0)
    assert [(e.severity, e.state, e.time) for e in engine.tick(T0 + 35)] == [
        (Severity.PREALARM, EventState.ACTIVE, T0 + 20),
        (Severity.ALARM, EventState.ACTIVE, T0 + 30),
        (Severity.PREALARM, EventState.CLEARED, T0 + 30),
    ]


def test_the_reading_time_is_the_movement_time() -> None:
    engine = RuleEngine(RulesConfig())
    engine.feed("crew", motion(7, STILL, T0), T0)
    # a movement stamped T0 + 5 that arrives at T0 + 8 counts from T0 + 5
    engine.feed("crew", motion(7, MOVING, T0 + 5), T0 + 8)
    # a stamp from the future (clock drift) counts as the arrival time, not later
    engine.feed("crew", motion(7, STILL, T0 + 10), T0 + 10)
    emitted = run(engine, T0 + 11, T0 + 25, lambda b, t: STILL)
    assert [(e.severity, e.time) for _, e in emitted] == [(Severity.PREALARM, T0 + 25)]
    engine.feed("crew", motion(7, MOVING, T0 + 999), T0 + 26)
    emitted = run(engine, T0 + 27, T0 + 46, lambda b, t: STILL)
    assert [(e.severity, e.time) for _, e in emitted] == [(Severity.PREALARM, T0 + 46)]


def test_silence_is_lost_contact_not_man_down() -> None:
    engine = RuleEngine(RulesConfig())
    engine.feed("crew", motion(7, STILL, T0), T0)
    emitted = run(engine, T0 + 0.25, T0 + 60, lambda b, t: None)
    assert [(e.kind, e.state, e.time) for _, e in emitted] == [
        (EventKind.LOST_CONTACT, EventState.ACTIVE, T0 + 15)
    ]
    # the firefighter comes back moving: contact restored, no man-down
    back = engine.feed("crew", motion(7, MOVING, T0 + 60), T0 + 60)
    assert [(e.kind, e.state, e.time) for e in back] == [
        (EventKind.LOST_CONTACT, EventState.CLEARED, T0 + 60)
    ]
    assert engine.active() == []


def test_a_motionless_firefighter_back_in_contact_gets_man_down_at_once() -> None:
    engine = RuleEngine(RulesConfig())
    engine.feed("crew", motion(7, STILL, T0), T0)
    lost = run(engine, T0 + 0.25, T0 + 60, lambda b, t: None)
    assert [e.kind for _, e in lost] == [EventKind.LOST_CONTACT]
    back = engine.feed("crew", motion(7, STILL, T0 + 60), T0 + 60)
    assert [(e.kind, e.severity, e.state, e.time) for e in back] == [
        (EventKind.MAN_DOWN, Severity.PREALARM, EventState.ACTIVE, T0 + 20),
        (EventKind.MAN_DOWN, Severity.ALARM, EventState.ACTIVE, T0 + 30),
        (EventKind.MAN_DOWN, Severity.PREALARM, EventState.CLEARED, T0 + 30),
        (EventKind.LOST_CONTACT, Severity.ALARM, EventState.CLEARED, T0 + 60),
    ]
    assert [e.severity for e in engine.active()] == [Severity.ALARM]


def test_a_delayed_movement_clears_the_prealert_never_before_it_began() -> None:
    engine = RuleEngine(RulesConfig())
    emitted = run(engine, T0, T0 + 22, lambda b, t: STILL)
    [pre] = [e for _, e in emitted]
    assert pre.time == T0 + 20
    # a movement stamped T0 + 17 arrives at T0 + 22.5: it ends the pre-alert (the
    # firefighter did move) but the clear is not stamped before the pre-alert
    [cleared] = engine.feed("crew", motion(7, MOVING, T0 + 17), T0 + 22.5)
    assert (cleared.id, cleared.state, cleared.time) == (pre.id, EventState.CLEARED, T0 + 20)
    assert cleared.data["moved_at"] == T0 + 17
    # and the timer counts from the movement itself
    emitted = run(engine, T0 + 23, T0 + 37, lambda b, t: STILL)
    assert [(e.severity, e.time) for _, e in emitted] == [(Severity.PREALARM, T0 + 37)]
