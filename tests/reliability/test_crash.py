"""Crash: ``kill -9`` the gateway process at random moments (while sealing, committing,
publishing, acknowledging), at least 20 times in one test, with the panel and beacon
emulators producing and the broker up; then a clean run drains. Every batch committed
before each kill arrives, no ``seq`` is reused, and every chain is intact after dedupe
(alarm batches may leave before their commit: the seqs a kill left reserved are declared in
``unconfirmed`` lost notices)."""

from __future__ import annotations

import asyncio
import json
import random
import urllib.request
from pathlib import Path

from edgesdk.verify import Verifier
from emulators.beacons.emulator import BeaconEmulator
from emulators.panel.emulator import PanelEmulator
from tests import rig
from tests.gateway.gwkit import Subscriber, write_config
from tests.gateway.test_gateway_process import start_gateway, stop_gateway
from tests.pki import TestPKI
from tests.support import Mosquitto

KILLS = 20


def _health(url: str) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            body: dict[str, object] = json.loads(resp.read())
            return body
    except OSError:
        return None


async def test_twenty_kill_9_then_drain(tmp_path: Path) -> None:
    rng = random.Random(20261121)
    pki = TestPKI(tmp_path / "pki")
    link = tmp_path / "beacons"
    with Mosquitto(tls=pki.broker(), persistence=True) as broker:
        async with (
            PanelEmulator(
                scenario="fire-drill", seed=5, time_scale=5.0, loops=1, detectors=16, modules=4
            ) as panel,
            BeaconEmulator(crew=4, scenario="patrol", seed=9, link=link, time_scale=5),
        ):
            host, port = panel.tcp_address or ("", 0)
            cfg = write_config(
                tmp_path,
                pki,
                broker.port,
                devices=f"""
[devices.panel1]
driver = "modbus-panel"
[devices.panel1.options]
url = "tcp://{host}:{port}"
loops = 1
profile = "notifier-gw"
status_interval = 0.1
analog_interval = 0.5
[devices.crew]
driver = "beacon-serial"
[devices.crew.options]
port = "{link}"
""",
            )
            listen = cfg.read_text().split('listen = "')[1].split('"')[0]
            health = f"http://{listen}/healthz"
            verifier = Verifier.from_cert_files([pki.dir / "gw1-sign.crt"])
            log = tmp_path / "gateway.log"
            async with Subscriber(pki, broker.port, verifier) as sub:
                for _ in range(KILLS):
                    proc = start_gateway(cfg, log)
                    try:
                        async with asyncio.timeout(20):  # wait until it is up and running
                            while await asyncio.to_thread(_health, health) is None:
                                await asyncio.sleep(0.05)
                        await asyncio.sleep(rng.uniform(0.05, 1.2))
                    finally:
                        proc.kill()
                        proc.wait(timeout=5)
                proc = start_gateway(cfg, log)
                try:
                    async with asyncio.timeout(60):
                        while True:
                            await asyncio.sleep(0.3)
                            st = await asyncio.to_thread(_health, health)
                            if not st or not st["uplink"]["connected"]:  # type: ignore[index]
                                continue
                            lanes = st["lanes"]
                            if all(v["batches"] == 0 for v in lanes.values()):  # type: ignore[attr-defined]
                                break
                    stop_gateway(proc)
                finally:
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait(timeout=5)
                await asyncio.sleep(1.0)
    boots = {r.batch.boot for r in sub.received}
    streams = {r.batch.stream for r in sub.received}
    unconfirmed = {  # a batch sent again after a kill carries its notices again
        (n.stream, n.first, n.last)
        for r in sub.received
        for n in r.batch.lost
        if n.reason == "unconfirmed"
    }
    rig.report(
        f"crash rig: {KILLS} kills, {len(sub.received)} batches, {len(sub.readings())} "
        f"readings, {len(sub.events())} events, boots seen {len(boots)}, streams {streams}, "
        f"{len(unconfirmed)} unconfirmed alarm-seq notices"
    )
    assert sub.invalid == []
    kinds = [type(a).__name__ for a in sub.anomalies]
    assert "Conflict" not in kinds, "a seq was reused with different content"
    assert "BrokenChain" not in kinds
    assert [g for g in sub.tracker.finish() if not g.accounted] == []
    assert len(boots) >= KILLS // 2, f"too few runs produced batches: {sorted(boots)}"
    assert {"telemetry", "alarm"} <= streams
    # each kill left the alarm stream's reserved seqs to declare (the alarms that may have
    # been published before their commit): the notices arrived, and covered the gaps above
    assert len(unconfirmed) >= KILLS // 2
