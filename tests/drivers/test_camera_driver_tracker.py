"""camera-mqtt's event rules with plain numbers for clocks (sans-I/O): occurrences,
thresholds, zones, snapshots, held ends, repeat timeouts, offline cameras, bounds; and the
blob store and rate-limited log."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest

from drivers.camera_mqtt.blobs import BlobStore
from drivers.camera_mqtt.config import CameraMqttConfig
from drivers.camera_mqtt.parse import Availability, Detection, Snapshot
from drivers.camera_mqtt.ratelog import RateLimitedLog
from drivers.camera_mqtt.tracker import MAX_TRACKED, Tracker
from edgesdk.model import EventKind, EventState, Severity

ACTIVE, CLEARED = EventState.ACTIVE, EventState.CLEARED


def tracker(*groups: dict[str, Any], **kw: Any) -> Tracker:
    cfg = CameraMqttConfig.model_validate(
        {"broker": "mqtt://h", "groups": list(groups) or [{"format": "frigate"}]}
    )
    return Tracker("cams", cfg.groups, Counter(), **kw)


def frigate(
    score: float,
    *,
    active: bool = True,
    ref: str = "ev1",
    label: Any = "fire",
    zones: tuple[str, ...] = ("lobby",),
    camera: str = "lobby",
) -> Detection:
    return Detection(0, "frigate", camera, label, label, active, ref, score, score, zones)


def axis(label: Any, active: bool, group: int = 0) -> Detection:
    return Detection(group, "axis", "dock", label, label, active, f"MAC:{label}")


def generic(label: Any = "smoke", active: bool = True, score: float | None = 0.9) -> Detection:
    return Detection(0, "generic", "plant", label, label, active, f"plant:{label}", score)


def test_fire_occurrence_updates_only_on_thresholds_and_zones() -> None:
    t = tracker()
    [start] = t.detection(frigate(0.55), 0, 100)
    assert (start.kind, start.severity, start.state) == (
        EventKind.CAMERA_FIRE,
        Severity.PREALARM,
        ACTIVE,
    )
    assert start.time == 100
    assert dict(start.data) == {
        "camera": "lobby",
        "label": "fire",
        "zones": ["lobby"],
        "format": "frigate",
        "ref": "ev1",
        "score": 0.55,
        "top_score": 0.55,
    }
    out = []
    for i, (score, zones) in enumerate(
        [
            (0.6, ("lobby",)),
            (0.72, ("lobby",)),
            (0.68, ("lobby",)),
            (0.7, ("lobby", "hall")),
            (0.95, ()),
            (0.99, ()),
        ]
    ):
        out += t.detection(frigate(score, zones=zones), i + 1, 101 + i)
    # 0.72 crosses 0.7; "hall" is a new zone; 0.95 crosses 0.9; nothing else is reported
    assert [(e.data["score"], e.data["top_score"], e.data["zones"]) for e in out] == [
        (0.72, 0.72, ["lobby"]),
        (0.7, 0.72, ["lobby", "hall"]),
        (0.95, 0.95, ["lobby", "hall"]),  # no zones in the message: the last ones stay
    ]
    assert all(e.id == start.id and e.state is ACTIVE for e in out)
    assert t.counters["updates_suppressed"] == 3
    [end] = t.detection(frigate(0.9, active=False), 10, 110)
    assert (end.id, end.state, end.data["reason"], end.time) == (start.id, CLEARED, "end", 110)
    assert t.detection(frigate(0.9, active=False), 11, 111) == []
    assert t.counters["unmatched_ends"] == 1
    assert t.active == []


def test_min_score_gates_the_start_only() -> None:
    t = tracker(min_score=0.6)
    assert t.detection(frigate(0.4), 0, 0) == []
    assert t.counters["below_min_score"] == 1
    [start] = t.detection(frigate(0.65), 1, 1)  # an update of an unknown id starts it
    assert t.detection(frigate(0.3), 2, 2) == []  # falling below keeps it active
    assert t.active == [start]
    assert t.detection(generic("person", score=0.1), 3, 3)[0].kind == EventKind.PERSON


def test_snapshots_ride_along_and_the_first_after_the_start_is_reported() -> None:
    t = tracker()
    assert t.snapshot(Snapshot(0, "lobby", "fire", b""), "old", 0) == []
    [start] = t.detection(frigate(0.8), 0, 0)
    assert start.data["snapshot"] == "old"  # the latest known, maybe from before
    [update] = t.snapshot(Snapshot(0, "lobby", "fire", b""), "new1", 1)
    assert (update.id, update.state, update.data["snapshot"]) == (start.id, ACTIVE, "new1")
    assert t.snapshot(Snapshot(0, "lobby", "fire", b""), "new2", 2) == []
    assert t.snapshot(Snapshot(0, "lobby", "smoke", b""), "other", 2) == []
    [end] = t.detection(frigate(0.8, active=False), 3, 3)
    assert end.data["snapshot"] == "new2"


def test_axis_person_and_motion_ends_are_held() -> None:
    t = tracker({"format": "axis"}, info_clear_delay=2.0)
    [start] = t.detection(axis("motion", True), 0, 0)
    assert start.severity is Severity.INFO
    assert "score" not in start.data
    for i in range(1, 50):  # a flapping PIR: one occurrence
        assert t.detection(axis("motion", i % 2 == 0), i * 0.01, i) == []
    assert t.counters["debounced"] == 24
    assert t.next_deadline() == pytest.approx(0.49 + 2.0)
    assert t.tick(2.0, 2.0) == []
    [end] = t.tick(2.5, 9.0)
    assert (end.id, end.state, end.time) == (start.id, CLEARED, 49)  # when the end was said
    # tamper is trouble and ends at once
    [tamper] = t.detection(axis("tamper", True), 3, 3)
    assert tamper.severity is Severity.TROUBLE
    assert t.detection(axis("tamper", False), 4, 4)[0].state is CLEARED


def test_frigate_person_ends_at_once() -> None:
    t = tracker(info_clear_delay=2.0)
    t.detection(frigate(0.8, label="person"), 0, 0)
    [end] = t.detection(frigate(0.8, label="person", active=False), 1, 1)
    assert end.state is CLEARED


def test_generic_events_end_after_the_repeat_timeout() -> None:
    t = tracker({"format": "generic"}, repeat_timeout=5.0)
    [start] = t.detection(generic(), 0, 0)
    for i in range(1, 10):
        assert t.detection(generic(score=0.9), float(i), float(i)) == []
        assert t.tick(float(i) + 0.5, 0) == []
    assert t.next_deadline() == 14.0
    assert t.tick(13.9, 0) == []
    [end] = t.tick(14.0, 500.0)
    assert (end.id, end.state, end.data["reason"], end.time) == (
        start.id,
        CLEARED,
        "no repeat",
        500,
    )
    assert t.counters["repeat_timeouts"] == 1
    assert t.next_deadline() is None
    [again] = t.detection(generic(), 20, 20)  # a new occurrence; an explicit end ends it
    [end2] = t.detection(generic(active=False), 21, 21)
    assert (end2.id, end2.data["reason"]) == (again.id, "end")
    assert again.id != start.id


def test_frigate_offline_and_back() -> None:
    t = tracker({"format": "frigate", "cameras": ["lobby", "stairs"]})
    [fire] = t.detection(frigate(0.9), 0, 0)
    down = t.availability(Availability(0, False), 1)
    assert [(e.kind, e.data["camera"], e.data["reason"]) for e in down] == [
        (EventKind.CAMERA_OFFLINE, "lobby", "offline"),
        (EventKind.CAMERA_OFFLINE, "stairs", "offline"),
    ]
    assert all(e.severity is Severity.TROUBLE for e in down)
    assert t.availability(Availability(0, False), 2) == []  # the same occurrences
    up = t.availability(Availability(0, True), 3)
    assert [(e.id, e.state) for e in up[:2]] == [(down[0].id, CLEARED), (down[1].id, CLEARED)]
    assert (up[2].id, up[2].state, up[2].data["reason"]) == (fire.id, CLEARED, "camera-restarted")
    assert t.availability(Availability(0, True), 4) == []  # a retained online: nothing
    assert t.counters["restarted"] == 1


def test_frigate_offline_without_an_allow_list() -> None:
    t = tracker()
    [nvr] = t.availability(Availability(0, False), 0)  # no camera known: the NVR itself
    assert nvr.data["camera"] == "frigate"
    t2 = tracker()
    t2.snapshot(Snapshot(0, "hall", "smoke", b""), "d", 0)
    t2.detection(frigate(0.9, camera="lobby"), 0, 0)
    assert [e.data["camera"] for e in t2.availability(Availability(0, False), 1)] == [
        "hall",
        "lobby",
    ]


def test_silence_timeout() -> None:
    t = tracker({"format": "axis", "cameras": ["dock"], "silence_timeout": 60})
    t.start(0.0)
    assert t.next_deadline() == 60.0
    assert t.tick(59.0, 0) == []
    [off] = t.tick(60.0, 7.0)
    assert (off.kind, off.data["reason"], off.data["seconds"]) == (
        EventKind.CAMERA_OFFLINE,
        "silent",
        60,
    )
    assert t.tick(200.0, 8.0) == []
    back, motion = t.detection(axis("motion", True), 201.0, 9.0)
    assert (back.id, back.state, back.data["reason"]) == (off.id, CLEARED, "heard")
    assert motion.kind == EventKind.MOTION


def test_memory_is_bounded() -> None:
    t = tracker({"format": "generic"})
    for i in range(MAX_TRACKED + 5):
        t.detection(replace(generic(), ref=f"c{i}:smoke", camera=f"c{i}"), 0, 0)
    assert len(t.active) == MAX_TRACKED
    assert t.counters["evicted"] == 5
    for i in range(MAX_TRACKED + 5):
        t.snapshot(Snapshot(0, f"c{i}", "fire", b""), str(i), 0)
    assert len(t._snapshots) == MAX_TRACKED


def test_blob_store_is_lru_and_bounded() -> None:
    store = BlobStore(max_items=2, max_bytes=10)
    a, b = store.put(b"aaaa"), store.put(b"bbbb")
    assert store.get(a) == b"aaaa"  # a is now the most recent
    c = store.put(b"cccc")
    assert store.get(b) is None
    assert (store.get(a), store.get(c)) == (b"aaaa", b"cccc")
    store.put(b"dddddddd")  # 8 bytes: a and c must go to stay within 10
    assert len(store) == 1
    assert store.size == 8
    assert store.put(b"x" * 11) and len(store) == 1  # too big to keep, digest still given
    none = BlobStore(max_items=0, max_bytes=0)
    assert none.get(none.put(b"z")) is None


def test_rate_limited_log(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    log = RateLimitedLog(logging.getLogger("t.rate"), per=10.0, burst=2, clock=lambda: now[0])
    caplog.set_level(logging.WARNING, logger="t.rate")
    written = [log.warning("bad", "bad %d", i) for i in range(100)]
    assert written.count(True) == 2
    assert log.warning("other", "other") is True  # keys have their own budget
    now[0] = 10.0
    log.warning("bad", "bad again")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "bad 0",
        "bad 1",
        "other",
        "98 more bad messages suppressed in 10 s",
        "bad again",
    ]
