"""``footprint``: RSS and CPU of the gateway process with 100 devices at their normal rates.

44 fire panels (11 driver instances of 4 unit ids each; status every 1 s, analog every 5 s),
52 firefighter beacons (one receiver, 1 Hz telemetry each) and 4 cameras (a Frigate NVR,
an Axis camera, a generic camera; the ``quiet`` scenario), every emulator in its own
process. The gateway runs as ``python -m edgesdk gateway run``; psutil samples it.
Disk bytes per stored reading come from the ``drain`` benchmark (1,000,000 readings).

Besides RSS (the target) the figures give USS and PSS (what the process alone holds, and
its share of pages it shares with others: RSS counts every shared-library page in full),
the Modbus requests per second the panels cost, and the process's context switches per
second (its wake-ups). ``BENCH_PYSPY=/tmp/gw.collapsed`` records a py-spy profile of the
measured window (``BENCH_PYSPY_RATE`` samples per second, default 100).
:func:`site` starts the emulators, brokers and config alone, for manual experiments.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import ROOT, result

WARMUP = 15.0
MEASURE = 45.0
PANELS_PER_DRIVER = 4
PANEL_DRIVERS = 11
CREW = 52
# the panels' status blocks are read up to their last installed point, the whole map once a
# minute (and at once when a zone, the panel word or a counter changes): the emulated loops
# have 20 detectors and 10 modules of 159 slots each
POINT_SCAN = float(os.environ.get("BENCH_POINT_SCAN", "60"))


@dataclass
class Site:
    """What :func:`site` started: the gateway config and its health URL."""

    config: Path
    health: str
    devices: int


def _spawn(args: list[str]) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgesdk", "emulate", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


def _devices(panel_port: int, link: Path, broker: str) -> str:
    devices = ""
    for i in range(PANEL_DRIVERS):
        ids = list(range(i * PANELS_PER_DRIVER + 1, (i + 1) * PANELS_PER_DRIVER + 1))
        devices += f"""
[devices.panels{i}]
driver = "modbus-panel"
[devices.panels{i}.options]
url = "tcp://127.0.0.1:{panel_port}"
profile = "notifier-gw"
units = {ids}
loops = 2
point_scan_interval = {POINT_SCAN}
"""
    return (
        devices
        + f"""
