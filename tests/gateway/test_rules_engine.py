"""The engine's contract: routing, bad input, acknowledgement and the active list."""

from __future__ import annotations

import math

import pytest

from edgesdk.model import Event, EventKind, EventState, Reading, Severity
from gateway.config import RulesConfig
from gateway.rules import RuleEngine
from gateway.rules.engine import MAX_ROUTES

T0 = 1_700_000_000.0


def r(name: str, value: object, t: float = T0, device: str = "crew") -> Reading:
    return Reading(device, name, value, time=t)  # type: ignore[arg-type]


def test_readings_no_rule_reads_are_ignored() -> None:
    engine = RuleEngine(RulesConfig())
    for name in [
        "u1/l1/d005/smoke",
        "u1/heartbeat",
        "receiver/uptime",
        "7/unknown_field",
        "x7/motion",
        "7/motion/extra",
        "motion",
    ]:
        assert engine.feed("crew", r(name, 1.0), T0) == []
    assert engine.on_duty() == []
    assert engine.tick(T0 + 100) == []


def test_the_route_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateway.rules.engine.MAX_ROUTES", 3)
    engine = RuleEngine(RulesConfig())
    for i in range(10):
        engine.feed("panel1", r(f"u1/l1/d{i:03}/smoke", 0.1, device="panel1"), T0)
    engine.feed("crew", r("7/scba_pressure", 50.0), T0)  # past the cap: routed, not cached
    assert len(engine._routes) == 3
    assert [e.kind for e in engine.active()] == [EventKind.LOW_AIR]
    assert MAX_ROUTES >= 1024


@pytest.mark.parametrize("value", ["50", b"\x00", True, False])
def test_unusable_values_never_raise_nor_act(value: object) -> None:
    engine = RuleEngine(RulesConfig())
    for field in [
        "motion",
        "scba_pressure",
        "heart_rate",
        "skin_temp",
        "ambient_temp",
        "wearer_age",
        "rated_pressure",
    ]:
        assert engine.feed("crew", r(f"7/{field}", value), T0) == []
    # still a sign of life: the beacon is on duty, and moving readings still work
    assert engine.on_duty() == [("crew", 7)]
    assert [e.kind for e in engine.tick(T0 + 14)] == []


def test_a_future_reading_time_counts_as_now() -> None:
    engine = RuleEngine(RulesConfig(lost_contact=60.0))
    engine.feed("crew", r("7/motion", 0.0, t=T0 + 3600), T0)
    [pre] = engine.tick(T0 + 20)
    assert pre.time == T0 + 20
    assert pre.data["last_motion"] == T0


def test_bad_calls_are_clear_errors() -> None:
    engine = RuleEngine(RulesConfig())
    for now in [math.nan, math.inf]:
        with pytest.raises(ValueError, match="finite"):
            engine.feed("crew", r("7/motion", 0.0), now)
        with pytest.raises(ValueError, match="finite"):
            engine.tick(now)
        with pytest.raises(ValueError, match="finite"):
            engine.acknowledge("x", now)
    with pytest.raises(TypeError, match="Reading or an Event"):
        engine.feed("crew", {"name": "7/motion"}, T0)  # type: ignore[arg-type]


def test_rule_events_fed_back_are_ignored() -> None:
    engine = RuleEngine(RulesConfig(), devices={"crew": 5.0})
    engine.feed("crew", r("7/battery", 50), T0)
    [lost] = [e for e in engine.tick(T0 + 15) if e.kind == EventKind.LOST_CONTACT]
    # a gateway that loops its own events back must not make them evidence of life
    assert engine.feed("crew", lost, T0 + 16) == []
    assert lost in engine.active()


def test_acknowledging_a_non_latching_alarm_keeps_it_until_it_clears() -> None:
    engine = RuleEngine(RulesConfig())
    [low] = engine.feed("crew", r("7/scba_pressure", 90.0), T0)
    [acked] = engine.acknowledge(low.id, T0 + 1)
    assert (acked.id, acked.state, acked.data["by"]) == (
        low.id,
        EventState.ACKNOWLEDGED,
        "operator",
    )
    assert engine.active() == [acked]
    assert engine.acknowledge(low.id, T0 + 2) == []
    [cleared] = engine.feed("crew", r("7/scba_pressure", 290.0, t=T0 + 3), T0 + 3)
    assert (cleared.id, cleared.state) == (low.id, EventState.CLEARED)
    assert engine.active() == []
    assert engine.acknowledge(low.id, T0 + 4) == []
    assert engine.acknowledge("no-such-id", T0 + 4) == []


def test_active_lists_most_urgent_first_then_oldest() -> None:
    engine = RuleEngine(RulesConfig(), devices={"panel1": 60.0})
    engine.tick(T0)
    engine.feed("crew", r("7/skin_temp", 40.0, t=T0 + 1), T0 + 1)
    engine.feed("crew", r("7/scba_pressure", 10.0, t=T0 + 2), T0 + 2)
    engine.feed("crew", r("8/scba_pressure", 10.0, t=T0 + 3), T0 + 3)
    engine.tick(T0 + 60)  # (man-down's clock stopped with contact, at T0 + 17 and 18)
    got = [(e.kind, e.severity, e.time) for e in engine.active()]
    assert got == [
        (EventKind.LOW_AIR, Severity.ALARM, T0 + 2),
        (EventKind.LOW_AIR, Severity.ALARM, T0 + 3),
        (EventKind.LOST_CONTACT, Severity.ALARM, T0 + 17),
        (EventKind.LOST_CONTACT, Severity.ALARM, T0 + 18),
        (EventKind.SKIN_TEMPERATURE, Severity.SUPERVISORY, T0 + 1),
        (EventKind.DEVICE_OFFLINE, Severity.TROUBLE, T0 + 60),
    ]
    assert all(isinstance(e, Event) and e.source == "gateway" for e in engine.active())
