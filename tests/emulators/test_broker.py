"""The embedded amqtt broker: real clients (aiomqtt and mosquitto's), real sockets."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time

import aiomqtt
import pytest
from aiomqtt.exceptions import MqttConnectError

from edgesdk.errors import ConfigError, ConnectionLostError
from emulators.broker import MQTT_VERSIONS, EmbeddedBroker
from tests.emulators.test_camera_spy import Spy, mosquitto_pub


def _cut(client: aiomqtt.Client) -> None:
    """End the TCP stream without an MQTT DISCONNECT, as a power loss does."""
    sock = client._client.socket()
    assert isinstance(sock, socket.socket)
    sock.shutdown(socket.SHUT_RDWR)


async def _next(client: aiomqtt.Client) -> aiomqtt.Message:
    """The next message, within 5 s."""

    async def first() -> aiomqtt.Message:
        async for msg in client.messages:
            return msg
        raise AssertionError("message stream ended")

    return await asyncio.wait_for(first(), 5.0)


async def test_port_zero_gives_distinct_free_loopback_ports() -> None:
    async with EmbeddedBroker() as a, EmbeddedBroker(port=0) as b:
        assert a.port != b.port
        assert a.port > 0
        assert b.port > 0
        assert a.url == f"mqtt://127.0.0.1:{a.port}"
        assert a.running
        with socket.create_connection(("127.0.0.1", a.port), timeout=2):
            pass
    assert not a.running


def test_refuses_non_loopback_and_bad_port() -> None:
    with pytest.raises(ConfigError, match="loopback"):
        EmbeddedBroker(host="0.0.0.0")
    with pytest.raises(ConfigError, match="loopback"):
        EmbeddedBroker(host="example.org")
    with pytest.raises(ConfigError, match="port"):
        EmbeddedBroker(port=70000)


async def test_port_in_use_is_a_typed_error() -> None:
    async with EmbeddedBroker() as first:
        with pytest.raises(ConnectionLostError, match="cannot listen"):
            async with EmbeddedBroker(port=first.port):
                pass


@pytest.mark.parametrize("qos", [0, 1, 2])
async def test_publish_subscribe_each_qos(qos: int) -> None:
    async with (
        EmbeddedBroker() as broker,
        aiomqtt.Client("127.0.0.1", broker.port, identifier="sub") as sub,
        aiomqtt.Client("127.0.0.1", broker.port, identifier="pub") as pub,
    ):
        await sub.subscribe("site/+/alarm", qos=qos)
        await pub.publish("site/lobby/alarm", b"fire", qos=qos)
        msg = await _next(sub)
    assert str(msg.topic) == "site/lobby/alarm"
    assert msg.payload == b"fire"
    assert msg.qos == qos


async def test_qos1_many_messages_arrive_in_order() -> None:
    async with (
        EmbeddedBroker() as broker,
        aiomqtt.Client("127.0.0.1", broker.port) as sub,
        aiomqtt.Client("127.0.0.1", broker.port) as pub,
    ):
        await sub.subscribe("n", qos=1)
        for i in range(200):
            await pub.publish("n", str(i).encode(), qos=1)
        got = [int((await _next(sub)).payload) for _ in range(200)]
    assert got == list(range(200))


async def test_retained_message_reaches_a_late_subscriber() -> None:
    async with EmbeddedBroker() as broker:
        await mosquitto_pub(broker.port, "frigate/available", b"online", "-r", "-q", "1")
        async with Spy(broker.port, "frigate/available") as spy:
            got = await spy.wait_for(lambda m: len(m) == 1)
        assert got[0].payload == b"online"
        assert got[0].retain is True
        # an empty retained publish clears it
        await mosquitto_pub(broker.port, "frigate/available", b"", "-r")
        async with Spy(broker.port, "frigate/available") as late:
            await asyncio.sleep(0.3)
        assert late.messages() == []


async def test_last_will_on_unclean_disconnect_not_on_clean() -> None:
    async with EmbeddedBroker() as broker, Spy(broker.port, "dev/+/status") as spy:
        will = aiomqtt.Will("dev/a/status", b"offline", qos=1, retain=True)
        clean = aiomqtt.Client("127.0.0.1", broker.port, identifier="b", will=
                               aiomqtt.Will("dev/b/status", b"offline", qos=1))  # fmt: skip
        async with clean:
            pass  # DISCONNECT sent: no will
        dying = aiomqtt.Client("127.0.0.1", broker.port, identifier="a", will=will)
        await dying.__aenter__()
        # cut the stream without DISCONNECT, as a power loss does
        _cut(dying)
        with pytest.raises(aiomqtt.MqttError):
            await asyncio.wait_for(dying._disconnected, 5)
        await dying.__aexit__(None, None, None)
        got = await spy.wait_for(lambda m: len(m) >= 1)
        await asyncio.sleep(0.3)
        assert [(g.topic, g.payload) for g in spy.messages()] == [("dev/a/status", b"offline")]
        async with Spy(broker.port, "dev/a/status") as late:
            retained = await late.wait_for(lambda m: len(m) == 1)
        assert retained[0].retain is True
        assert retained[0].payload == b"offline"
    assert got


async def test_large_payload_passes() -> None:
    big = os.urandom(300 * 1024)
    async with EmbeddedBroker() as broker, Spy(broker.port, "big") as spy:
        await mosquitto_pub(broker.port, "big", big, "-q", "1")
        got = await spy.wait_for(lambda m: len(m) == 1, within=10)
    assert got[0].payload == big


async def test_mqtt5_client_is_refused_311_only() -> None:
    """amqtt 0.12 implements MQTT 3.1.1 only; if this starts failing, update the docs."""
    assert MQTT_VERSIONS == ("3.1.1",)
    async with EmbeddedBroker() as broker:
        v5 = aiomqtt.Client("127.0.0.1", broker.port, protocol=aiomqtt.ProtocolVersion.V5)
        with pytest.raises(MqttConnectError):
            async with v5:
                pass
        v31 = aiomqtt.Client(
            "127.0.0.1", broker.port, protocol=aiomqtt.ProtocolVersion.V31, timeout=2
        )
        with pytest.raises(aiomqtt.MqttError):
            async with v31:
                pass
        async with aiomqtt.Client("127.0.0.1", broker.port) as v311:  # default 3.1.1
            await v311.publish("ok", b"1", qos=1)


async def test_stop_with_clients_connected_leaves_nothing_behind(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    before = asyncio.all_tasks()
    broker = EmbeddedBroker()
    await broker.start()
    clients = [aiomqtt.Client("127.0.0.1", broker.port, identifier=f"c{i}") for i in range(3)]
    for c in clients:
        await c.__aenter__()
    await clients[0].subscribe("#", qos=1)
    await clients[1].publish("x", b"y", qos=1)
    # one client vanishes abruptly, the others are still connected when the broker stops
    _cut(clients[2])
    await asyncio.sleep(0.2)
    assert broker.connections >= 2
    await broker.stop()
    await broker.stop()  # idempotent
    assert broker.connections == 0
    for c in clients:  # the clients notice the broker went away
        with pytest.raises(aiomqtt.MqttError):
            await asyncio.wait_for(c._disconnected, 5)
        await c.__aexit__(None, None, None)
    await asyncio.sleep(0.1)
    left = {t for t in asyncio.all_tasks() - before if not t.done()}
    assert left == set(), left
    noisy = [r for r in caplog.records if r.name.startswith(("amqtt", "emulators.broker"))]
    assert noisy == [], [r.getMessage() for r in noisy]
    assert not any(r.exc_info for r in caplog.records)


def test_cli_prints_json_and_exits_0_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", "from edgesdk.cli import main; main()",
         "emulate", "broker", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        info = json.loads(line)
        assert info["host"] == "127.0.0.1"
        assert info["url"] == f"mqtt://127.0.0.1:{info['port']}"
        with socket.create_connection(("127.0.0.1", info["port"]), timeout=2):
            pass
        proc.send_signal(signal.SIGTERM)
        start = time.monotonic()
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - start < 15
        assert "Traceback" not in (proc.stderr.read() if proc.stderr else "")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_cli_refuses_non_loopback() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "from edgesdk.cli import main; main()",
         "emulate", "broker", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.returncode == 2
    assert "loopback" in out.stderr


async def test_retained_only_for_own_subscriptions_and_once() -> None:
    """Guards our fix of amqtt 0.12.1, which sends a connecting client the retained
    messages matching *other* clients' subscriptions."""
    async with (
        EmbeddedBroker() as broker,
        Spy(broker.port, "dev/+/status") as other,
    ):
        await mosquitto_pub(broker.port, "dev/a/status", b"offline", "-r", "-q", "1")
        await other.wait_for(lambda m: len(m) == 1)
        async with Spy(broker.port, "unrelated/topic") as stranger:
            await asyncio.sleep(0.3)
        assert stranger.messages() == []
        async with Spy(broker.port, "dev/a/status") as owner:
            await owner.wait_for(lambda m: len(m) >= 1)
            await asyncio.sleep(0.3)
        assert [g.payload for g in owner.messages()] == [b"offline"]


async def test_persistent_session_gets_qos1_sent_while_away() -> None:
    async with EmbeddedBroker() as broker:
        port = broker.port
        async with aiomqtt.Client("127.0.0.1", port, identifier="cloud", clean_session=False) as c:
            await c.subscribe("uplink", qos=1)
        await mosquitto_pub(port, "uplink", b"batch-1", "-q", "1")
        async with aiomqtt.Client("127.0.0.1", port, identifier="cloud", clean_session=False) as c:
            msg = await _next(c)
    assert msg.payload == b"batch-1"
    assert msg.qos == 1
