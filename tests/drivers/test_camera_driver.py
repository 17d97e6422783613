"""The camera-mqtt driver against the camera emulator on real brokers (mosquitto, amqtt)."""

from __future__ import annotations

import asyncio
import hashlib

from edgesdk.model import EventKind, EventState, Severity
from emulators.broker import EmbeddedBroker
from tests.drivers.cases_camera_mqtt import Broker, Feed, broker, emulator, open_driver

__all__ = ["broker"]  # the fixture, imported for pytest

ACTIVE, CLEARED = EventState.ACTIVE, EventState.CLEARED
FRIGATE_ONLY = {"groups": [{"format": "frigate", "cameras": ["lobby", "stairwell_b"]}]}


async def test_smoke_in_lobby_smoke_then_fire_with_snapshot(broker: Broker) -> None:
    async with (
        open_driver(broker.url) as drv,
        Feed(drv) as feed,
        emulator(broker.url, "smoke-in-lobby", time_scale=10) as emu,
    ):
        await feed.until(
            lambda: (
                len({e.id for e in feed.events(EventKind.CAMERA_FIRE)}) == 1
                and any("snapshot" in e.data for e in feed.events(EventKind.CAMERA_FIRE))
            ),
            within=15,
            what="camera-fire with a snapshot",
        )
        await asyncio.sleep(0.5)  # the scenario keeps updating: nothing floods the stream
        journal = list(emu.journal)
    smoke = feed.events(EventKind.CAMERA_SMOKE)
    fire = feed.events(EventKind.CAMERA_FIRE)
    assert {e.id for e in smoke} == {smoke[0].id}  # one occurrence each, updates share ids
    assert {e.id for e in fire} == {fire[0].id}
    assert feed.items.index(smoke[0]) < feed.items.index(fire[0])  # smoke first
    for ev in (*smoke, *fire):
        assert ev.severity is Severity.PREALARM
        assert ev.state is ACTIVE
        assert ev.source == "cams"
        assert ev.data["camera"] == "lobby"
        assert ev.data["zones"] == ["lobby"]
        assert ev.data["format"] == "frigate"
        assert 0.5 <= ev.data["score"] <= 1.0
    assert smoke[0].data["label"] == "smoke"
    assert fire[0].data["label"] == "fire"
    # start + first snapshot + at most one update per threshold (0.7, 0.9): no flood
    assert 2 <= len(smoke) <= 4
    assert 2 <= len(fire) <= 4
    assert drv.health.counters["updates_suppressed"] > 0
    # the snapshot is the JPEG the camera published, served by its digest
    sent = {
        hashlib.sha256(m.payload).hexdigest(): m.payload
        for m in journal
        if m.topic in ("frigate/lobby/smoke/snapshot", "frigate/lobby/fire/snapshot")
    }
    for ev in (*smoke, *fire):
        digest = ev.data.get("snapshot")
        if digest is None:
            continue
        blob = drv.get_blob(digest)
        assert blob is not None
        assert hashlib.sha256(blob).hexdigest() == digest
        assert blob == sent[digest]
        assert blob[:2] == b"\xff\xd8"
        assert blob[-2:] == b"\xff\xd9"
    assert any("snapshot" in e.data for e in smoke)
    assert drv.get_blob("0" * 64) is None
    counters = drv.health.counters
    for bad in ("malformed", "wrong_type", "oversize", "bad_snapshot", "dropped"):
        assert counters[bad] == 0, bad


