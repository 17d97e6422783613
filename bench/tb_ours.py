"""Our side of ``vs-thingsboard``: the real gateway process on the peer's emulated panels.

One run: mosquitto (mTLS, persistence), the peer harness's own ``modbus_emu.py`` (N panels,
each on its own port 127.0.0.1:15020+i, unit 1, 200 holding registers, 5 changing every
second), ``python -m edgesdk gateway run`` with N ``modbus-panel`` devices reading the
200 registers as 200 analog values on every poll (``analog_every_poll``; deadband and
change check off, as ThingsBoard's ON_RECEIVED report strategy), signing every batch and
committing it to SQLite with fsync before the QoS 1 publish, and ``bench.tb_consumer``
verifying and counting distinct datapoints in its own process.

Accounting is exact, as on the peer side: the emulator is stopped first, the gateway
drains (the consumer sees nothing new for 2 s and the telemetry lane is empty), then
``lost = datapoints the emulator served - distinct datapoints verified at the consumer``.
The emulator counts requests, registers and complete panel reads; with the known blocks
(a 2-register status read, then 125 + 75 analog registers) that gives the datapoints
served, partial polls included.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import ROOT

__all__ = ["EMULATOR", "PROFILE", "OursSettings", "free_block", "log", "run_ours"]

PEER_DIR = Path(os.environ.get("EDGESDK_SHARED", ROOT.parent / "shared")) / "peers" / "thingsboard"
EMULATOR = PEER_DIR / "modbus_emu.py"
PROFILE = ROOT / "bench" / "tb_flat_200.toml"
REGS = 200
ANALOG_BLOCKS = (125, 75)  # FC03 reads per poll (max_registers 125)
STATUS_REGS = 2  # the FC04 status read (point word, panel status word)
STATUS_INTERVAL = 5.0


def log(*parts: object) -> None:
    print(time.strftime("%H:%M:%S"), "[vs-thingsboard]", *parts, file=sys.stderr, flush=True)


def free_block(n: int, start: int = 15020) -> int:
    """The first base port from ``start`` with ``n`` consecutive free loopback ports."""
    base = start
    while base + n < 65000:
        for i in range(n):
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("127.0.0.1", base + i))
                except OSError:
                    base += i + 1
                    break
        else:
            return base
    raise RuntimeError(f"no {n} consecutive free ports from {start}")


@dataclass
class OursSettings:
    panels: int
    poll_ms: int
    warmup: float = 8.0
    measure: float = 15.0
    outage: float = 0.0  # seconds mosquitto is down (0: no outage)
    recover: float = 20.0  # seconds watched after the broker is back
    drain_limit: float = 60.0
    extra: dict[str, Any] = field(default_factory=dict)


def _devices(n: int, base: int, poll_s: float) -> str:
    out = []
    for i in range(n):
        out.append(
            f"""
