"""The real gateway against a real mosquitto with TLS and required client certificates."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from edgesdk.model import Event, EventState, Severity
from edgesdk.verify import Verifier
from gateway import config as gwconfig
from gateway.app import Gateway
from tests.gateway.gwkit import ScriptConfig, ScriptDriver, Subscriber, write_config
from tests.pki import TestPKI
from tests.support import Mosquitto


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as resp:
        body: bytes = resp.read()
    return body


def fire(source: str = "panel1") -> Event:
    return Event("fire", Severity.FIRE, EventState.ACTIVE, source, data={"zone": 2, "point": 5})


def _gateway(
    tmp_path: Path, pki: TestPKI, broker: Mosquitto, *, rate: float
) -> tuple[Gateway, ScriptDriver, Verifier]:
    """A gateway with one scripted panel (``rate`` readings/s) uplinked to ``broker``,
    and a verifier for its signing certificate."""
    cfg = gwconfig.load(write_config(tmp_path, pki, broker.port))
    drv = ScriptDriver(ScriptConfig(rate=rate), instance="panel1")
    gw = Gateway(cfg, drivers={"panel1": drv})
    return gw, drv, Verifier.from_cert_files([pki.dir / "gw1-sign.crt"])


async def _outage(
    gw: Gateway, stop: asyncio.Event, sub: Subscriber, broker: Mosquitto, seconds: float
) -> tuple[asyncio.Task[None], int]:
    """Run ``gw`` until ``sub`` has 50 readings, then stop ``broker`` for ``seconds`` while
    telemetry piles up in the store; the running task and the telemetry batches waiting."""
    task = asyncio.create_task(gw.run(stop))
    await sub.wait_for(lambda: len(sub.readings()) >= 50)
    broker.stop()
    await asyncio.sleep(seconds)
    return task, (await gw.status())["lanes"]["telemetry"]["batches"]


async def test_signed_batches_reach_a_verifying_subscriber(
    tmp_path: Path, pki: TestPKI, tls_broker: Mosquitto
) -> None:
    gw, drv, verifier = _gateway(tmp_path, pki, tls_broker, rate=200)
    stop = asyncio.Event()
    async with Subscriber(pki, tls_broker.port, verifier) as sub:
        task = asyncio.create_task(gw.run(stop))
        await sub.wait_for(lambda: len(sub.readings()) >= 100)
        drv.emit(fire())
        await sub.wait_for(lambda: sub.events("fire"))
        # the device is told once the alarm is durably stored (after its early publish)
        await sub.wait_for(
            lambda: any(isinstance(i, Event) and i.kind == "fire" for i in drv.confirmed)
        )
        # health endpoints
        url = f"http://{gw.cfg.health.listen}"
        status = json.loads(await asyncio.to_thread(_get, f"{url}/healthz"))
        metrics = (await asyncio.to_thread(_get, f"{url}/metrics")).decode()
        stop.set()
        await asyncio.wait_for(task, 5)
        await asyncio.sleep(0.3)
    assert sub.invalid == []
    assert status["healthy"] and status["uplink"]["connected"]
    assert status["drivers"]["panel1"]["state"] == "online"
    assert "edgesdk_signatures_total" in metrics and "edgesdk_uplink_connected 1.0" in metrics
    (fire_ev,) = sub.events("fire")
    assert fire_ev.severity is Severity.FIRE and fire_ev.data["zone"] == 2
    alarm_batches = [r for r in sub.received if r.batch.stream == "alarm"]
    assert alarm_batches[0].topic == "edge/v1/hq/gw1/alarm"
    # every stream's chain is intact
    assert list(sub.anomalies) == []
    assert sub.tracker.finish() == []
    values = [r.value for r in sub.readings()]
    assert values == sorted(values) and len(values) == len(set(values))
    # birth (retained, carrying the signing certificate) and a clean death
    states = [r.batch for r in sub.received if r.batch.stream == "state"]
    assert "birth" in states[0].extra and states[-1].extra["death"]["reason"] == "shutdown"
    signing_cert = x509.load_pem_x509_certificate((pki.dir / "gw1-sign.crt").read_bytes())
    assert states[0].extra["birth"]["cert"] == signing_cert.public_bytes(Encoding.DER)
    assert states[0].extra["birth"]["devices"] == [{"name": "panel1", "driver": "test-script"}]


async def test_alarm_is_first_after_broker_outage(
    tmp_path: Path, pki: TestPKI, tls_broker: Mosquitto
) -> None:
    gw, drv, verifier = _gateway(tmp_path, pki, tls_broker, rate=500)
    stop = asyncio.Event()
    async with Subscriber(pki, tls_broker.port, verifier) as sub:
        task, waiting = await _outage(gw, stop, sub, tls_broker, 2.0)
        drv.emit(fire())
        await asyncio.sleep(0.5)
        assert waiting > 5
        before = len(sub.received)
        tls_broker.start()
        await sub.wait_for(lambda: sub.events("fire"), timeout=15)
        await sub.wait_for(
            lambda: gw.uplink.stats.connected and gw.store.stats().batches["telemetry"] == 0,
            timeout=15,
        )
        stop.set()
        await asyncio.wait_for(task, 5)
        await asyncio.sleep(0.3)
    after = [r for r in sub.received[before:] if r.batch.stream != "state"]
    assert after[0].batch.stream == "alarm", [r.batch.stream for r in after[:5]]
    assert sub.invalid == []
    gaps = [a for a in sub.anomalies if type(a).__name__ in ("Gap", "BrokenChain")]
    assert gaps == [] and sub.tracker.finish() == []


async def test_a_store_that_refuses_to_remove_delivered_batches_stops_nothing(
    tmp_path: Path, pki: TestPKI, tls_broker: Mosquitto
) -> None:
    """Acks (deleting delivered batches) fail while the database refuses writes: the
    uplink keeps publishing what the store holds, counts the failures, and removes the
    batches once the store accepts writes again. The gateway never stops."""
    gw, drv, verifier = _gateway(tmp_path, pki, tls_broker, rate=200)
    stop = asyncio.Event()

    async def writable(on: bool) -> None:
        # SQLite's own refusal (query_only), set on the store's thread and connection
        db = gw.store._require()
        await asyncio.get_running_loop().run_in_executor(
            gw._executor, db.execute, f"PRAGMA query_only={0 if on else 1}"
        )

    async with Subscriber(pki, tls_broker.port, verifier) as sub:
        task, waiting = await _outage(gw, stop, sub, tls_broker, 1.5)
        assert waiting > 3
        await writable(False)

        def telemetry_batches() -> int:
            return sum(1 for r in sub.received if r.batch.stream == "telemetry")

        before = telemetry_batches()
        tls_broker.start()
        await sub.wait_for(lambda: gw.uplink.stats.ack_errors >= 2, timeout=15)
        # what the store held was delivered although it could not be removed
        await sub.wait_for(lambda: telemetry_batches() >= before + waiting)
        assert not task.done()
        status = await gw.status()
        assert status["uplink"]["ack_errors"] >= 2 and "store" in status["uplink"]["last_error"]
        assert status["lanes"]["telemetry"]["batches"] >= waiting
        await writable(True)
        await sub.wait_for(lambda: gw.store.stats().batches["telemetry"] <= 2, timeout=15)
        drv.emit(fire())
        await sub.wait_for(lambda: sub.events("fire"))
        stop.set()
        await asyncio.wait_for(task, 5)
        await asyncio.sleep(0.3)
    assert sub.invalid == []
    assert task.exception() is None


async def test_an_alarm_leaves_while_the_disk_stalls_and_is_stored_after(
    tmp_path: Path, pki: TestPKI, tls_broker: Mosquitto
) -> None:
    """The store's thread is held (a disk stalling an fsync for as long as we like): a fire
    alarm still reaches the verifying subscriber, published before its commit; the device
    is not told it is stored until the commit, and once the thread is free the batch is
    committed, removed after the PUBACK it already had, and not published a second time."""
    gw, drv, verifier = _gateway(tmp_path, pki, tls_broker, rate=200)
    stop = asyncio.Event()
    stall = threading.Event()
    async with Subscriber(pki, tls_broker.port, verifier) as sub:
        task = asyncio.create_task(gw.run(stop))
        await sub.wait_for(lambda: len(sub.readings()) >= 50)
        held = asyncio.get_running_loop().run_in_executor(gw._executor, stall.wait, 20.0)
        try:
            drv.emit(fire())
            await sub.wait_for(lambda: sub.events("fire"), timeout=5)
            assert not held.done(), "the store thread was free: nothing was tested"
            assert gw.uplink.stats.published_early == 1
            assert not any(isinstance(i, Event) and i.kind == "fire" for i in drv.confirmed)
            assert gw.store.next_seq("alarm") == 1  # not committed yet
        finally:
            stall.set()
        await held
        await sub.wait_for(
            lambda: any(isinstance(i, Event) and i.kind == "fire" for i in drv.confirmed)
        )
        await sub.wait_for(lambda: gw.store.stats().batches["alarm"] == 0)
        assert gw.store.next_seq("alarm") == 2
        drv.emit(fire("panel1"))  # a second alarm, with the store free: early again
        await sub.wait_for(lambda: len(sub.events("fire")) >= 2)
        stop.set()
        await asyncio.wait_for(task, 5)
        await asyncio.sleep(0.3)
    alarms = [r.batch.seq for r in sub.received if r.batch.stream == "alarm"]
    assert alarms == [1, 2], alarms  # each once: the pump did not publish them again
    assert gw.uplink.stats.published_early == 2
    assert sub.invalid == [] and list(sub.anomalies) == []
    assert sub.tracker.finish() == []


async def test_a_seal_cut_short_by_shutdown_is_still_handed_to_the_uplink(
    tmp_path: Path, pki: TestPKI, tls_broker: Mosquitto
) -> None:
    """Shutdown cancels the telemetry sealer while its seal runs on the store thread (held
    there, as a slow disk would). The seal completes anyway; its batches must still be
    counted and handed to the uplink before those sealed at shutdown, or they would wait in
    the store until the next start while later ones left first: a gap at every consumer."""
    gw, _drv, verifier = _gateway(tmp_path, pki, tls_broker, rate=500)
    stop = asyncio.Event()
    stall, running = threading.Event(), threading.Event()
    seal = gw.store.seal

    def slow_seal(requests: Any) -> Any:  # on the store thread
        if not stall.is_set():
            running.set()
            stall.wait(20.0)
        return seal(requests)

    async with Subscriber(pki, tls_broker.port, verifier) as sub:
        task = asyncio.create_task(gw.run(stop))
        await sub.wait_for(lambda: len(sub.readings()) >= 100)
        gw.store.seal = slow_seal  # type: ignore[method-assign]
        try:
            assert await asyncio.to_thread(running.wait, 5.0)
            stop.set()
            await asyncio.sleep(0.5)  # drivers stopped, the sealer cancelled mid-seal
        finally:
            stall.set()
        await asyncio.wait_for(task, 10)
        await asyncio.sleep(0.5)
    committed = gw.store.next_seq("telemetry") - 1
    assert gw.counters.batches_sealed["telemetry"] == committed  # none went uncounted
    telemetry = sorted(r.batch.seq for r in sub.received if r.batch.stream == "telemetry")
    assert telemetry == list(range(1, len(telemetry) + 1)), "a gap: later batches left first"
    assert sub.invalid == [] and sub.tracker.finish() == []
