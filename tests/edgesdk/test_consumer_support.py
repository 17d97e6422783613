"""Helpers shared by the consumer and ``edgectl verify`` tests (no tests in here).

Certificates are built with cryptography against a :class:`~tests.pki.TestPKI` site CA, so
every defect the trust checks look for can be produced on purpose; batches are sealed with
the real :func:`edgesdk.batch.seal` into proper hash chains.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ssl
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from edgesdk import batch
from edgesdk.batch import BatchHeader, LostRange
from edgesdk.consumer import Consumer, Outcome
from edgesdk.model import Event, EventState, Reading, Severity
from tests.pki import TestPKI

T0 = time.time()
SIGNING_KU = x509.KeyUsage(True, False, False, False, False, False, False, False, False)


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def issue(
    pki: TestPKI,
    key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey,
    *,
    uris: Sequence[str] = ("urn:edge:hq:gw1",),
    key_usage: x509.KeyUsage | None = SIGNING_KU,
    ca: bool = False,
    not_before: dt.datetime | None = None,
    days: float = 30,
    subject: x509.Name | None = None,
    issuer: x509.Name | None = None,
) -> x509.Certificate:
    """A signing certificate issued by ``pki``'s CA, with every knob a defect needs."""
    start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    b = (
        x509.CertificateBuilder()
        .subject_name(subject or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "signer")]))
        .issuer_name(issuer or pki.ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if key_usage is not None:
        b = b.add_extension(key_usage, critical=True)
    if uris:
        b = b.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(u) for u in uris]),
            critical=False,
        )
    return b.sign(pki.ca_key, hashes.SHA256())


@dataclass
class Chain:
    """Seals consecutive batches of one stream (seq, prev and boot kept right)."""

    key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
    site: str = "hq"
    gw: str = "gw1"
    stream: str = "telemetry"
    seq: int = 0
    prev: bytes = batch.ZERO_DIGEST
    boot: int = 1
    sealed: list[bytes] = field(default_factory=list)

    def next(
        self,
        *,
        readings: Sequence[Reading] = (),
        events: Sequence[Event] = (),
        lost: Sequence[LostRange] = (),
        extra: dict[str, Any] | None = None,
        t: float | None = None,
        key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | None = None,
        gw: str | None = None,
    ) -> bytes:
        self.seq += 1
        header = BatchHeader(
            self.site,
            gw or self.gw,
            self.stream,
            self.seq,
            self.prev,
            self.boot,
            T0 + self.seq if t is None else t,
        )
        message = batch.seal(
            header, key=key or self.key, readings=readings, events=events, lost=lost, extra=extra
        )
        self.prev = batch.digest(message)
        self.sealed.append(message)
        return message

    def skip(self, n: int) -> None:
        """Pretend ``n`` batches were sealed and never sent."""
        for _ in range(n):
            self.seq += 1
            self.prev = bytes([self.seq % 256]) * 32


def reading(i: int) -> Reading:
    return Reading("panel1", f"zone{i % 4}/temp", 20.0 + i, "Cel", T0 + i)


def fire(source: str = "panel1") -> Event:
    return Event("fire", Severity.FIRE, EventState.ACTIVE, source, data={"zone": 2, "point": 5})


def birth_extra(
    cert: x509.Certificate | bytes | None, previous: Sequence[x509.Certificate] = ()
) -> dict[str, Any]:
    body: dict[str, Any] = {"version": "test", "boot": 1, "devices": [], "active": []}
    if cert is not None:
        body["cert"] = cert if isinstance(cert, bytes) else der(cert)
    body["previous_certs"] = [der(c) for c in previous]
    return {"birth": body}


def client_tls(pki: TestPKI, name: str) -> ssl.SSLContext:
    crt, key = pki.client(name)
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    ctx.load_cert_chain(str(crt), str(key))
    return ctx


async def publish(
    port: int,
    items: Sequence[tuple[str, bytes]],
    *,
    tls: ssl.SSLContext | None = None,
    retain: bool = False,
) -> None:
    """Publish raw messages (QoS 1) as an outside party would."""
    async with aiomqtt.Client("127.0.0.1", port, tls_context=tls, timeout=10) as client:
        for topic, payload in items:
            await client.publish(topic, payload, qos=1, retain=retain, timeout=10)


@dataclass
class Collector:
    """Runs ``async for`` over a consumer in a task, keeping every outcome."""

    consumer: Consumer
    outcomes: list[Outcome] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Collector:
        await self.consumer.__aenter__()
        self.task = asyncio.create_task(self._run())
        async with asyncio.timeout(10):
            await self.consumer.subscribed.wait()
        return self

    async def _run(self) -> None:
        async for outcome in self.consumer:
            self.outcomes.append(outcome)

    async def __aexit__(self, *exc: object) -> None:
        self.consumer.stop()
        if self.task is not None:
            async with asyncio.timeout(10):
                await self.task
        await self.consumer.aclose()

    async def wait_for(self, pred: Callable[[], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not pred():
                await asyncio.sleep(0.02)

    def of(self, kind: type) -> list[Any]:
        return [o for o in self.outcomes if isinstance(o, kind)]


@dataclass
class RunningGateway:
    gateway: Any
    driver: Any
    delivered: list[Any]

    def data_keys(self) -> set[tuple[str, int]]:
        """(stream, seq) of every data batch the broker acknowledged."""
        return {(s.stream, s.seq) for s in self.delivered}


@contextlib.asynccontextmanager
async def running_gateway(
    tmp: Path, pki: TestPKI, port: int, *, rate: float = 100.0
) -> AsyncIterator[RunningGateway]:
    """The real in-process gateway (ScriptDriver readings at ``rate``) publishing to the
    TLS broker on ``port``; ``delivered`` collects each data batch once the broker has it."""
    from gateway import config as gwconfig
    from gateway.app import Gateway
    from tests.gateway.gwkit import ScriptConfig, ScriptDriver, write_config

    cfg = gwconfig.load(write_config(tmp, pki, port))
    drv = ScriptDriver(ScriptConfig(rate=rate), instance="panel1")
    gw = Gateway(cfg, drivers={"panel1": drv})
    running = RunningGateway(gw, drv, [])
    gw.uplink.on_delivered = running.delivered.append
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))
    try:
        async with asyncio.timeout(10):
            while not gw.uplink.stats.connected:
                await asyncio.sleep(0.02)
        yield running
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
