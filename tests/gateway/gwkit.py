"""Shared pieces for gateway tests: a test driver, a config writer, a verifying subscriber."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt

from edgesdk import driver
from edgesdk.batch import Batch
from edgesdk.config import Field
from edgesdk.model import Event, Item, RawItem, Reading
from edgesdk.verify import StreamTracker, Verifier
from tests.pki import TestPKI
from tests.support import free_port


class ScriptConfig(driver.DriverConfig):
    rate: float = Field(default=0.0, ge=0, description="readings per second (0: none)")
    points: int = Field(default=10, ge=1)


class ScriptDriver(driver.Driver[ScriptConfig]):
    """A real in-process driver a test feeds: readings at a rate, events on demand."""

    name = "test-script"
    config_type = ScriptConfig

    def __init__(self, config: ScriptConfig, *, instance: str | None = None) -> None:
        super().__init__(config, instance=instance)
        self.queue: asyncio.Queue[RawItem] = asyncio.Queue()
        self.confirmed: list[Item] = []

    async def _open(self) -> None:
        pass

    async def _close(self) -> None:
        pass

    async def _stream(self) -> AsyncIterator[RawItem]:
        i = 0
        period = 1.0 / self.config.rate if self.config.rate else None
        while True:
            if period is None:
                yield await self.queue.get()
                continue
            try:
                async with asyncio.timeout(period):
                    yield await self.queue.get()
            except TimeoutError:
                i += 1
                yield Reading(
                    self.instance, f"p{i % self.config.points:03d}/value", float(i), "Cel"
                )

    async def _confirm(self, item: Item) -> None:
        self.confirmed.append(item)

    def emit(self, item: RawItem) -> None:
        self.queue.put_nowait(item)


def write_config(
    tmp: Path,
    pki: TestPKI,
    broker_port: int,
    *,
    gw: str = "gw1",
    extra: str = "",
    devices: str = "",
    data_dir: Path | None = None,
    health_port: int | None = None,
) -> Path:
    sign_crt, sign_key, _ = pki.signing(gw)
    tls_crt, tls_key = pki.client(gw)
    cfg = tmp / f"{gw}.toml"
    cfg.write_text(
        f"""
[gateway]
site = "{pki.site}"
id = "{gw}"
data_dir = "{data_dir or tmp / ("data-" + gw)}"
signing_key = "{sign_key}"
signing_cert = "{sign_crt}"

[uplink]
url = "mqtts://127.0.0.1:{broker_port}"
ca = "{pki.ca}"
cert = "{tls_crt}"
key = "{tls_key}"
reconnect_min = 0.1
reconnect_max = 1.0

[lanes]
telemetry_max_records = 50
telemetry_max_age = 0.2

[health]
listen = "127.0.0.1:{health_port or free_port()}"
{extra}
{devices}
"""
    )
    return cfg


@dataclass
class Received:
    topic: str
    batch: Batch


@dataclass
class Subscriber:
    """A verifying subscriber with its own client certificate and a persistent session."""

    pki: TestPKI
    port: int
    verifier: Verifier
    name: str = "consumer"
    received: list[Received] = field(default_factory=list)
    invalid: list[tuple[str, str]] = field(default_factory=list)
    tracker: StreamTracker = field(default_factory=StreamTracker)
    anomalies: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)

    def _tls(self) -> ssl.SSLContext:
        crt, key = (
            self.pki.client(self.name)
            if not (self.pki.dir / f"{self.name}-tls.crt").exists()
            else (self.pki.dir / f"{self.name}-tls.crt", self.pki.dir / f"{self.name}-tls.key")
        )
        ctx = ssl.create_default_context(cafile=str(self.pki.ca))
        ctx.load_cert_chain(str(crt), str(key))
        return ctx

    async def _run(self) -> None:
        tls = self._tls()
        while True:
            try:
                async with aiomqtt.Client(
                    "127.0.0.1",
                    self.port,
                    identifier=self.name,
                    tls_context=tls,
                    protocol=aiomqtt.ProtocolVersion.V311,
                    clean_session=False,
                ) as client:
                    await client.subscribe("edge/v1/#", qos=1)
                    self.subscribed.set()
                    async for msg in client.messages:
                        self._handle(str(msg.topic), bytes(msg.payload))  # type: ignore[arg-type]
            except aiomqtt.MqttError as exc:
                self.errors.append(repr(exc))
                await asyncio.sleep(0.2)

    def _handle(self, topic: str, payload: bytes) -> None:
        try:
            b = self.verifier.verify(payload)
        except Exception as exc:
            self.invalid.append((topic, repr(exc)))
            return
        self.received.append(Received(topic, b))
        if b.stream != "state":
            self.anomalies.extend(self.tracker.observe(b))

    async def __aenter__(self) -> Subscriber:
        self._task = asyncio.create_task(self._run())
        try:
            async with asyncio.timeout(10):
                await self.subscribed.wait()
        except TimeoutError:
            await self.__aexit__()
            raise TimeoutError(f"subscriber could not subscribe: {self.errors[-3:]}") from None
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def events(self, kind: str | None = None) -> list[Event]:
        return [e for r in self.received for e in r.batch.events if kind is None or e.kind == kind]

    def readings(self) -> list[Reading]:
        return [x for r in self.received for x in r.batch.readings]

    async def wait_for(self, pred: Any, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not pred():
                await asyncio.sleep(0.05)
