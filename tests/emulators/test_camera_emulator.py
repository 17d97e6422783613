"""The camera emulator on real brokers (mosquitto and the embedded amqtt), read by
mosquitto_sub: what a gateway would really receive."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time

import pytest

from edgesdk.errors import ConnectionLostError
from emulators.cameras import CameraEmulator, Fault, Message
from tests.emulators.test_camera_formats import EVENT_ID, FRIGATE_FIELDS, decode_jpeg
from tests.emulators.test_camera_spy import Got, Spy, broker_port
from tests.support import free_port

__all__ = ["broker_port"]  # the fixture, imported for pytest

AXIS = "ACCC8E012345/event/tns:onvif"
FIRE_SMOKE = f"{AXIS}/CameraApplicationPlatform/tns:axis/FireSmokeDetection/Camera1Profile1"


def _emu(port: int, scenario: str = "idle", **kw: object) -> CameraEmulator:
    return CameraEmulator(f"mqtt://127.0.0.1:{port}", scenario=scenario, seed=42, **kw)  # type: ignore[arg-type]


async def test_frigate_new_update_end_with_snapshot(broker_port: int) -> None:
    async with Spy(broker_port, "frigate/#") as spy, _emu(broker_port) as emu:
        eid = await emu.detect("lobby", "person", 0.72, ["lobby"])
        assert eid is not None
        assert EVENT_ID.match(eid)
        assert await emu.detect("lobby", "person", 0.88, ["lobby", "stairs"]) == eid
        assert await emu.end("lobby", "person") is True
        assert await emu.end("lobby", "person") is False  # nothing active any more
        events = await spy.wait_for(lambda m: len(m) == 3, topic="frigate/events")
    bodies = [e.json() for e in events]
    assert [b["type"] for b in bodies] == ["new", "update", "end"]
    assert all(not e.retain for e in events)
    new, update, end = bodies
    for body in bodies:
        assert set(body["before"]) >= FRIGATE_FIELDS
        assert set(body["after"]) >= FRIGATE_FIELDS
        assert body["after"]["id"] == eid
        assert body["after"]["camera"] == "lobby"
        assert body["after"]["label"] == "person"
    assert new["before"] == new["after"]
    assert update["before"] == new["after"]
    assert end["before"] == update["after"]
    assert update["after"]["score"] == 0.88
    assert update["after"]["top_score"] == 0.88
    assert update["after"]["current_zones"] == ["lobby", "stairs"]
    assert update["after"]["entered_zones"] == ["lobby", "stairs"]
    assert update["after"]["false_positive"] is False
    assert new["after"]["end_time"] is None
    assert end["after"]["end_time"] >= end["after"]["start_time"]
    assert new["after"]["has_snapshot"] is True
    assert str(eid).startswith(f"{new['after']['start_time']:.6f}")
    # snapshots: retained raw JPEG, there for a subscriber that comes later
    async with Spy(broker_port, "frigate/+/+/snapshot") as late:
        [snap] = await late.wait_for(lambda m: len(m) == 1)
    assert snap.topic == "frigate/lobby/person/snapshot"
    assert snap.retain is True
    assert snap.payload[:2] == b"\xff\xd8"
    assert snap.payload[-2:] == b"\xff\xd9"
    info = decode_jpeg(snap.payload)
    assert 16 <= info["width"] <= 4096
    assert 16 <= info["height"] <= 4096
    assert emu.counters.events["frigate:new"] == 1
    assert emu.counters.events["frigate:end"] == 1
    assert emu.counters.events["frigate:snapshot"] == 2  # new, then a better score


async def test_available_retained_and_last_will_on_power_cut(broker_port: int) -> None:
    async with Spy(broker_port, "frigate/available") as spy:
        async with _emu(broker_port) as emu:
            await spy.wait_for(lambda m: [g.payload for g in m] == [b"online"])
            await emu.go_offline("lobby")  # the NVR's stream is cut: the broker sends the will
            await spy.wait_for(lambda m: [g.payload for g in m] == [b"online", b"offline"])
            assert not emu.online("stairwell_b")  # same NVR
            assert await emu.detect("lobby", "fire", 0.9) is None  # offline: nothing sent
            assert emu.counters.suppressed == 1
            async with Spy(broker_port, "frigate/available") as late:
                [kept] = await late.wait_for(lambda m: len(m) == 1)
            assert kept.payload == b"offline"
            assert kept.retain is True
            await emu.go_online("lobby")
            await spy.wait_for(lambda m: [g.payload for g in m][-1:] == [b"online"])
        # clean shutdown: Frigate says offline itself
        got = await spy.wait_for(lambda m: len(m) == 4)
    assert [g.payload for g in got] == [b"online", b"offline", b"online", b"offline"]


async def test_axis_event_bridge_payloads(broker_port: int) -> None:
    async with Spy(broker_port, "ACCC8E012345/event/#") as spy, _emu(broker_port) as emu:
        await emu.detect("loading_dock", "smoke", 0.81)
        await emu.detect("loading_dock", "smoke", 0.9)  # stateful: no new message
        await emu.detect("loading_dock", "tamper", 1.0)
        await emu.detect("loading_dock", "motion", 1.0)
        await emu.end("loading_dock", "smoke")
        got = await spy.wait_for(lambda m: len(m) == 4)
    assert [g.topic for g in got] == [
        FIRE_SMOKE,
        f"{AXIS}/VideoSource/tns:axis/Tampering",
        f"{AXIS}/Device/tns:axis/Sensor/PIR",
        FIRE_SMOKE,
    ]
    smoke, tamper, pir, cleared = (g.json() for g in got)
    assert (
        smoke["topic"] == "onvif:CameraApplicationPlatform/axis:FireSmokeDetection/Camera1Profile1"
    )
    assert smoke["message"]["data"] == {"active": "1", "class": "smoke", "score": "0.81"}
    assert cleared["message"]["data"]["active"] == "0"
    assert tamper["message"] == {"source": {"channel": "1"}, "key": {}, "data": {"tampering": "1"}}
    assert pir["topic"] == "onvif:Device/axis:Sensor/PIR"
    assert pir["message"] == {"source": {"sensor": "0"}, "key": {}, "data": {"state": "1"}}
    assert isinstance(smoke["timestamp"], int)
    assert abs(smoke["timestamp"] / 1000 - time.time()) < 60


async def test_generic_camera_repeats_every_second_and_never_ends(broker_port: int) -> None:
    async with (
        Spy(broker_port, "cameras/#") as spy,
        _emu(broker_port, time_scale=10) as emu,  # one scenario second = 0.1 s
    ):
        await emu.detect("plant_room", "smoke", 0.87)
        got = await spy.wait_for(lambda m: len(m) >= 6)
        await emu.detect("plant_room", "smoke", 0.91)  # the repeats carry the new score
        await spy.wait_for(lambda m: m[-1].json()["score"] == 0.91)
        assert await emu.end("plant_room", "smoke") is True
        await asyncio.sleep(0.2)
        settled = len(spy.messages())
        await asyncio.sleep(0.5)  # five scenario seconds: no more repeats, and no clear
        assert len(spy.messages()) == settled
    got = spy.messages()
    bodies = [g.json() for g in got]
    assert {g.topic for g in got} == {"cameras/plant_room/event"}
    assert all(b["state"] == "active" for b in bodies)
    assert all(b["event"] == "smoke" and b["camera"] == "plant_room" for b in bodies)
    times = [b["time"] for b in bodies]
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(times)]
    assert gaps[:5] == [1.0] * 5  # scenario time, independent of machine load


@pytest.mark.parametrize("camera", ["lobby", "loading_dock", "plant_room"])
async def test_each_fault_is_observable(broker_port: int, camera: str) -> None:
    async with Spy(broker_port, "#") as spy, _emu(broker_port, flood_count=60) as emu:
        for fault in Fault:
            await emu.inject(fault, camera)

        def events_only(m: list[Got]) -> list[Got]:
            return [g for g in m if g.topic != "frigate/available"]

        await spy.wait_for(lambda m: len(events_only(m)) >= 63, within=10)
        await asyncio.sleep(0.2)  # and nothing more than that
    events = events_only(spy.messages())
    assert len(events) == 63
    prefix = {"lobby": "frigate/events", "loading_dock": "ACCC8E012345/event/"}.get(
        camera, "cameras/plant_room/event"
    )
    assert all(m.topic.startswith(prefix) for m in events)  # on the camera's own topics
    malformed, wrong, big, *flood = events
    with pytest.raises(json.JSONDecodeError):
        json.loads(malformed.payload)
    body = wrong.json()
    if camera == "lobby":
        assert "after" not in body
        assert isinstance(body["before"]["score"], str)
    elif camera == "loading_dock":
        assert isinstance(body["timestamp"], str)
    else:
        assert isinstance(body["score"], str)
    assert len(big.payload) > 256 * 1024
    assert isinstance(big.json(), dict)
    assert len(flood) == 60
    assert all(isinstance(m.json(), dict) for m in flood)
    assert emu.counters.faults == {f.value: 1 for f in Fault}


async def test_fault_switched_on_at_run_time(broker_port: int) -> None:
    async with (
        Spy(broker_port, "#") as spy,
        _emu(broker_port, time_scale=20, fault_interval=1.0) as emu,
    ):
        emu.enable_fault("malformed-json")
        assert emu.faults == {Fault.MALFORMED_JSON}

        def broken(m: list[Got]) -> bool:
            return sum(1 for g in m if not _parses(g.payload)) >= 3

        await spy.wait_for(broken)
        emu.disable_fault(Fault.MALFORMED_JSON)
        await asyncio.sleep(0.1)
        count = emu.counters.faults["malformed-json"]
        await asyncio.sleep(0.3)  # six intervals: no more
        assert emu.counters.faults["malformed-json"] == count


def _parses(payload: bytes) -> bool:
    try:
        json.loads(payload)
    except ValueError:
        return False
    return True


async def test_smoke_in_lobby_scenario(broker_port: int) -> None:
    async with (
        Spy(broker_port, "frigate/events") as spy,
        _emu(broker_port, "smoke-in-lobby", time_scale=20),
    ):
        got = await spy.wait_for(lambda m: len(m) >= 13, within=10)
    bodies = [g.json() for g in got[:13]]
    smoke = [b for b in bodies if b["after"]["label"] == "smoke"]
    fire = [b for b in bodies if b["after"]["label"] == "fire"]
    assert [b["type"] for b in smoke] == ["new"] + ["update"] * 6
    assert [b["type"] for b in fire] == ["new"] + ["update"] * 5
    assert bodies.index(fire[0]) == 7  # smoke first, then fire
    scores = [b["after"]["score"] for b in smoke]
    assert scores == sorted(scores)
    assert scores[-1] - scores[0] > 0.3
    assert all(b["after"]["camera"] == "lobby" for b in bodies)
    assert all(b["after"]["current_zones"] == ["lobby"] for b in bodies)
    assert all(b["type"] != "end" for b in bodies)


async def test_camera_offline_scenario(broker_port: int) -> None:
    async with Spy(broker_port, "#") as spy, _emu(broker_port, "camera-offline", time_scale=10):
        await spy.wait_for(lambda m: any(g.payload == b"offline" for g in m), within=10)
        await asyncio.sleep(0.5)  # five scenario seconds after the cut
        after_cut = len(spy.messages())
        await asyncio.sleep(0.5)
        assert len(spy.messages()) == after_cut  # everyone is silent
    topics = [g.topic for g in spy.messages()]
    cut = topics.index("frigate/available", 1)
    assert spy.messages()[cut].payload == b"offline"
    assert "cameras/plant_room/event" in topics[:cut]
    assert f"{AXIS}/Device/tns:axis/Sensor/PIR" in topics[:cut]
    assert "frigate/events" in topics[:cut]
    # nothing but (at most) the generic camera's last scheduled repeat after the cut
    assert set(topics[cut + 1 :]) <= {"cameras/plant_room/event"}
    assert len(topics[cut + 1 :]) <= 1


async def test_quiet_scenario_has_people_coming_and_going(broker_port: int) -> None:
    async with Spy(broker_port, "#") as spy, _emu(broker_port, "quiet", time_scale=40) as emu:
        await spy.wait_for(lambda m: emu.counters.events["frigate:end"] >= 1, within=15)
    assert emu.counters.messages >= 4
    assert sum(emu.counters.by_topic.values()) == emu.counters.messages
    labels = {g.json()["after"]["label"] for g in spy.messages("frigate/events")}
    assert labels == {"person"}


_TIME = re.compile(rb"\d{13}|\d{10}(\.\d+)?")


def _normalised(journal: list[Message]) -> list[tuple[str, bytes]]:
    return [(m.topic, _TIME.sub(b"T", m.payload)) for m in journal]


@pytest.mark.parametrize("scenario", ["quiet", "smoke-in-lobby"])
async def test_same_seed_same_sequence(broker_port: int, scenario: str) -> None:
    async def run(seed: int) -> list[tuple[str, bytes]]:
        emu = CameraEmulator(
            f"mqtt://127.0.0.1:{broker_port}", scenario=scenario, seed=seed, time_scale=200
        )
        async with emu:
            deadline = time.monotonic() + 10
            while len(emu.journal) < 25 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        return _normalised(list(emu.journal))[:25]

    async with Spy(broker_port, "frigate/events", "cameras/#", "ACCC8E012345/#") as spy:
        first = await run(5)
    second, other = await run(5), await run(6)
    assert len(first) == 25
    assert first == second
    assert first != other
    # and the journal is what went over the wire
    wire = [(g.topic, _TIME.sub(b"T", g.payload)) for g in spy.messages()]
    assert [m for m in first if m[0] in {t for t, _ in wire}][:10] == wire[:10]


async def test_unreachable_broker_is_a_typed_error() -> None:
    emu = CameraEmulator(f"mqtt://127.0.0.1:{free_port()}", scenario="idle")
    with pytest.raises(ConnectionLostError, match="cannot connect"):
        async with emu:
            pass
