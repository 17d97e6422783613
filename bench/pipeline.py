"""``pipeline``: readings/s sustained end to end.

source driver -> rules -> seal and sign -> durable store (fsync) -> QoS 1 publish to a real
mosquitto over mTLS -> verified by a consumer in its own process. The gateway runs in this
process (one core); the consumer and mosquitto run on the other.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, cpu_seconds, mosquitto, result

TARGET = 100_000


async def run(
    rate: float = 0.0,
    warmup: float = 3.0,
    measure: float = 10.0,
    batch: int = 500,
    tls: bool = True,
) -> dict[str, Any]:
    from bench.source import BenchSource, SourceConfig
    from gateway import config as gwconfig
    from gateway.app import Gateway
    from tests.gateway.gwkit import write_config
    from tests.pki import TestPKI

    tmp = Path(tempfile.mkdtemp(prefix="edgesdk-bench-"))
    pki = TestPKI(tmp / "pki")
    with mosquitto(tls=pki.broker() if tls else None) as broker:
        cfg_path = write_config(
            tmp,
            pki,
            broker.port,
            extra=f"""
[retention]
telemetry_max_bytes = {4 << 30}
""",
        )
        text = cfg_path.read_text().replace(
            "telemetry_max_records = 50", f"telemetry_max_records = {batch}"
        )
        text = text.replace("telemetry_max_age = 0.2", "telemetry_max_age = 1.0")
        if not tls:
            text = text.replace("mqtts://", "mqtt://")
        cfg_path.write_text(text)
        cfg = gwconfig.load(cfg_path)
        crt, key = pki.client("bench-consumer")
        cmd = [
            sys.executable,
            "-m",
            "bench.consumer_worker",
            "--port",
            str(broker.port),
            "--signing-cert",
            str(pki.dir / "gw1-sign.crt"),
            "--idle",
            "3",
            "--topic",
            "edge/v1/hq/gw1/telemetry",
        ]
        if tls:
            cmd += ["--ca", str(pki.ca), "--cert", str(crt), "--key", str(key)]
        consumer = subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=ROOT)
        assert consumer.stdout is not None
        ready = consumer.stdout.readline()
        assert b"ready" in ready, ready
        source = BenchSource(SourceConfig(rate=rate), instance="src")
        gw = Gateway(cfg, drivers={"src": source})
        stop = asyncio.Event()
        task = asyncio.create_task(gw.run(stop))
        await asyncio.sleep(warmup)
        c0, t0, p0 = cpu_seconds(), time.time(), source.produced
        await asyncio.sleep(measure)
        c1, t1, p1 = cpu_seconds(), time.time(), source.produced
        st = await gw.status()
        stop.set()
        await asyncio.wait_for(task, 30)
        out_line = consumer.communicate(timeout=120)[0].decode().strip().splitlines()[-1]
        out = json.loads(out_line)
        if os.environ.get("BENCH_DEBUG"):
            print(
                json.dumps({k: out[k] for k in ("gap_ranges", "max_seq", "anomalies")}),
                file=sys.stderr,
            )
    per_second = {int(k): v for k, v in out["per_second"].items()}
    window = [per_second.get(s, 0) for s in range(int(t0) + 1, int(t1))]
    delivered = sum(window) / max(1, len(window))
    offered = (p1 - p0) / (t1 - t0)
    return {
        "delivered_readings_per_s": round(delivered),
        "offered_readings_per_s": round(offered),
        "gateway_cpu_percent_of_core": round(100 * (c1 - c0) / (t1 - t0), 1),
        "backlog_batches_at_end": st["lanes"]["telemetry"]["batches"],
        "consumer_verified_readings": out["readings"],
        "consumer_invalid": out["invalid"],
        "unexplained_gaps": out["open_gaps"],
        "anomalies": out["anomalies"],
    }


RATES = (100_000, 125_000, 150_000, 175_000, 200_000)  # up until one is not kept up


def main(as_json: bool = True, **kw: Any) -> dict[str, Any]:
    """A short sweep of offered rates; ``sustained`` is the highest rate the pipeline kept
    up with: delivered (verified at the consumer) >= 97% of offered, and the backlog at
    the end under two seconds of traffic."""
    steps = []
    sustained = 0
    for rate in RATES:
        fig = asyncio.run(run(rate=rate, warmup=3.0, measure=10.0))
        fig["offered_target"] = rate
        steps.append(fig)
        kept_up = (
            fig["delivered_readings_per_s"] >= 0.97 * fig["offered_readings_per_s"]
            and fig["backlog_batches_at_end"] * 500 <= 2 * rate
            and fig["unexplained_gaps"] == 0
            and fig["consumer_invalid"] == 0
        )
        fig["kept_up"] = kept_up
        if kept_up:
            sustained = max(sustained, fig["delivered_readings_per_s"])
        else:
            break
    figures = {"sustained_readings_per_s": sustained, "steps": steps}
    settings = {
        "rates": list(RATES),
        "warmup_s": 3.0,
        "measure_s": 10.0,
        "batch": 500,
        "tls": True,
        "fsync": "WAL synchronous=FULL",
        "qos": 1,
        "consumer": "separate process, verifies every batch",
    }
    return result("pipeline", figures, settings, {"sustained_readings_per_s": f">= {TARGET}"})
