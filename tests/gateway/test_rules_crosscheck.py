"""Cross-check: a camera and a panel detection in one mapped zone corroborate a fire."""

from __future__ import annotations

from typing import Any

from edgesdk.model import Event, EventKind, EventState, Severity
from gateway.config import RulesConfig, ZoneMap
from gateway.rules import RuleEngine

T0 = 1_700_000_000.0


def config(**zones: ZoneMap) -> RulesConfig:
    return RulesConfig(crosscheck_window=120.0, zones=zones)


HALL = ZoneMap(panel="panel1", panel_zones=[3], cameras=["cam1"], camera_zones=["hall"])


def panel(kind: str, t: float, zone: Any = 3, **data: Any) -> Event:
    severity = Severity.FIRE if kind != EventKind.PREALARM else Severity.PREALARM
    return Event(
        kind=kind,
        severity=severity,
        state=EventState.ACTIVE,
        source="panel1",
        time=t,
        data={"unit": 1, "zone": zone, **data},
    )


def camera(t: float, name: str = "cam1", zones: tuple[str, ...] = ("hall",), **kw: Any) -> Event:
    return Event(
        kind=kw.pop("kind", EventKind.CAMERA_SMOKE),
        severity=Severity.PREALARM,
        state=EventState.ACTIVE,
        source="cameras",
        time=t,
        data={"camera": name, "label": "smoke", "score": 0.9, "zones": list(zones)},
    )


def test_panel_then_camera_within_the_window() -> None:
    engine = RuleEngine(config(hall=HALL))
    fire = panel(EventKind.FIRE, T0, loop=1, point=5)
    assert engine.feed("panel1", fire, T0) == []
    smoke = camera(T0 + 60)
    [corroborated] = engine.feed("cameras", smoke, T0 + 60.5)
    assert corroborated.kind == EventKind.CORROBORATED_FIRE
    assert corroborated.severity is Severity.FIRE
    assert corroborated.source == "gateway"
    assert corroborated.time == T0 + 60
    assert dict(corroborated.data) == {
        "device": "panel1",
        "zone": "hall",
        "panel_event": fire.id,
        "panel_device": "panel1",
        "panel_kind": "fire",
        "panel_zone": 3,
        "camera_event": smoke.id,
        "camera_device": "cameras",
        "camera_kind": "camera-smoke",
        "camera": "cam1",
    }
    assert engine.active() == [corroborated]


def test_camera_then_panel_prealarm_within_the_window() -> None:
    engine = RuleEngine(config(hall=HALL))
    smoke = camera(T0, kind=EventKind.CAMERA_FIRE)
    assert engine.feed("cameras", smoke, T0) == []
    pre = panel(EventKind.PREALARM, T0 + 120)  # exactly at the window's edge
    [corroborated] = engine.feed("panel1", pre, T0 + 120)
    assert corroborated.data["panel_event"] == pre.id
    assert corroborated.data["camera_event"] == smoke.id
    assert corroborated.data["camera_kind"] == "camera-fire"
    assert corroborated.time == T0 + 120


def test_zone_fire_corroborates_too() -> None:
    engine = RuleEngine(config(hall=HALL))
    engine.feed("cameras", camera(T0), T0)
    zone_fire = Event(
        kind=EventKind.ZONE_FIRE,
        severity=Severity.FIRE,
        state=EventState.ACTIVE,
        source="panel1",
        time=T0 + 1,
        data={"unit": 1, "zone": 3},
    )
    assert [e.kind for e in engine.feed("panel1", zone_fire, T0 + 1)] == ["corroborated-fire"]


def test_outside_the_window_nothing() -> None:
    engine = RuleEngine(config(hall=HALL))
    engine.feed("panel1", panel(EventKind.FIRE, T0), T0)
    assert engine.feed("cameras", camera(T0 + 120.5), T0 + 120.5) == []
    engine = RuleEngine(config(hall=HALL))
    engine.feed("cameras", camera(T0 + 200), T0 + 200)
    assert engine.feed("panel1", panel(EventKind.FIRE, T0 + 50), T0 + 330) == []
    assert engine.active() == []


