"""An independent MQTT subscriber for the camera and broker tests: mosquitto_sub.

The emulators publish with aiomqtt (paho); reading with a different implementation
(libmosquitto's mosquitto_sub) keeps the tests from agreeing with a shared bug. Payloads
come out hex-encoded (``%x``) so JPEG bytes and 300 KiB events survive intact.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from emulators.broker import EmbeddedBroker
from tests.support import Mosquitto

__all__ = ["Got", "Spy", "broker_port", "mosquitto_pub"]

PROBE = "edgesdk-probe/spy"


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed (apt-get install mosquitto-clients)")
    return path


@dataclass(frozen=True)
class Got:
    topic: str
    retain: bool
    qos: int
    payload: bytes

    def json(self) -> Any:
        return json.loads(self.payload)


async def mosquitto_pub(port: int, topic: str, payload: bytes, *extra: str) -> None:
    """Publish with the mosquitto client (bounded: 5 s); an empty payload is sent with -n."""
    source = ("-s",) if payload else ("-n",)
    proc = await asyncio.create_subprocess_exec(
        _need("mosquitto_pub"), "-h", "127.0.0.1", "-p", str(port), "-V", "mqttv311",
        "-t", topic, *source, *extra,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await asyncio.wait_for(proc.communicate(payload), 5)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


class Spy:
    """``mosquitto_sub`` on ``filters``; ready (subscribed) once ``async with`` returns."""

    def __init__(self, port: int, *filters: str, qos: int = 1) -> None:
        self.port = port
        self.filters = filters
        self.qos = qos
        self.received: list[Got] = []
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def __aenter__(self) -> Spy:
        args = [_need("mosquitto_sub"), "-h", "127.0.0.1", "-p", str(self.port)]
        args += ["-V", "mqttv311", "-q", str(self.qos), "-F", "%t\t%r\t%q\t%x"]
        for f in (*self.filters, PROBE):
            args += ["-t", f]
        self._proc = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            limit=4 * 1024 * 1024,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read())
        deadline = time.monotonic() + 10
        while not any(g.topic == PROBE for g in self.received):  # bounded by the deadline
            if time.monotonic() > deadline:
                await self.__aexit__()
                raise TimeoutError("mosquitto_sub never subscribed")
            await mosquitto_pub(self.port, PROBE, b"probe")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 0.3)
        return self

    async def _read(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        while line := await self._proc.stdout.readline():
            topic, retain, qos, hexed = line.decode().rstrip("\n").split("\t")
            self.received.append(Got(topic, retain == "1", int(qos), bytes.fromhex(hexed)))
            self._changed.set()

    async def __aexit__(self, *exc: object) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.returncode is None:
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)

    def messages(self, topic: str | None = None) -> list[Got]:
        """Everything received (probes excluded), optionally on one topic."""
        return [
            g for g in self.received if g.topic != PROBE and (topic is None or g.topic == topic)
        ]

    async def wait_for(
        self, check: Callable[[list[Got]], bool], within: float = 5.0, topic: str | None = None
    ) -> list[Got]:
        """Wait (bounded) until ``check(messages)`` holds; fail the test otherwise."""
        deadline = time.monotonic() + within
        while not check(self.messages(topic)):
            left = deadline - time.monotonic()
            if left <= 0:
                got = [(g.topic, g.payload[:80]) for g in self.messages(topic)]
                pytest.fail(f"condition not met within {within}s; got {got}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.2))
        return self.messages(topic)


@pytest.fixture(params=["mosquitto", "amqtt"])
async def broker_port(request: pytest.FixtureRequest) -> AsyncIterator[int]:
    """A real broker on a free loopback port: mosquitto, then the embedded amqtt."""
    if request.param == "mosquitto":
        with Mosquitto() as m:
            yield m.port
    else:
        async with EmbeddedBroker() as b:
            yield b.port


async def test_spy_sees_what_mosquitto_pub_sends(broker_port: int) -> None:
    payload = bytes(range(256)) * 3  # binary, with newlines and NULs
    async with Spy(broker_port, "spy/#") as spy:
        await mosquitto_pub(broker_port, "spy/binary", payload)
        got = await spy.wait_for(lambda m: len(m) == 1)
    assert got[0].topic == "spy/binary"
    assert got[0].payload == payload
    assert got[0].retain is False


def test_mosquitto_clients_present() -> None:
    out = subprocess.run(
        [_need("mosquitto_sub"), "--help"], capture_output=True, text=True, timeout=5
    )
    assert "mosquitto_sub" in out.stdout + out.stderr