async def test_ends_clear_the_same_occurrence(broker: Broker) -> None:
    async with (
        open_driver(broker.url, info_clear_delay=0.0) as drv,
        Feed(drv) as feed,
        emulator(broker.url) as emu,
    ):
        await emu.detect("lobby", "fire", 0.8, ["lobby", "stairs"])
        await emu.detect("loading_dock", "smoke", 0.75)
        await emu.detect("loading_dock", "tamper", 1.0)
        await emu.detect("stairwell_b", "person", 0.9)
        await feed.until(lambda: len(feed.events(state=ACTIVE)) >= 4, what="four starts")
        await emu.end("lobby", "fire")
        await emu.end("loading_dock", "smoke")
        await emu.end("loading_dock", "tamper")
        await emu.end("stairwell_b", "person")
        await feed.until(lambda: len(feed.events(state=CLEARED)) == 4, what="four ends")
    for kind, severity, camera in [
        (EventKind.CAMERA_FIRE, Severity.PREALARM, "lobby"),
        (EventKind.CAMERA_SMOKE, Severity.PREALARM, "ACCC8E012345"),
        (EventKind.TAMPER, Severity.TROUBLE, "ACCC8E012345"),
        (EventKind.PERSON, Severity.INFO, "stairwell_b"),
    ]:
        events = feed.events(kind)
        assert {e.id for e in events} == {events[0].id}, kind
        assert events[0].state is ACTIVE
        assert events[-1].state is CLEARED
        assert events[-1].data["reason"] == "end"
        assert all(e.severity is severity and e.data["camera"] == camera for e in events)
    fire = feed.events(EventKind.CAMERA_FIRE)
    assert fire[0].data["zones"] == ["lobby", "stairs"]
    assert feed.events(EventKind.CAMERA_SMOKE)[0].data["score"] == 0.75  # Axis "0.75"
    assert feed.events(EventKind.CAMERA_SMOKE)[0].data["format"] == "axis"


async def test_generic_camera_that_never_ends_is_cleared_after_the_repeat_timeout(
    broker: Broker,
) -> None:
    # repeats every 0.1 s (1 s of scenario time at time_scale 10), timeout 1 s
    async with (
        open_driver(broker.url, repeat_timeout=1.0) as drv,
        Feed(drv) as feed,
        emulator(broker.url, time_scale=10) as emu,
    ):
        await emu.detect("plant_room", "smoke", 0.85)
        await feed.until(lambda: len(feed.events()) == 1, what="generic smoke")
        await asyncio.sleep(2.0)  # repeats keep it active well past the timeout
        assert len(feed.events()) == 1
        assert drv.health.counters["messages_generic"] >= 5
        await emu.end("plant_room", "smoke")  # the camera just stops repeating
        await feed.until(lambda: len(feed.events(state=CLEARED)) == 1, what="timeout end")
        start, end = feed.events()  # before the emulator leaves (Frigate then says offline)
    assert start.kind == EventKind.CAMERA_SMOKE
    assert start.data["format"] == "generic"
    assert start.data["camera"] == "plant_room"
    assert start.data["score"] == 0.85
    assert end.id == start.id
    assert end.data["reason"] == "no repeat"
    assert drv.health.counters["repeat_timeouts"] == 1


async def test_frigate_power_cut_is_camera_offline_until_online(broker: Broker) -> None:
    async with (
        open_driver(broker.url, **FRIGATE_ONLY) as drv,
        Feed(drv) as feed,
        emulator(broker.url) as emu,
    ):
        await emu.detect("lobby", "smoke", 0.9)
        await feed.until(lambda: len(feed.events(EventKind.CAMERA_SMOKE)) >= 1)
        await emu.go_offline("lobby")  # unclean: the broker publishes the last will
        await feed.until(
            lambda: len(feed.events(EventKind.CAMERA_OFFLINE)) == 2, what="camera-offline"
        )
        await asyncio.sleep(0.2)
        # the smoke seen before the power cut is not declared gone
        assert feed.events(EventKind.CAMERA_SMOKE, state=CLEARED) == []
        await emu.go_online("lobby")
        await feed.until(
            lambda: len(feed.events(EventKind.CAMERA_OFFLINE, state=CLEARED)) == 2,
            what="cleared",
        )
        await feed.until(lambda: len(feed.events(EventKind.CAMERA_SMOKE, state=CLEARED)) == 1)
        await asyncio.sleep(0.2)
        items = list(feed.items)  # before the emulator leaves (Frigate then says offline)
        assert drv.health.counters["camera_offline"] == 2
    feed.items = items
    offline = feed.events(EventKind.CAMERA_OFFLINE, state=ACTIVE)
    cleared = feed.events(EventKind.CAMERA_OFFLINE, state=CLEARED)
    assert sorted(e.data["camera"] for e in offline) == ["lobby", "stairwell_b"]
    assert all(e.severity is Severity.TROUBLE and e.data["reason"] == "offline" for e in offline)
    assert {e.id for e in cleared} == {e.id for e in offline}
    assert all(e.data["reason"] == "online" for e in cleared)
    [restarted] = feed.events(EventKind.CAMERA_SMOKE, state=CLEARED)
    assert restarted.data["reason"] == "camera-restarted"


