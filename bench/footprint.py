"""``footprint``: RSS and CPU of the gateway process with 100 devices at their normal rates.

44 fire panels (11 driver instances of 4 unit ids each; status every 1 s, analog every 5 s),
52 firefighter beacons (one receiver, 1 Hz telemetry each) and 4 cameras (a Frigate NVR,
an Axis camera, a generic camera; the ``quiet`` scenario), every emulator in its own
process. The gateway runs as ``python -m edgesdk gateway run``; psutil samples it.
Disk bytes per stored reading come from the ``drain`` benchmark (1,000,000 readings).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, result

WARMUP = 15.0
MEASURE = 45.0
PANELS_PER_DRIVER = 4
PANEL_DRIVERS = 11
CREW = 52


def _spawn(args: list[str]) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgesdk", "emulate", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


def main() -> dict[str, Any]:
    import psutil

    from tests.gateway.gwkit import write_config
    from tests.pki import TestPKI
    from tests.support import Mosquitto

    tmp = Path(tempfile.mkdtemp(prefix="edgesdk-footprint-"))
    pki = TestPKI(tmp / "pki")
    procs: list[subprocess.Popen[bytes]] = []
    with Mosquitto(tls=pki.broker()) as upstream, Mosquitto() as site_broker:
        try:
            units = PANELS_PER_DRIVER * PANEL_DRIVERS
            p, panel = _spawn(
                [
                    "panel",
                    "--port",
                    "0",
                    "--no-rtu",
                    "--units",
                    str(units),
                    "--loops",
                    "2",
                    "--scenario",
                    "quiet",
                ]
            )
            procs.append(p)
            link = tmp / "beacons"
            p, _ = _spawn(["beacons", "--crew", str(CREW), "--link", str(link)])
            procs.append(p)
            p, _ = _spawn(["cameras", "--broker", site_broker.url, "--scenario", "quiet"])
            procs.append(p)
            devices = ""
            for i in range(PANEL_DRIVERS):
                ids = list(range(i * PANELS_PER_DRIVER + 1, (i + 1) * PANELS_PER_DRIVER + 1))
                devices += f"""
[devices.panels{i}]
driver = "modbus-panel"
[devices.panels{i}.options]
url = "tcp://127.0.0.1:{panel["tcp"]["port"]}"
profile = "notifier-gw"
units = {ids}
loops = 2
"""
            devices += f"""
[devices.crew]
driver = "beacon-serial"
[devices.crew.options]
port = "{link}"
[devices.cameras]
driver = "camera-mqtt"
[devices.cameras.options]
broker = "{site_broker.url}"
"""
            cfg = write_config(tmp, pki, upstream.port, devices=devices)
            text = cfg.read_text().replace(
                "telemetry_max_records = 50", "telemetry_max_records = 500"
            )
            cfg.write_text(text.replace("telemetry_max_age = 0.2", "telemetry_max_age = 1.0"))
            gw = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "edgesdk",
                    "gateway",
                    "run",
                    "--config",
                    str(cfg),
                    "--log-level",
                    "warning",
                ],
                stderr=subprocess.DEVNULL,
                cwd=ROOT,
            )
            procs.append(gw)
            ps = psutil.Process(gw.pid)
            time.sleep(WARMUP)
            profile = os.environ.get("BENCH_PYSPY")  # e.g. /tmp/gw.collapsed: where CPU goes
            if profile:
                subprocess.Popen(
                    [
                        "py-spy",
                        "record",
                        "-d",
                        str(int(MEASURE) - 5),
                        "-f",
                        "raw",
                        "-o",
                        profile,
                        "-p",
                        str(gw.pid),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            c0 = ps.cpu_times()
            t0 = time.time()
            rss: list[int] = []
            while time.time() - t0 < MEASURE:
                rss.append(ps.memory_info().rss)
                time.sleep(1.0)
            c1 = ps.cpu_times()
            dt = time.time() - t0
            listen = text.split('listen = "')[1].split('"')[0]
            import urllib.request

            with urllib.request.urlopen(f"http://{listen}/healthz", timeout=5) as resp:
                status = json.loads(resp.read())
        finally:
            for proc in reversed(procs):
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
    cpu = (c1.user + c1.system - c0.user - c0.system) / dt
    drivers_online = sum(1 for d in status["drivers"].values() if d["state"] == "online")
    return result(
        "footprint",
        {
            "rss_mb_max": round(max(rss) / 2**20, 1),
            "rss_mb_median": round(sorted(rss)[len(rss) // 2] / 2**20, 1),
            "cpu_percent_of_core": round(100 * cpu, 2),
            "readings_per_s": round(status["gateway"]["readings_in"] / status["gateway"]["uptime"]),
            "devices": units + CREW + 4,
            "driver_instances_online": drivers_online,
            "batches_published": status["uplink"]["published"],
        },
        {
            "panels": units,
            "beacons": CREW,
            "cameras": 4,
            "status_interval_s": 1.0,
            "analog_interval_s": 5.0,
            "warmup_s": WARMUP,
            "measure_s": MEASURE,
            "tls": True,
        },
        {
            "rss_mb_max": "<= 60",
            "cpu_percent_of_core": "<= 5",
            "disk_bytes_per_reading": "<= 40 (see the drain benchmark)",
        },
    )
