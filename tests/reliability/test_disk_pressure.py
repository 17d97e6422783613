"""Disk pressure: the data directory on a small filesystem (a tmpfs when the test can
mount one; otherwise low retention caps) while telemetry floods in and the broker is down.

Telemetry is shed with signed ``lost`` notices, no alarm is lost, the gateway keeps running
and reports it (a ``store-pressure`` trouble event and its shed counters).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.source import BenchSource, SourceConfig
from edgesdk.verify import Verifier
from gateway import config as gwconfig
from gateway.app import Gateway
from tests import rig
from tests.gateway.gwkit import Subscriber, write_config
from tests.pki import TestPKI
from tests.support import Mosquitto

TMPFS_MB = 24


@contextlib.contextmanager
def small_filesystem(path: Path) -> Iterator[bool]:
    """Mount a TMPFS_MB tmpfs at ``path`` when we may; yield whether we did."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = False
    if os.geteuid() == 0 and shutil.which("mount"):
        r = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_MB}m,mode=0700", "tmpfs", str(path)],
            capture_output=True,
            check=False,
        )
        mounted = r.returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], check=False)


async def test_disk_pressure_sheds_telemetry_never_alarms(tmp_path: Path) -> None:
    pki = TestPKI(tmp_path / "pki")
    data = tmp_path / "data"
    with small_filesystem(data) as mounted, Mosquitto(tls=pki.broker(), persistence=True) as broker:
        retention = f"min_free_bytes = {8 << 20}" if mounted else f"telemetry_max_bytes = {2 << 20}"
        cfg_path = write_config(
            tmp_path, pki, broker.port, data_dir=data, extra=f"[retention]\n{retention}\n"
        )
        cfg_path.write_text(
            cfg_path.read_text().replace(
                "telemetry_max_records = 50", "telemetry_max_records = 500"
            )
        )
        verifier = Verifier.from_cert_files([pki.dir / "gw1-sign.crt"])
        sub = Subscriber(pki, broker.port, verifier)
        async with sub:  # create the persistent session, then take the broker away
            pass
        broker.stop()
        # ~12 s of telemetry at 60,000 readings/s: far more than the filesystem holds; then
        # the source goes quiet (alarms still flow) so the drain below has an end
        source = BenchSource(SourceConfig(rate=60_000, limit=700_000), instance="src")
        gw = Gateway(gwconfig.load(cfg_path), drivers={"src": source})
        stop = asyncio.Event()
        task = asyncio.create_task(gw.run(stop))
        alarms = 40
        for _ in range(alarms):
            source.alarm()
            await asyncio.sleep(0.3)
        await asyncio.sleep(2.0)
        status = await gw.status()
        assert not task.done(), "the gateway must keep running under disk pressure"
        assert status["gateway"]["shed_batches"] > 0
        usage = shutil.disk_usage(data)
        broker.start()
        async with Subscriber(pki, broker.port, verifier) as sub:
            last_seq = -1
            async with asyncio.timeout(120):
                while True:  # until the subscriber holds everything the gateway sealed
                    await asyncio.sleep(0.5)
                    fires = {e.id for e in sub.events("fire")}
                    st = await gw.status()
                    last_seq = gw.store.next_seq("telemetry") - 1
                    got = max(
                        (r.batch.seq for r in sub.received if r.batch.stream == "telemetry"),
                        default=0,
                    )
                    if (
                        len(fires) >= alarms
                        and st["lanes"]["telemetry"]["batches"] == 0
                        and got >= last_seq
                    ):
                        break
            stop.set()
            await asyncio.wait_for(task, 10)
            await asyncio.sleep(0.5)
    rig.report(
        f"disk pressure via {'tmpfs ' + str(TMPFS_MB) + ' MiB' if mounted else 'caps'}: "
        f"shed {status['gateway']['shed_batches']} batches "
        f"({status['gateway']['shed_readings']} readings), "
        f"{len(sub.readings())} readings delivered, {alarms} alarms"
    )
    if mounted:
        assert usage.used <= TMPFS_MB << 20
        # the store used the room it had (~14 MiB, ~30 B a reading) rather than shedding
        # everything: at least 100,000 readings survived the outage
        assert len(sub.readings()) >= 100_000
    assert len({e.id for e in sub.events("fire")}) == alarms, "an alarm was lost"
    assert sub.events("store-pressure"), "the gateway must report shedding"
    assert sub.invalid == []
    lost = [lr for r in sub.received for lr in r.batch.lost]
    assert lost and all(lr.stream == "telemetry" for lr in lost)
    unexplained = [g for g in sub.tracker.finish() if not g.accounted]
    assert unexplained == [], unexplained
    kinds = [type(a).__name__ for a in sub.anomalies]
    assert "BrokenChain" not in kinds
    assert "Conflict" not in kinds


@pytest.fixture(autouse=True)
def _quiet_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("ERROR")
