"""camera-mqtt under faults: bad payloads, floods, a full queue, bad snapshots (emulator
faults on real brokers), with exact counters, and recovery."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Callable

import aiomqtt
import pytest

from drivers.camera_mqtt import CameraMqttDriver
from edgesdk.model import EventKind, EventState
from tests.drivers.cases_camera_mqtt import (
    Broker,
    Feed,
    broker,
    emulator,
    eventually,
    open_driver,
)

__all__ = ["broker"]  # the fixture, imported for pytest

ACTIVE, CLEARED = EventState.ACTIVE, EventState.CLEARED
REJECTS = ("malformed", "wrong_type", "oversize", "bad_snapshot", "snapshot_oversize")
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) + b"\xff\xd9"


@contextlib.asynccontextmanager
async def publisher(port: int) -> AsyncIterator[aiomqtt.Client]:
    """A plain MQTT 3.1.1 client, for payloads the emulator does not make."""
    async with aiomqtt.Client("127.0.0.1", port, protocol=aiomqtt.ProtocolVersion.V311) as c:
        yield c


def _counter_is(drv: CameraMqttDriver, name: str, value: int) -> Callable[[], bool]:
    return lambda: drv.health.counters[name] == value


def rejects(drv: CameraMqttDriver) -> dict[str, int]:
    return {name: drv.health.counters[name] for name in REJECTS}


@pytest.mark.parametrize(
    ("fault", "counter"),
    [("malformed-json", "malformed"), ("wrong-types", "wrong_type"), ("oversize", "oversize")],
)
async def test_bad_payloads_are_counted_and_never_reach_the_stream(
    broker: Broker, fault: str, counter: str
) -> None:
    async with open_driver(broker.url) as drv, Feed(drv) as feed, emulator(broker.url) as emu:
        await eventually(lambda: drv.health.counters["received"] >= 1)  # retained "online"
        for n, camera in enumerate(["lobby", "loading_dock", "plant_room"], start=1):
            assert await emu.inject(fault, camera) == 1
            await eventually(_counter_is(drv, counter, n), what=f"{counter} {camera}")
            await asyncio.sleep(0.1)
            expected = dict.fromkeys(REJECTS, 0)
            expected[counter] = n
            assert rejects(drv) == expected
            assert feed.items == []
            assert camera in str(drv.health.last_error) or "/event" in str(drv.health.last_error)
        # a good message after the bad ones still works
        await emu.detect("lobby", "fire", 0.9)
        await feed.until(lambda: len(feed.events(EventKind.CAMERA_FIRE)) >= 1)
        assert drv.health.counters["internal_errors"] == 0
        assert drv.health.counters["errors"] == 3


async def test_flood_is_one_occurrence_per_camera(broker: Broker) -> None:
    options = {"info_clear_delay": 1.0, "repeat_timeout": 1.0}  # >> 2 ms between messages
    async with (
        open_driver(broker.url, **options) as drv,
        Feed(drv) as feed,
        emulator(broker.url) as emu,
    ):
        await eventually(lambda: drv.health.counters["received"] >= 1)
        base = drv.health.counters["received"]
        for n, camera in enumerate(["lobby", "loading_dock", "plant_room"], start=1):
            assert await emu.inject("flood", camera) == 200
            await eventually(_counter_is(drv, "received", base + 200 * n), what=camera)
        await feed.until(lambda: len(feed.events(state=CLEARED)) == 2, what="held ends")
        await asyncio.sleep(0.5)  # nothing more comes
        events = feed.events()
    person = [e for e in events if e.kind == EventKind.PERSON]
    motion = [e for e in events if e.kind == EventKind.MOTION]
    assert [(e.data["camera"], e.state) for e in person] == [
        ("lobby", ACTIVE),  # Frigate: new + 199 updates of one object: one event
        ("plant_room", ACTIVE),  # generic: 200 repeats, then silence: one occurrence
        ("plant_room", CLEARED),
    ]
    assert [e.state for e in motion] == [ACTIVE, CLEARED]  # Axis PIR toggled 100 times
    assert motion[0].id == motion[1].id
    assert len(events) == 5
    counters = drv.health.counters
    assert counters["debounced"] == 99
    assert counters["dropped"] == 0
    assert rejects(drv) == dict.fromkeys(REJECTS, 0)
    assert counters["messages_frigate"] >= 200
    assert counters["messages_axis"] == 200
    assert counters["messages_generic"] == 200


async def test_a_full_queue_drops_and_counts(broker: Broker) -> None:
    async with emulator(broker.url) as emu, open_driver(broker.url, queue_size=10) as drv:
        await eventually(lambda: drv.health.counters["received"] >= 1)  # retained "online"
        base = drv.health.counters["received"]
        await emu.inject("flood", "plant_room")  # nobody reads the stream meanwhile
        await eventually(lambda: drv.health.counters["received"] == base + 200)
        counters = drv.health.counters
        assert counters["dropped"] == counters["received"] - 10
        async with Feed(drv) as feed:
            await feed.until(lambda: drv.health.counters["messages_generic"] == 10 - base)
            await feed.until(lambda: len(feed.events(EventKind.PERSON)) == 1)
        assert drv.health.counters["dropped"] == 190 + base


async def test_snapshots_bad_oversize_and_lru(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    options = {"snapshot_max_bytes": 1024, "snapshot_cache": 2}
    async with open_driver(broker.url, **options) as drv, Feed(drv) as feed:
        async with publisher(broker.port) as pub:
            await pub.publish("frigate/lobby/fire/snapshot", b"GIF89a not a jpeg")
            await pub.publish("frigate/lobby/fire/snapshot", JPEG[:-2] + bytes(2000) + JPEG[-2:])
            await pub.publish("frigate/lobby/fire/snapshot", b"")  # a retained one deleted
            await eventually(lambda: drv.health.counters["ignored"] == 1)  # the last one
            assert drv.health.counters["received"] == 3
            assert drv.health.counters["bad_snapshot"] == 1
            assert drv.health.counters["snapshot_oversize"] == 1
            digests = []
            for i in range(3):
                jpeg = JPEG[:-2] + bytes([i]) + JPEG[-2:]
                digests.append(hashlib.sha256(jpeg).hexdigest())
                await pub.publish(f"frigate/cam{i}/smoke/snapshot", jpeg)
            await eventually(lambda: drv.health.counters["snapshots"] == 3)
        assert drv.get_blob(digests[0]) is None  # least recently used, gone
        blob = drv.get_blob(digests[2])
        assert blob is not None
        assert hashlib.sha256(blob).hexdigest() == digests[2]
        # a flood of junk is counted, but logs only a few lines
        caplog.set_level(logging.WARNING, logger="drivers.camera_mqtt.driver")
        async with publisher(broker.port) as pub:
            for _ in range(40):
                await pub.publish("frigate/events", b"{not json")
        await eventually(lambda: drv.health.counters["malformed"] == 40)
        lines = [
            r
            for r in caplog.records
            if r.name == "drivers.camera_mqtt.driver" and "malformed" in r.getMessage()
        ]
        assert 1 <= len(lines) <= 3  # the first few of 40, in one 10 s window
        assert "frigate/events" in lines[0].getMessage()
        assert feed.items == []