def test_unmapped_sources_nothing() -> None:
    engine = RuleEngine(config(hall=HALL))
    engine.feed("panel1", panel(EventKind.FIRE, T0, zone=4), T0)  # zone 4 is not mapped
    engine.feed("panel2", panel(EventKind.FIRE, T0), T0)  # another panel
    engine.feed("panel1", panel(EventKind.POINT_TROUBLE, T0), T0)  # not a detection
    assert engine.feed("cameras", camera(T0 + 1), T0 + 1) == []
    engine = RuleEngine(config(hall=HALL))
    engine.feed("cameras", camera(T0, name="cam2"), T0)  # another camera
    engine.feed("cameras", camera(T0, zones=("yard",)), T0)  # another camera zone
    assert engine.feed("panel1", panel(EventKind.FIRE, T0 + 1), T0 + 1) == []
    # no zones configured: the rule is off
    engine = RuleEngine(RulesConfig())
    engine.feed("cameras", camera(T0), T0)
    assert engine.feed("panel1", panel(EventKind.FIRE, T0), T0) == []


def test_once_per_zone_occurrence_and_cleared_when_both_sources_clear() -> None:
    engine = RuleEngine(config(hall=HALL))
    fire = panel(EventKind.FIRE, T0)
    smoke = camera(T0 + 5)
    engine.feed("panel1", fire, T0)
    [corroborated] = engine.feed("cameras", smoke, T0 + 5)
    # more detections in the zone join the occurrence
    flame = camera(T0 + 6, kind=EventKind.CAMERA_FIRE)
    assert engine.feed("cameras", flame, T0 + 6) == []
    fire2 = panel(EventKind.FIRE, T0 + 7)
    assert engine.feed("panel1", fire2, T0 + 7) == []
    assert engine.feed("cameras", smoke, T0 + 8) == []  # a repeat of an active detection
    # an acknowledgement marks it seen; it still clears with its sources
    [acked] = engine.acknowledge(corroborated.id, T0 + 9)
    assert acked.state is EventState.ACKNOWLEDGED
    assert engine.active() == [acked]
    for e in (fire, smoke, flame):
        assert engine.feed(e.source, e.with_state(EventState.CLEARED, time=T0 + 10), T0 + 10) == []
    assert engine.active() == [acked]  # the second panel fire is still active
    # a clear need not repeat the zone of its detection: it is matched by id
    last = Event(
        kind=EventKind.FIRE,
        severity=Severity.FIRE,
        state=EventState.CLEARED,
        source="panel1",
        time=T0 + 20,
        data={"unit": 1},
        id=fire2.id,
    )
    [cleared] = engine.feed("panel1", last, T0 + 20)
    assert (cleared.id, cleared.state, cleared.time) == (
        corroborated.id,
        EventState.CLEARED,
        T0 + 20,
    )
    assert cleared.data["reason"] == "sources cleared"
    assert engine.active() == []
    # a new pair is a new occurrence
    engine.feed("panel1", panel(EventKind.FIRE, T0 + 30), T0 + 30)
    [again] = engine.feed("cameras", camera(T0 + 31), T0 + 31)
    assert again.id != corroborated.id


def test_a_repeated_camera_detection_counts_from_its_latest_time() -> None:
    engine = RuleEngine(config(hall=HALL))
    smoke = camera(T0)
    engine.feed("cameras", smoke, T0)
    repeat = Event(
        kind=smoke.kind,
        severity=smoke.severity,
        state=EventState.ACTIVE,
        source="cameras",
        time=T0 + 200,
        data=smoke.data,
        id=smoke.id,
    )
    engine.feed("cameras", repeat, T0 + 200)
    [corroborated] = engine.feed("panel1", panel(EventKind.FIRE, T0 + 250), T0 + 250)
    assert corroborated.data["camera_event"] == smoke.id


def test_camera_named_with_its_device_and_zone_lists_left_open() -> None:
    zones = {
        "store": ZoneMap(panel="panel1", cameras=["cameras/cam9"]),  # any panel zone
        "dock": ZoneMap(panel="panel1", panel_zones=[8], camera_zones=["dock"]),  # any camera
        "void": ZoneMap(panel="panel1", panel_zones=[9]),  # no camera side: never
    }
    engine = RuleEngine(config(**zones))
    engine.feed("cameras", camera(T0, name="cam9", zones=()), T0)
    [store] = engine.feed("panel1", panel(EventKind.FIRE, T0 + 1, zone=5), T0 + 1)
    assert store.data["zone"] == "store"
    engine.feed("cameras", camera(T0, name="camX", zones=("dock",)), T0)
    got = engine.feed("panel1", panel(EventKind.FIRE, T0 + 2, zone="8"), T0 + 2)
    assert [e.data["zone"] for e in got] == ["dock"]  # "store" is ongoing already
    assert engine.feed("panel1", panel(EventKind.FIRE, T0 + 3, zone=9), T0 + 3) == []
    assert sorted(e.data["zone"] for e in engine.active()) == ["dock", "store"]
