"""The camera-mqtt conformance case, and the harness the camera driver tests share.

The twin is :class:`~emulators.cameras.CameraEmulator` publishing to a real broker; the
conformance case uses the embedded amqtt broker, the driver tests run on both it and
mosquitto (:func:`broker`). A restart of the twin stops the emulator (Frigate announces
``offline``) and starts a new one on the same broker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from drivers.camera_mqtt import CameraMqttDriver
from edgesdk import driver
from edgesdk.driver import DriverState
from emulators.broker import EmbeddedBroker
from emulators.cameras import CameraEmulator
from tests.drivers.conformance import Twin
from tests.drivers.feed import Feed
from tests.support import Mosquitto

__all__ = [
    "CASE",
    "FAST",
    "Broker",
    "Feed",
    "broker",
    "emulator",
    "eventually",
    "open_driver",
    "state",
]

FAST: dict[str, Any] = {"reconnect_min": 0.05, "reconnect_max": 0.3, "connect_timeout": 5.0}
"""Driver options that keep reconnection quick in tests."""


async def eventually(check: Callable[[], bool], *, within: float = 10.0, what: str = "") -> None:
    """Wait until ``check()`` holds, polling; fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"{what or 'condition'} not met within {within}s")
        await asyncio.sleep(0.02)


def state(drv: CameraMqttDriver) -> DriverState:
    """The driver's state now (a call, so a type checker does not pin it between awaits)."""
    return drv.state


class Broker:
    """A real broker on a fixed loopback port that can be stopped and started again."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._mosquitto: Mosquitto | None = Mosquitto() if kind == "mosquitto" else None
        self._embedded: EmbeddedBroker | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    async def start(self) -> None:
        if self._mosquitto is not None:
            await asyncio.to_thread(self._mosquitto.start)
            self.port = self._mosquitto.port
            return
        embedded = EmbeddedBroker(port=self.port)
        await embedded.start()
        self._embedded = embedded
        self.port = embedded.port

    async def stop(self) -> None:
        if self._mosquitto is not None:
            await asyncio.to_thread(self._mosquitto.stop)
            return
        embedded, self._embedded = self._embedded, None
        if embedded is not None:
            await embedded.stop()

    async def close(self) -> None:
        await self.stop()
        if self._mosquitto is not None:
            self._mosquitto.close()


@pytest.fixture(params=["mosquitto", "amqtt"])
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[Broker]:
    """A real broker on a free loopback port: mosquitto, then the embedded amqtt."""
    b = Broker(request.param)
    await b.start()
    try:
        yield b
    finally:
        await b.close()


def emulator(url: str, scenario: str = "idle", **kw: Any) -> CameraEmulator:
    """The default cameras (two Frigate, one Axis, one generic) on the broker at ``url``."""
    return CameraEmulator(url, scenario=scenario, seed=7, **kw)


@contextlib.asynccontextmanager
async def open_driver(url: str, **options: Any) -> AsyncIterator[CameraMqttDriver]:
    """The driver built through the registry (as the gateway builds it), opened."""
    opts = {"broker": url, **FAST, **options}
    drv = driver.create("camera-mqtt", opts, instance="cams")
    assert isinstance(drv, CameraMqttDriver)
    async with drv:
        yield drv


class _CameraCase:
    driver = "camera-mqtt"
    bad_options: list[dict[str, Any]] = [
        {},
        {"broker": "http://127.0.0.1:1883"},
        {"broker": "mqtt://"},
        {"broker": "mqtt://user:pw@127.0.0.1"},
        {"broker": "mqtt://127.0.0.1", "protocol": "4"},
        {"broker": "mqtt://127.0.0.1", "groups": []},
        {"broker": "mqtt://127.0.0.1", "groups": [{"format": "onvif"}]},
        {"broker": "mqtt://127.0.0.1", "groups": [{"format": "frigate", "prefix": "a/#"}]},
        {"broker": "mqtt://127.0.0.1", "groups": [{"format": "generic", "prefix": ""}]},
        {"broker": "mqtt://127.0.0.1", "groups": [{"format": "frigate"}, {"format": "frigate"}]},
        {"broker": "mqtt://127.0.0.1", "min_score": 1.5},
        {"broker": "mqtt://127.0.0.1", "score_thresholds": [0.0]},
        {"broker": "mqtt://127.0.0.1", "ca": "/etc/ssl/ca.pem"},
        {"broker": "mqtts://127.0.0.1", "cert": "/x.crt"},
        {"broker": "mqtt://127.0.0.1", "reconnect_min": 5.0, "reconnect_max": 1.0},
        {"broker": "mqtt://127.0.0.1", "max_payload_bytes": 10},
        {"broker": "mqtt://127.0.0.1", "client_id": "has space"},
        {"broker": "mqtt://127.0.0.1", "unknown": 1},
    ]

    @contextlib.asynccontextmanager
    async def twin(self) -> AsyncIterator[Twin]:
        async with EmbeddedBroker() as embedded:
            url = embedded.url

            def make() -> CameraEmulator:
                return CameraEmulator(url, scenario="idle", seed=3)

            current = make()
            await current.__aenter__()

            async def restart() -> None:
                nonlocal current
                await current.__aexit__(None, None, None)
                await asyncio.sleep(0.2)  # the cameras are away for a moment
                current = make()
                await current.__aenter__()

            async def stimulate() -> None:
                # a Frigate fire (event, then its snapshot: an update) and a generic person
                await current.detect("lobby", "fire", 0.9)
                await current.detect("plant_room", "person", 0.8)

            try:
                yield Twin(
                    options={"broker": url, **FAST},
                    restart=restart,
                    stimulate=stimulate,
                    bad_command=("no-such-point", 1),
                    extra={"emulator": lambda: current},
                )
            finally:
                await current.__aexit__(None, None, None)


CASE = _CameraCase()
