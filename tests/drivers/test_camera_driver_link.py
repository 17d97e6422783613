"""camera-mqtt and its broker: restarts, persistent sessions, MQTT 5, TLS, refusals."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import aiomqtt
import pytest

from edgesdk.driver import DriverState
from edgesdk.errors import ConfigError
from edgesdk.model import EventKind, EventState, Severity
from emulators.broker import EmbeddedBroker
from emulators.cameras import formats
from tests.drivers.cases_camera_mqtt import (
    Broker,
    Feed,
    broker,
    emulator,
    eventually,
    open_driver,
    state,
)
from tests.pki import TestPKI
from tests.support import Mosquitto, free_port

__all__ = ["broker"]  # the fixture, imported for pytest

ACTIVE, CLEARED = EventState.ACTIVE, EventState.CLEARED
OFFLINE = EventKind.DEVICE_OFFLINE


async def test_broker_restart_raises_and_clears_device_offline(broker: Broker) -> None:
    async with open_driver(broker.url) as drv, Feed(drv) as feed:
        assert state(drv) is DriverState.ONLINE
        await broker.stop()
        await feed.until(lambda: len(feed.events(OFFLINE)) == 1, what="device-offline")
        [down] = feed.events(OFFLINE)
        assert down.state is ACTIVE
        assert down.severity is Severity.TROUBLE
        assert down.data["broker"] == broker.url
        assert down.data["error"]
        assert state(drv) is DriverState.OFFLINE
        await asyncio.sleep(0.5)  # retrying with backoff: still one occurrence
        assert len(feed.events(OFFLINE)) == 1
        await broker.start()  # same port
        await feed.until(lambda: len(feed.events(OFFLINE)) == 2, what="cleared", within=15)
        up = feed.events(OFFLINE)[1]
        assert up.state is CLEARED
        assert up.id == down.id
        assert state(drv) is DriverState.ONLINE
        counters = drv.health.counters
        assert counters["disconnects"] == 1
        assert counters["reconnects"] == 1
        assert counters["broker_offline"] == 1
        assert counters["connect_attempts"] >= 2
        # re-subscribed: events flow again
        async with emulator(broker.url) as emu:
            await emu.detect("lobby", "smoke", 0.8)
            await feed.until(lambda: len(feed.events(EventKind.CAMERA_SMOKE)) >= 1)


async def _away_and_back(url: str, **extra: object) -> None:
    """A QoS 1 event published while the driver is closed arrives when it reopens."""
    options = {"client_id": "cams-persistent", "repeat_timeout": 0.5, **extra}
    async with open_driver(url, **options):
        pass  # the broker now holds a persistent session with our subscriptions
    async with emulator(url) as emu:
        await emu.detect("plant_room", "smoke", 0.9)  # generic: QoS 1
        await emu.end("plant_room", "smoke")  # no repeat follows
        async with open_driver(url, **options) as drv, Feed(drv) as feed:
            await feed.until(lambda: len(feed.events()) == 2, what="queued smoke and its end")
            start, end = feed.events()
            assert drv.health.counters["messages_generic"] == 1
    assert start.kind == EventKind.CAMERA_SMOKE
    assert start.data["camera"] == "plant_room"
    assert end.id == start.id
    assert end.data["reason"] == "no repeat"


async def test_qos1_messages_sent_while_away_are_delivered(broker: Broker) -> None:
    await _away_and_back(broker.url)


async def test_mqtt5_session_and_events_on_mosquitto(mosquitto: Mosquitto) -> None:
    await _away_and_back(mosquitto.url, protocol="5", session_expiry=60)
    async with (
        open_driver(mosquitto.url, protocol="5") as drv,
        Feed(drv) as feed,
        emulator(mosquitto.url) as emu,
    ):
        assert state(drv) is DriverState.ONLINE
        await emu.detect("loading_dock", "fire", 0.95)
        await feed.until(lambda: len(feed.events(EventKind.CAMERA_FIRE)) == 1)


async def test_refused_connection_is_device_offline() -> None:
    async with EmbeddedBroker() as embedded:  # amqtt answers MQTT 5 with CONNACK 0x01
        options = {"protocol": "5", "connect_timeout": 1.0}
        async with open_driver(embedded.url, **options) as drv, Feed(drv) as feed:
            assert state(drv) is DriverState.OFFLINE
            await feed.until(lambda: len(feed.events(OFFLINE)) == 1)
            assert feed.events(OFFLINE)[0].data["error"]
            await asyncio.sleep(0.3)
            assert drv.health.counters["connect_attempts"] >= 2
            assert state(drv) is DriverState.OFFLINE
            assert "ConnectionLostError" in str(drv.health.last_error)


async def test_broker_down_at_start_then_up() -> None:
    port = free_port()
    with Mosquitto(port=port) as later:
        later.stop()
        async with open_driver(f"mqtt://127.0.0.1:{port}") as drv, Feed(drv) as feed:
            assert state(drv) is DriverState.OFFLINE
            await feed.until(lambda: len(feed.events(OFFLINE)) == 1)
            await asyncio.to_thread(later.start)
            await feed.until(lambda: len(feed.events(OFFLINE)) == 2, within=15)
            assert [e.state for e in feed.events(OFFLINE)] == [ACTIVE, CLEARED]
            assert state(drv) is DriverState.ONLINE


def _client_tls(pki: TestPKI, name: str) -> tuple[str, str]:
    cert, key = pki.client(name)
    return str(cert), str(key)


async def test_mqtts_with_client_certificates(tmp_path: Path) -> None:
    pki = TestPKI(tmp_path / "pki")
    cert, key = _client_tls(pki, "gateway")
    with Mosquitto(tls=pki.broker()) as tls_broker:
        options = {"ca": str(pki.ca), "cert": cert, "key": key}
        async with open_driver(tls_broker.url, **options) as drv, Feed(drv) as feed:
            assert state(drv) is DriverState.ONLINE
            nvr_cert, nvr_key = _client_tls(pki, "nvr")
            context = ssl.create_default_context(cafile=str(pki.ca))
            context.load_cert_chain(nvr_cert, nvr_key)
            obj = formats.FrigateObject("1.0-abcdef", "lobby", "fire", 1.0, 1.0, 0.9, [0, 0, 9, 9])
            msg = formats.frigate_event("frigate", "new", obj.as_dict(), obj.as_dict())
            async with aiomqtt.Client(
                "127.0.0.1", tls_broker.port, tls_context=context, identifier="nvr"
            ) as nvr:
                await nvr.publish(msg.topic, msg.payload)
            await feed.until(lambda: len(feed.events(EventKind.CAMERA_FIRE)) == 1)
            assert feed.events()[0].data["ref"] == "1.0-abcdef"
        # a client without a certificate is turned away: device-offline, not a crash
        no_cert = {"ca": str(pki.ca), "connect_timeout": 1.0}
        async with open_driver(tls_broker.url, **no_cert) as drv, Feed(drv) as feed:
            await feed.until(lambda: len(feed.events(OFFLINE)) == 1)
            assert state(drv) is DriverState.OFFLINE


async def test_unreadable_tls_files_are_a_config_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(ConfigError, match="TLS"):
        async with open_driver("mqtts://127.0.0.1:1", ca=missing):
            pass


async def test_close_while_reconnecting_is_prompt(broker: Broker) -> None:
    options = {"reconnect_min": 0.01, "reconnect_max": 0.02}
    async with open_driver(broker.url, **options) as drv, Feed(drv) as feed:
        await broker.stop()
        await feed.until(lambda: len(feed.events(OFFLINE)) == 1)
        await eventually(lambda: drv.health.counters["connect_attempts"] >= 5)
    assert state(drv) is DriverState.CLOSED
