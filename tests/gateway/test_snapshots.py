"""Camera snapshots travel as signed batches on the snapshot stream, referenced by digest."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from pathlib import Path

from edgesdk.verify import Verifier
from emulators.cameras.emulator import CameraEmulator
from gateway import config as gwconfig
from gateway.app import Gateway
from tests.gateway.gwkit import Subscriber, write_config
from tests.pki import TestPKI
from tests.support import Mosquitto


async def test_smoke_snapshot_is_forwarded_signed_and_matches_the_event(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    pki = TestPKI(tmp_path / "pki")
    with Mosquitto(tls=pki.broker(), persistence=True) as upstream:
        cfg = write_config(
            tmp_path,
            pki,
            upstream.port,
            devices=f"""
[devices.cameras]
driver = "camera-mqtt"
[devices.cameras.options]
broker = "{mosquitto.url}"
""",
        )
        gw = Gateway(gwconfig.load(cfg))
        verifier = Verifier.from_cert_files([pki.dir / "gw1-sign.crt"])
        stop = asyncio.Event()
        async with Subscriber(pki, upstream.port, verifier) as sub:
            task = asyncio.create_task(gw.run(stop))
            await asyncio.sleep(1.0)  # the driver subscribes before the cameras speak
            async with CameraEmulator(
                mosquitto.url, scenario="smoke-in-lobby", seed=3, time_scale=4.0
            ):
                await sub.wait_for(
                    lambda: any(r.batch.stream == "snapshot" for r in sub.received), 30
                )
            stop.set()
            await asyncio.wait_for(task, 10)
    snaps = [r for r in sub.received if r.batch.stream == "snapshot"]
    assert snaps[0].topic == "edge/v1/hq/gw1/snapshot"
    snap = snaps[0].batch.extra["snapshot"]
    data = snap["data"]
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9", "a JPEG"
    assert hashlib.sha256(data).hexdigest() == snap["sha256"]
    # the event that references it carries the same digest
    referencing = [e for e in sub.events() if e.data.get("snapshot") == snap["sha256"]]
    assert referencing and referencing[0].kind in ("camera-smoke", "camera-fire")
    assert snap["event"] == referencing[0].id
    assert sub.invalid == []
    # rate-limited: at most one snapshot per camera per snapshot_min_interval (1 s)
    times = sorted(r.batch.t for r in snaps)
    assert all(b - a >= 0.9 for a, b in itertools.pairwise(times))