[devices.crew]
driver = "beacon-serial"
[devices.crew.options]
port = "{link}"
[devices.cameras]
driver = "camera-mqtt"
[devices.cameras.options]
broker = "{broker}"
"""
    )


@contextlib.contextmanager
def site(*, devices: bool = True) -> Iterator[Site]:
    """Brokers, emulators and a gateway config for the 100 devices (none with
    ``devices=False``: the gateway alone), stopped on exit."""
    from tests.gateway.gwkit import write_config
    from tests.pki import TestPKI
    from tests.support import Mosquitto

    tmp = Path(tempfile.mkdtemp(prefix="edgesdk-footprint-"))
    pki = TestPKI(tmp / "pki")
    procs: list[subprocess.Popen[bytes]] = []
    units = PANELS_PER_DRIVER * PANEL_DRIVERS
    with Mosquitto(tls=pki.broker()) as upstream, Mosquitto() as site_broker:
        try:
            text = ""
            if devices:
                p, panel = _spawn(
                    [
                        *("panel", "--port", "0", "--no-rtu", "--units", str(units)),
                        *("--loops", "2", "--scenario", "quiet"),
                    ]
                )
                procs.append(p)
                link = tmp / "beacons"
                p, _ = _spawn(["beacons", "--crew", str(CREW), "--link", str(link)])
                procs.append(p)
                p, _ = _spawn(["cameras", "--broker", site_broker.url, "--scenario", "quiet"])
                procs.append(p)
                text = _devices(panel["tcp"]["port"], link, site_broker.url)
            cfg = write_config(tmp, pki, upstream.port, devices=text)
            text = cfg.read_text().replace(
                "telemetry_max_records = 50", "telemetry_max_records = 500"
            )
            cfg.write_text(text.replace("telemetry_max_age = 0.2", "telemetry_max_age = 1.0"))
            listen = text.split('listen = "')[1].split('"')[0]
            yield Site(cfg, f"http://{listen}/healthz", units + CREW + 4 if devices else 0)
        finally:
            for proc in reversed(procs):
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
    shutil.rmtree(tmp, ignore_errors=True)


def _status(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        status: dict[str, Any] = json.loads(resp.read())
    return status


def _modbus_requests(status: dict[str, Any]) -> int:
    return sum(
        int(d["counters"].get("requests", 0))
        for d in status["drivers"].values()
        if d["driver"] == "modbus-panel"
    )


def _pyspy(pid: int, out: str) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).with_name("py-spy")
    rate = os.environ.get("BENCH_PYSPY_RATE", "100")
    return subprocess.Popen(
        [
            *(str(exe) if exe.exists() else "py-spy", "record", "-d", str(int(MEASURE) - 5)),
            *("-r", rate, "-f", "raw", "-o", out, "-p", str(pid)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def measure(s: Site) -> dict[str, Any]:
    """Run the gateway on ``s``: warm up, then sample it for MEASURE seconds."""
    import psutil  # type: ignore[import-untyped]

    gw = subprocess.Popen(
        [
            *(sys.executable, "-m", "edgesdk", "gateway", "run"),
            *("--config", str(s.config), "--log-level", "warning"),
        ],
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    spy: subprocess.Popen[bytes] | None = None
    try:
        ps = psutil.Process(gw.pid)
        time.sleep(WARMUP)
        profile = os.environ.get("BENCH_PYSPY")  # e.g. /tmp/gw.collapsed: where CPU goes
        if profile:
            spy = _pyspy(gw.pid, profile)
        before = _status(s.health)
        c0, x0, t0 = ps.cpu_times(), ps.num_ctx_switches(), time.time()
        rss: list[int] = []
        while time.time() - t0 < MEASURE:
            rss.append(ps.memory_info().rss)
            time.sleep(1.0)
        c1, x1, dt = ps.cpu_times(), ps.num_ctx_switches(), time.time() - t0
        full = ps.memory_full_info()
        after = _status(s.health)
    finally:
        gw.terminate()
        try:
            gw.wait(timeout=10)
        except subprocess.TimeoutExpired:
            gw.kill()
        if spy is not None:
            spy.wait(timeout=30)
    cpu = (c1.user + c1.system - c0.user - c0.system) / dt
    switches = x1.voluntary + x1.involuntary - x0.voluntary - x0.involuntary
    mb = 2**20
    return {
        "rss_mb_max": round(max(rss) / mb, 1),
        "rss_mb_median": round(sorted(rss)[len(rss) // 2] / mb, 1),
        "uss_mb": round(full.uss / mb, 1),
        "pss_mb": round(full.pss / mb, 1),
        "cpu_percent_of_core": round(100 * cpu, 2),
        "readings_per_s": round(after["gateway"]["readings_in"] / after["gateway"]["uptime"]),
        "modbus_requests_per_s": round((_modbus_requests(after) - _modbus_requests(before)) / dt),
        "context_switches_per_s": round(switches / dt),
        "devices": s.devices,
        "driver_instances_online": sum(
            1 for d in after["drivers"].values() if d["state"] == "online"
        ),
        "batches_published": after["uplink"]["published"],
    }


def main() -> dict[str, Any]:
    with site() as s:
        figures = measure(s)
    return result(
        "footprint",
        figures,
        {
            "panels": PANELS_PER_DRIVER * PANEL_DRIVERS,
            "beacons": CREW,
            "cameras": 4,
            "status_interval_s": 1.0,
            "point_scan_interval_s": POINT_SCAN,
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
