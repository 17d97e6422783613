"""The rig most benchmarks share: mosquitto with mTLS, a site PKI, a gateway config, the
in-process gateway with a synthetic source, and verifying consumers in other processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import ROOT


@dataclass
class Rig:
    tmp: Path
    pki: Any
    broker: Any
    config: Path

    def consumer(
        self,
        topic: str,
        *,
        idle: float = 3.0,
        name: str = "bench-consumer",
        start_timeout: float = 600.0,
        arrivals: bool = False,
    ) -> subprocess.Popen[bytes]:
        crt, key = self.pki.client(name)
        cmd = [
            sys.executable,
            "-m",
            "bench.consumer_worker",
            "--port",
            str(self.broker.port),
            "--signing-cert",
            str(self.pki.dir / "gw1-sign.crt"),
            "--idle",
            str(idle),
            "--topic",
            topic,
            "--client-id",
            name,
            "--start-timeout",
            str(start_timeout),
            "--ca",
            str(self.pki.ca),
            "--cert",
            str(crt),
            "--key",
            str(key),
        ]
        if arrivals:
            cmd.append("--arrivals")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=ROOT)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if b"ready" not in line:
            proc.kill()
            raise RuntimeError(f"consumer did not start: {line!r}")
        return proc


def consumer_result(proc: subprocess.Popen[bytes], timeout: float = 300) -> dict[str, Any]:
    out = proc.communicate(timeout=timeout)[0].decode().strip().splitlines()
    result: dict[str, Any] = json.loads(out[-1])
    return result


@contextlib.asynccontextmanager
async def rig(
    *, batch: int = 500, max_age: float = 1.0, extra: str = "", persistence: bool = True
) -> AsyncIterator[Rig]:
    from bench.common import mosquitto
    from tests.gateway.gwkit import write_config
    from tests.pki import TestPKI

    tmp = Path(tempfile.mkdtemp(prefix="edgesdk-bench-"))
    pki = TestPKI(tmp / "pki")
    with mosquitto(tls=pki.broker(), persistence=persistence) as broker:
        cfg = write_config(
            tmp, pki, broker.port, extra=f"[retention]\ntelemetry_max_bytes = {8 << 30}\n{extra}"
        )
        text = cfg.read_text().replace(
            "telemetry_max_records = 50", f"telemetry_max_records = {batch}"
        )
        cfg.write_text(text.replace("telemetry_max_age = 0.2", f"telemetry_max_age = {max_age}"))
        yield Rig(tmp, pki, broker, cfg)


async def wait_until(pred: Any, limit: float, step: float = 0.05) -> None:
    async with asyncio.timeout(limit):
        while not pred():
            await asyncio.sleep(step)
