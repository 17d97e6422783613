"""The real gateway process (``python -m edgesdk gateway run``) against emulators and a real
mosquitto with TLS and required client certificates, checked at a verifying subscriber."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from edgesdk.model import EventState, Severity
from edgesdk.verify import Verifier
from emulators.beacons.emulator import BeaconEmulator
from tests.gateway.gwkit import Subscriber, write_config
from tests.pki import TestPKI
from tests.support import Mosquitto

ROOT = Path(__file__).resolve().parents[2]


def start_gateway(config: Path, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "edgesdk", "gateway", "run", "--config", str(config)],
            stdout=out,
            stderr=out,
            cwd=ROOT,
        )
    finally:
        out.close()


def stop_gateway(proc: subprocess.Popen[bytes], *, grace: float = 8.0) -> float:
    """SIGTERM, and how long the process took to exit."""
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
        raise
    return time.monotonic() - t0


async def test_man_down_prealarm_at_20s_alarm_at_30s(
    tmp_path: Path, pki: TestPKI, tls_broker: Mosquitto
) -> None:
    link = tmp_path / "beacons"
    stop_at = 4.0  # the victim stops moving this many seconds into the run
    async with BeaconEmulator(
        crew=2, scenario="man-down", seed=7, link=link, event_at=stop_at, victim=0
    ) as emu:
        started = time.time() - emu.sim_time
        victim = emu.victim
        cfg = write_config(
            tmp_path,
            pki,
            tls_broker.port,
            devices=f"""
[devices.crew]
driver = "beacon-serial"
[devices.crew.options]
port = "{link}"
""",
        )
        verifier = Verifier.from_cert_files([pki.dir / "gw1-sign.crt"])
        async with Subscriber(pki, tls_broker.port, verifier) as sub:
            proc = start_gateway(cfg, tmp_path / "gateway.log")
            try:
                await sub.wait_for(
                    lambda: any(
                        e.kind == "man-down" and e.severity is Severity.ALARM for e in sub.events()
                    ),
                    timeout=60,
                )
                arrived = time.time()
                took = stop_gateway(proc)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=5)
    log = (tmp_path / "gateway.log").read_text()
    assert sub.invalid == [], log[-2000:]
    man_down = [e for e in sub.events("man-down") if e.data.get("beacon") == victim]
    pre = [e for e in man_down if e.severity is Severity.PREALARM and e.state is EventState.ACTIVE]
    alarm = [e for e in man_down if e.severity is Severity.ALARM]
    assert len(pre) == 1, man_down
    assert len(alarm) == 1, man_down
    last_motion = float(pre[0].data["last_motion"])
    # the last movement is when the emulated firefighter stopped (1 Hz telemetry)
    assert abs(last_motion - (started + stop_at)) < 1.5
    assert abs(pre[0].time - last_motion - 20.0) < 1.0
    assert abs(alarm[0].time - last_motion - 30.0) < 1.0
    # and it reached the subscriber within a second of falling due
    assert arrived - alarm[0].time < 1.5
    assert took < 5.0, "SIGTERM must stop the gateway within 5 s"
    gaps = [a for a in sub.anomalies if type(a).__name__ in ("Gap", "BrokenChain")]
    assert gaps == []
    # the other firefighter kept moving: no man-down for them
    assert all(e.data.get("beacon") == victim for e in sub.events("man-down"))
    assert (tmp_path / "data-gw1" / "store.sqlite").stat().st_size > 0


def _healthz(cfg_text: str) -> dict[str, object] | None:
    import json
    import re
    import urllib.request

    m = re.search(r'listen = "([^"]+)"', cfg_text)
    assert m is not None
    try:
        with urllib.request.urlopen(f"http://{m.group(1)}/healthz", timeout=2) as resp:
            body: dict[str, object] = json.loads(resp.read())
            return body
    except OSError:
        return None


async def test_kill_9_with_broker_flaps_loses_nothing(
    tmp_path: Path, pki: TestPKI, tls_broker: Mosquitto
) -> None:
    """Repeated kill -9 of the gateway process while the emulators produce and the broker
    flaps, then a clean run to drain: no gap, no chain break, no reused seq."""
    import asyncio
    import random

    rng = random.Random(26875)
    link = tmp_path / "beacons"
    kills = 6
    async with BeaconEmulator(crew=4, scenario="patrol", seed=3, link=link, time_scale=10):
        cfg = write_config(
            tmp_path,
            pki,
            tls_broker.port,
            devices=f"""
[devices.crew]
driver = "beacon-serial"
[devices.crew.options]
port = "{link}"
""",
        )
        cfg_text = cfg.read_text()
        verifier = Verifier.from_cert_files([pki.dir / "gw1-sign.crt"])
        async with Subscriber(pki, tls_broker.port, verifier) as sub:
            log = tmp_path / "gateway.log"
            for k in range(kills):
                proc = start_gateway(cfg, log)
                try:
                    await asyncio.sleep(rng.uniform(1.5, 3.0))
                    if k % 2 == 1:  # the broker flaps while the gateway runs
                        tls_broker.stop()
                        await asyncio.sleep(rng.uniform(0.5, 1.5))
                        tls_broker.start()
                        await asyncio.sleep(rng.uniform(0.2, 1.0))
                finally:
                    proc.kill()  # SIGKILL: no clean shutdown
                    proc.wait(timeout=5)
            # a clean run drains everything that was sealed before the kills
            proc = start_gateway(cfg, log)
            try:
                async with asyncio.timeout(60):
                    while True:
                        await asyncio.sleep(0.5)
                        st = await asyncio.to_thread(_healthz, cfg_text)
                        if not st or not st["uplink"]["connected"]:  # type: ignore[index]
                            continue
                        lanes = st["lanes"]
                        if all(v["batches"] == 0 for v in lanes.values()):  # type: ignore[attr-defined]
                            break
                took = stop_gateway(proc)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=5)
            await asyncio.sleep(1.0)  # let the last messages reach the subscriber
    print(f"kills={kills} batches={len(sub.received)} readings={len(sub.readings())}")
    assert sub.invalid == []
    kinds = [type(a).__name__ for a in sub.anomalies]
    assert "Conflict" not in kinds, "a seq was reused with different content"
    assert "BrokenChain" not in kinds
    unexplained = [g for g in sub.tracker.finish() if not g.accounted]
    assert unexplained == [], unexplained
    boots = {r.batch.boot for r in sub.received}
    assert len(boots) >= kills + 1, f"expected a batch from every run, boots seen: {boots}"
    assert len(sub.readings()) > 500
    assert took < 5.0
