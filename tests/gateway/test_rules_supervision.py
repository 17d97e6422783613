"""Device supervision: a configured device silent for its expected interval."""

from __future__ import annotations

import pytest

from edgesdk.errors import ConfigError
from edgesdk.model import Event, EventKind, EventState, Reading, Severity
from gateway.config import RulesConfig
from gateway.rules import RuleEngine

T0 = 1_700_000_000.0


def smoke(t: float) -> Reading:
    return Reading("panel1", "u1/l1/d005/smoke", 0.1, "%/m", time=t)


def test_silent_device_goes_offline_and_clears_on_return() -> None:
    engine = RuleEngine(RulesConfig(), devices={"panel1": 10.0, "cameras": None, "crew": 5.0})
    out: list[Event] = []
    for i in range(4 * 40 + 1):
        now = T0 + i * 0.25
        if i % 8 == 0 and now <= T0 + 20:  # the panel reports every 2 s until T0 + 20
            out += engine.feed("panel1", smoke(now), now)
        out += engine.tick(now)
    assert [(e.kind, e.severity, e.state, e.time, e.data["device"]) for e in out] == [
        # the crew receiver never said anything: offline one interval after the start
        (EventKind.DEVICE_OFFLINE, Severity.TROUBLE, EventState.ACTIVE, T0 + 5, "crew"),
        (EventKind.DEVICE_OFFLINE, Severity.TROUBLE, EventState.ACTIVE, T0 + 30, "panel1"),
    ]  # cameras are not supervised (None)
    panel_offline = out[1]
    assert panel_offline.source == "gateway"
    assert dict(panel_offline.data) == {
        "device": "panel1",
        "silent_s": 10.0,
        "last_seen": T0 + 20,
        "expected_interval": 10.0,
    }
    [back] = engine.feed("panel1", smoke(T0 + 41), T0 + 41)
    assert (back.id, back.state, back.time) == (panel_offline.id, EventState.CLEARED, T0 + 41)
    assert back.data["silent_s"] == 21.0
    # an event is a sign of life as well
    trouble = Event(
        kind=EventKind.RECEIVER_FAULT,
        severity=Severity.TROUBLE,
        state=EventState.ACTIVE,
        source="crew",
        time=T0 + 42,
        data={"error": "unplugged"},
    )
    [crew_back] = engine.feed("crew", trouble, T0 + 42)
    assert crew_back.state is EventState.CLEARED
    assert crew_back.data["device"] == "crew"
    assert engine.active() == []


def test_a_late_item_reports_the_silence_it_ended() -> None:
    engine = RuleEngine(RulesConfig(), devices={"panel1": 10.0})
    engine.feed("panel1", smoke(T0), T0)
    # no tick ran during the silence: the offline and its clear come together
    events = engine.feed("panel1", smoke(T0 + 25), T0 + 25)
    assert [(e.state, e.time) for e in events] == [
        (EventState.ACTIVE, T0 + 10),
        (EventState.CLEARED, T0 + 25),
    ]
    assert events[0].id == events[1].id


@pytest.mark.parametrize("interval", [0, -1.0, float("inf"), float("nan"), "10", True])
def test_bad_intervals_are_config_errors(interval: object) -> None:
    with pytest.raises(ConfigError, match=r"devices\.panel1\.expected_interval"):
        RuleEngine(RulesConfig(), devices={"panel1": interval})  # type: ignore[dict-item]