async def test_scores_labels_and_allow_list(broker: Broker) -> None:
    options = {
        "groups": [
            {"format": "frigate", "cameras": ["lobby"], "zones": {"lobby": ["hall"]}},
            {"format": "axis", "names": {"ACCC8E012345": "dock"}, "zones": {"dock": ["yard"]}},
        ],
    }
    async with (
        open_driver(broker.url, **options) as drv,
        Feed(drv) as feed,
        emulator(broker.url) as emu,
    ):
        await emu.detect("lobby", "fire", 0.3, [])  # below min_score 0.5: nothing
        await emu.detect("lobby", "car", 0.9)  # not a label the driver reports
        await emu.detect("stairwell_b", "fire", 0.9)  # not in the allow-list
        await emu.detect("plant_room", "fire", 0.9)  # no generic group configured
        await emu.detect("loading_dock", "motion", 1.0)
        await feed.until(lambda: len(feed.events()) >= 1, what="Axis motion")
        await emu.detect("lobby", "fire", 0.6, [])  # now it counts: a start, configured zone
        await feed.until(lambda: len(feed.events(EventKind.CAMERA_FIRE)) >= 1)
        await asyncio.sleep(0.3)
        assert len(feed.events()) == 3  # motion, fire, fire with its snapshot
    motion = feed.events(EventKind.MOTION)[0]
    assert motion.severity is Severity.INFO
    assert motion.data["camera"] == "dock"
    assert motion.data["zones"] == ["yard"]
    assert motion.data["ref"] == "ACCC8E012345:motion"
    fire = feed.events(EventKind.CAMERA_FIRE)[0]
    assert fire.data["zones"] == ["lobby"]  # Frigate's own zones win over the configured
    assert fire.data["score"] == 0.6
    counters = drv.health.counters
    assert counters["below_min_score"] == 1
    assert counters["ignored"] >= 3  # car, stairwell_b event and snapshot
    assert counters["messages_generic"] == 0


async def test_silent_generic_camera_is_offline_until_heard() -> None:
    group = {"format": "generic", "cameras": ["plant_room"], "silence_timeout": 1.0}
    async with (
        EmbeddedBroker() as embedded,
        open_driver(embedded.url, groups=[group]) as drv,
        Feed(drv) as feed,
        emulator(embedded.url) as emu,
    ):
        await feed.until(lambda: len(feed.events()) == 1, what="silent camera")
        [off] = feed.events()
        assert (off.kind, off.severity) == (EventKind.CAMERA_OFFLINE, Severity.TROUBLE)
        assert off.data == {
            "camera": "plant_room",
            "format": "generic",
            "reason": "silent",
            "seconds": 1.0,
        }
        await emu.detect("plant_room", "motion", 1.0)
        await feed.until(lambda: len(feed.events()) == 3, what="heard again")
        back, motion = feed.events()[1:]
        assert (back.id, back.state, back.data["reason"]) == (off.id, CLEARED, "heard")
        assert motion.kind == EventKind.MOTION