[devices.p{i + 1:03d}]
driver = "modbus-panel"
[devices.p{i + 1:03d}.options]
url = "tcp://127.0.0.1:{base + i}"
profile = "{PROFILE}"
analog_interval = {poll_s}
analog_every_poll = true
status_interval = {STATUS_INTERVAL}
full_report_interval = 3600.0
heartbeat_timeout = 0
timeout = 2.0
"""
        )
    return "".join(out)


def _healthz(listen: str, timeout: float = 5.0) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{listen}/healthz", timeout=timeout) as resp:
        out: dict[str, Any] = json.loads(resp.read())
        return out


def _read_json(path: Path, default: dict[str, Any]) -> dict[str, Any]:
    try:
        out: dict[str, Any] = json.loads(path.read_text())
        return out
    except (OSError, ValueError):
        return default


def _stop(proc: subprocess.Popen[bytes] | None, wait: float = 15.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _cpu(p: Any) -> float:
    t = p.cpu_times()
    return float(t.user + t.system)


def served_datapoints(stats: dict[str, Any]) -> tuple[int, int]:
    """(analog datapoints served, complete panel reads) from the emulator's counters.

    requests = s + a1 + a2 and registers = 2 s + 125 a1 + 75 a2, with a2 the complete reads
    (the 75-register block, the only read reaching the last register): solve for a1.
    """
    a2 = int(stats.get("polls", 0))
    rest_req = int(stats.get("requests", 0)) - a2
    rest_regs = int(stats.get("registers", 0)) - ANALOG_BLOCKS[1] * a2
    a1 = round((rest_regs - STATUS_REGS * rest_req) / (ANALOG_BLOCKS[0] - STATUS_REGS))
    return ANALOG_BLOCKS[0] * a1 + ANALOG_BLOCKS[1] * a2, a2


def _window(per_second: dict[int, int], t0: float, t1: float) -> float:
    secs = range(int(t0) + 1, int(t1))
    return sum(per_second.get(s, 0) for s in secs) / max(1, len(secs))


def _median(xs: list[float]) -> float | None:
    return round(statistics.median(xs), 3) if xs else None


def run_ours(s: OursSettings) -> dict[str, Any]:
    import psutil  # type: ignore[import-untyped]

    from tests.gateway.gwkit import write_config
    from tests.pki import TestPKI
    from tests.support import Mosquitto

    poll_s = s.poll_ms / 1000.0
    name = f"ours_{s.panels}x{REGS}_{s.poll_ms}ms" + ("_outage" if s.outage else "")
    expected = s.panels * REGS / poll_s
    tmp = Path(tempfile.mkdtemp(prefix="edgesdk-vs-tb-"))
    pki = TestPKI(tmp / "pki")
    procs: list[subprocess.Popen[bytes]] = []
    emu = gw = consumer = None
    out = tmp / "consumer.json"
    emu_stats = tmp / "emu_stats.json"
    limit = s.warmup + s.measure + s.outage + s.recover + s.drain_limit + 120
    log(f"[{name}] start: expected {expected:.0f} dp/s")
    broker = Mosquitto(tls=pki.broker(), persistence=True)
    broker.start()
    try:
        base = free_block(s.panels)
        emu = subprocess.Popen(
            [
                sys.executable,
                str(EMULATOR),
                "--panels",
                str(s.panels),
                "--regs",
                str(REGS),
                "--base-port",
                str(base),
                "--duration",
                str(int(limit)),
                "--stats",
                str(emu_stats),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        procs.append(emu)
        assert emu.stdout is not None
        if b"modbus_emu" not in emu.stdout.readline():
            raise RuntimeError("the peer emulator did not start")
        cfg = write_config(tmp, pki, broker.port, devices=_devices(s.panels, base, poll_s))
        text = cfg.read_text()
        for test_only in (  # the gwkit test values: use the gateway's defaults instead
            "reconnect_min = 0.1\n",
            "reconnect_max = 1.0\n",
            "telemetry_max_records = 50\n",
            "telemetry_max_age = 0.2\n",
        ):
            text = text.replace(test_only, "")
        text += f"\n[retention]\ntelemetry_max_bytes = {8 << 30}\n"
        cfg.write_text(text)
        listen = text.split('listen = "')[1].split('"')[0]
        crt, key = pki.client("tb-bench-consumer")
        consumer = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.tb_consumer",
                "--port",
                str(broker.port),
                "--signing-cert",
                str(pki.dir / "gw1-sign.crt"),
                "--ca",
                str(pki.ca),
                "--cert",
                str(crt),
                "--key",
                str(key),
                "--out",
                str(out),
                "--limit",
                str(int(limit)),
            ],
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        procs.append(consumer)
        assert consumer.stdout is not None
        if b"ready" not in consumer.stdout.readline():
            raise RuntimeError("the consumer did not start")
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
                "error",
            ],
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
        )
        procs.append(gw)
        t_start = time.time()
        while True:
            try:
                if _healthz(listen, 1.0)["uplink"]["connected"]:
                    break
            except OSError:
                pass
            if gw.poll() is not None or time.time() - t_start > 60:
                raise RuntimeError("the gateway did not start")
            time.sleep(0.1)
        time.sleep(s.warmup)
        ps = {
            "gateway": psutil.Process(gw.pid),
            "emulator": psutil.Process(emu.pid),
            "consumer": psutil.Process(consumer.pid),
            "mosquitto": psutil.Process(broker.proc.pid) if broker.proc else None,
        }
        profile = os.environ.get("BENCH_PYSPY")  # e.g. /tmp/gw.txt: where the CPU goes
        if profile:
            pyspy = Path(sys.executable).with_name("py-spy")
            spy = subprocess.Popen(
                [
                    str(pyspy),
                    "record",
                    "--gil",
                    "-f",
                    "raw",
                    "-d",
                    str(int(s.measure)),
                    "-o",
                    profile,
                    "-p",
                    str(gw.pid),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            procs.append(spy)  # it ends by itself after the window
        c0 = {k: _cpu(p) for k, p in ps.items() if p is not None}
        h0 = _healthz(listen)
        t0 = time.time()
        rss: list[int] = []
        res: dict[str, Any] = {}
        if s.outage:
            t_down = time.time()
            log(f"[{name}] stopping mosquitto for {s.outage:.0f} s")
            broker.stop()
            while time.time() < t_down + s.outage:
                rss.append(ps["gateway"].memory_info().rss)
                time.sleep(0.5)
            t_up = time.time()
            broker.start()
            ps["mosquitto"] = None  # a new process: its CPU is not compared
            uplink_back = None
            while time.time() < t_up + s.recover:
                try:
                    if uplink_back is None and _healthz(listen, 1.0)["uplink"]["connected"]:
                        uplink_back = time.time() - t_up
                except OSError:
                    pass
                rss.append(ps["gateway"].memory_info().rss)
                time.sleep(0.1)
            res.update(outage_s=s.outage, uplink_connected_after_restart_s=uplink_back)
        else:
            while time.time() < t0 + s.measure:
                rss.append(ps["gateway"].memory_info().rss)
                time.sleep(1.0)
                if gw.poll() is not None:
                    raise RuntimeError("the gateway exited")
        t1 = time.time()
        c1 = {k: _cpu(p) for k, p in ps.items() if p is not None and k in c0}
        h1 = _healthz(listen)
        # stop polling, let the gateway drain, then stop the rest
        _stop(emu)
        t_emu = time.time()
        last, t_last = -1, time.time()
        while time.time() - t_emu < s.drain_limit:
            time.sleep(0.25)
            n = _read_json(out.with_name(out.name + ".progress"), {}).get("distinct", -1)
            if n != last:
                last, t_last = n, time.time()
                continue
            idle = time.time() - t_last >= 2.0
            if idle and _healthz(listen)["lanes"]["telemetry"]["batches"] == 0:
                break
        h2 = _healthz(listen)
        _stop(gw)
        _stop(consumer)
        counted = _read_json(out, {})
        stats = _read_json(emu_stats, {})
    finally:
        for p in reversed(procs):
            _stop(p, wait=10)
        broker.close()
        shutil.rmtree(tmp, ignore_errors=True)  # the store holds millions of readings
    dt = t1 - t0
    per_second = {int(k): v for k, v in counted["per_second"].items()}
    served, polls = served_datapoints(stats)
    distinct = int(counted["distinct"])
    lags = [lag for sec, lag in counted["lags"] if int(t0) < sec < int(t1)]
    lags_first = [lag for sec, lag in counted["lags"] if int(t0) < sec <= int(t0) + 5]
    lags_last = [lag for sec, lag in counted["lags"] if int(t1) - 5 <= sec < int(t1)]
    drv0 = [d["counters"] for d in h0["drivers"].values()]
    drv1 = [d["counters"] for d in h1["drivers"].values()]
    overruns = sum(d.get("analog_overruns", 0) for d in drv1) - sum(
        d.get("analog_overruns", 0) for d in drv0
    )
    read_rate = (h1["gateway"]["readings_in"] - h0["gateway"]["readings_in"]) / dt
    delivered = _window(per_second, t0, t1)
    res.update(
        {
            "name": name,
            "panels": s.panels,
            "regs": REGS,
            "poll_ms": s.poll_ms,
            "expected_dp_per_s": round(expected, 1),
            "modbus_read_dp_per_s": round(read_rate, 1),
            "delivered_dp_per_s": round(delivered, 1),
            "delivered_ratio": round(delivered / expected, 3),
            "analog_overruns_per_s": round(overruns / dt, 2),
            "lag_s_p50": _median(lags),
            "lag_s_p50_first5s": _median(lags_first),
            "lag_s_p50_last5s": _median(lags_last),
            "backlog_batches_at_window_end": h1["lanes"]["telemetry"]["batches"],
            "gateway_cpu_pct": round(100 * (c1["gateway"] - c0["gateway"]) / dt, 1),
            "gateway_rss_mb_max": round(max(rss) / 2**20, 1) if rss else None,
            "gateway_rss_mb_median": round(statistics.median(rss) / 2**20, 1) if rss else None,
            "other_cpu_pct": {
                k: round(100 * (c1[k] - c0[k]) / dt, 1) for k in c1 if k != "gateway"
            },
            "loadavg1": round(os.getloadavg()[0], 2),
            "run_served_dp": served,
            "run_complete_panel_reads": polls,
            "run_delivered_unique_dp": distinct,
            "run_duplicate_dp": counted["duplicate_datapoints"],
            "run_lost_dp": max(0, served - distinct),
            "run_lost_ratio": round(max(0, served - distinct) / served, 6) if served else None,
            # read after the emulator's last count (SIGTERM): served, so not a loss
            "run_dp_after_last_count": max(0, distinct - served),
            "consumer_invalid": counted["invalid"],
            "consumer_duplicate_batches": counted["duplicate_batches"],
            "sequence_anomalies": counted["anomalies"],
            "drain_s_after_emulator_stop": round(t_last - t_emu, 1),
            "backlog_batches_at_stop": h2["lanes"]["telemetry"]["batches"],
            "shed_readings": h2["gateway"]["shed_readings"],
            "batches_signed": h2["gateway"]["signatures"],
        }
    )
    if s.outage:
        after = [a for a in counted["arrivals"] if a >= t_up]
        res["first_delivery_after_restart_s"] = round(min(after) - t_up, 2) if after else None
        res["consumer_connects"] = counted["connects"]
    keeps_up = (
        res["delivered_ratio"] >= 0.95
        and (res["lag_s_p50"] or 0) < 5.0
        and (res["lag_s_p50_last5s"] or 0) - (res["lag_s_p50_first5s"] or 0) < 2.0
        and res["run_lost_dp"] == 0
    )
    res["keeps_up"] = bool(keeps_up) if not s.outage else None
    log(f"[{name}] {json.dumps(res)}")
    return res
