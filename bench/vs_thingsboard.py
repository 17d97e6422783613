"""``vs-thingsboard``: our gateway against ThingsBoard IoT Gateway 3.8.5 on the same panels.

Both gateways read the **same** emulated panels (the peer harness's ``modbus_emu.py``: N
panels, each on its own port 127.0.0.1:15020+i, unit 1, 200 holding registers, 5 changing
every second) and publish to a local mosquitto; each side's datapoints are counted at the
broker by a subscriber in its own process. Ours signs every batch, commits it to SQLite
with fsync and publishes over mTLS (``bench.tb_ours``); theirs runs with memory storage,
no signing and plain MQTT, exactly as the peer harness configures it (``bench.tb_peer``).
Every register of every poll is a datapoint on both sides (ThingsBoard's ON_RECEIVED, our
``analog_every_poll``).

Scenarios, run alternately (ours, theirs, ours, theirs...), medians reported:

* **saturation**: the highest rate each sustains, by the same test for both
  (:func:`sustained`: >= 95% of what was read delivered, median lag < 2 s and not growing,
  nothing lost; skipped or stretched polls are not readings). Theirs is offered 250
  panels at 1 s (50,000 dp/s; its one core saturates near 45,000 and its poll timer
  stretches); ours 200 panels at 200 ms (200,000 dp/s), then 250 or 160 panels. Full
  mode sweeps both. The figure is min(delivered, read) of the best sustained run.
* **loss** at 1 s and 100 ms polls: datapoints the emulator served minus distinct
  datapoints delivered, over the whole run (the emulator is stopped first, then the
  gateway drains).
* **reconnect**: mosquitto stopped, restarted; time to the first delivery after the
  restart (ours; the peer's 15-16 s is in its README, rerun with ``BENCH_FULL=1``).

``BENCH_FULL=1`` gives longer windows, a saturation sweep, more scenarios and two rounds
(``BENCH_ROUNDS`` to change). If the peer's virtualenvs are missing they are created with
its ``setup.sh`` (~35 s, needs the package index); if that fails, ours runs alone and the
result says ``peer_setup_required`` with the command.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.common import result
from bench.tb_ours import OursSettings, log, run_ours
from bench.tb_peer import PEER_ROOT, ensure_setup, run_peer, setup_command

__all__ = ["main"]

KEEP = (
    "panels",
    "poll_ms",
    "expected_dp_per_s",
    "modbus_read_dp_per_s",
    "delivered_dp_per_s",
    "delivered_ratio",
    "sustained_dp_per_s",
    "lag_s_p50",
    "gateway_cpu_pct",
    "gateway_rss_mb_max",
    "run_lost_dp",
    "run_lost_ratio",
    "keeps_up",
    "sustained",
    "loadavg1",
    "calib_ms",
    "error",
)
MEDIAN = (
    "modbus_read_dp_per_s",
    "delivered_dp_per_s",
    "sustained_dp_per_s",
    "delivered_ratio",
    "lag_s_p50",
    "gateway_cpu_pct",
    "gateway_rss_mb_max",
    "run_lost_dp",
    "run_lost_ratio",
)


def _plan(full: bool) -> dict[str, Any]:
    if full:
        return {
            "rounds": int(os.environ.get("BENCH_ROUNDS", "2")),
            "warmup_ours": 10.0,
            "warmup_theirs": 15.0,
            "measure": 30.0,
            # more panels until two runs in a row are not sustained
            "sat_ours": [(120, 200), (160, 200), (200, 200), (240, 200), (280, 200), (320, 200)],
            "sat_theirs": [(150, 1000), (200, 1000), (250, 1000), (300, 1000)],
            "loss": [(10, 100), (40, 100), (250, 1000)],
            "outage": 20.0,
            "outage_theirs": True,
        }
    return {
        "rounds": 1,
        "warmup_ours": 5.0,
        "warmup_theirs": 10.0,
        "measure": 15.0,
        # ours: 200 panels at 200 ms, then 250 if that was sustained, else 160
        "sat_ours": [(200, 200), (250, 200), (160, 200)],
        # theirs: 250 panels at 1 s saturates its core even in the VM's fast periods
        "sat_theirs": [(250, 1000)],
        "loss": [(40, 100), (250, 1000)],
        "outage": 10.0,
        "outage_theirs": False,
    }


def sustained(r: dict[str, Any]) -> bool:
    """The same test for both sides: what was read is delivered (>= 95%), the lag stays
    bounded (median < 2 s, not growing by 1 s over the window) and nothing is lost.
    Polls skipped or stretched under load are not readings and do not count against it."""
    if "error" in r:
        return False
    read = r.get("modbus_read_dp_per_s") or 0.0
    first = r.get("lag_s_p50_first10s", r.get("lag_s_p50_first5s")) or 0.0
    last = r.get("lag_s_p50_last10s", r.get("lag_s_p50_last5s")) or 0.0
    return bool(
        read > 0
        and r["delivered_dp_per_s"] >= 0.95 * read
        and (r.get("lag_s_p50") or 0.0) < 2.0
        and last - first < 1.0
        and not r.get("run_lost_dp")
    )


def _safe(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return fn()
    except Exception as exc:  # one failed run is reported, the others still run
        log(f"run failed: {exc!r}")
        return {"error": repr(exc), "keeps_up": False}


def _ours(plan: dict[str, Any], panels: int, poll_ms: int) -> dict[str, Any]:
    s = OursSettings(panels, poll_ms, warmup=plan["warmup_ours"], measure=plan["measure"])
    r = _safe(lambda: run_ours(s))
    return {"panels": panels, "poll_ms": poll_ms, **r}


def _theirs(plan: dict[str, Any], panels: int, poll_ms: int) -> dict[str, Any]:
    warm, meas = plan["warmup_theirs"], plan["measure"]
    args = ["--panels", str(panels), "--regs", "200", "--poll-ms", str(poll_ms)]
    args += ["--warmup", str(warm), "--measure", str(meas)]
    r = _safe(lambda: run_peer("steady", *args, limit=warm + meas + 150))
    return {"panels": panels, "poll_ms": poll_ms, **r}


def _slim(r: dict[str, Any]) -> dict[str, Any]:
    return {k: r[k] for k in KEEP if k in r}


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in runs if "error" not in r]
    out: dict[str, Any] = {"runs": len(ok), "failed_runs": len(runs) - len(ok)}
    if ok:
        out.update(panels=ok[0]["panels"], poll_ms=ok[0]["poll_ms"])
        out["expected_dp_per_s"] = ok[0].get("expected_dp_per_s")
    for k in MEDIAN:
        xs = [float(r[k]) for r in ok if r.get(k) is not None]
        if xs:
            out[k] = round(statistics.median(xs), 4 if "ratio" in k else 3 if "lag" in k else 1)
    out["sustained_runs"] = sum(1 for r in ok if r.get("sustained"))
    cpu, dp = out.get("gateway_cpu_pct"), out.get("delivered_dp_per_s")
    if cpu is not None and dp:
        out["cpu_us_per_delivered_dp"] = round(cpu / 100 / dp * 1e6, 1)
    return out


def _judged(r: dict[str, Any]) -> dict[str, Any]:
    """Marks a run ``sustained`` and adds ``sustained_dp_per_s``: the delivered rate, but
    never above the rate read from the panels (a window may catch up on an earlier lag)."""
    r["sustained"] = sustained(r)
    if "error" not in r:
        read = r.get("modbus_read_dp_per_s") or r["delivered_dp_per_s"]
        r["sustained_dp_per_s"] = round(min(r["delivered_dp_per_s"], read), 1)
    return r


def _sweep(
    plan: dict[str, Any],
    loads: list[tuple[int, int]],
    run: Callable[..., dict[str, Any]],
    adaptive: bool,
) -> list[dict[str, Any]]:
    """Rising loads until two runs in a row are not sustained; ``adaptive`` (the default
    mode's two runs): the first load, then the second if it was sustained, else the third."""
    out: list[dict[str, Any]] = []
    if adaptive:
        first = _judged(run(plan, *loads[0]))
        second = _judged(run(plan, *loads[1 if first["sustained"] else 2]))
        return [first, second]
    misses = 0
    for panels, poll in loads:
        r = _judged(run(plan, panels, poll))
        out.append(r)
        misses = 0 if r["sustained"] else misses + 1
        if misses >= 2:
            break
    return out


def _best(runs: list[dict[str, Any]], only_sustained: bool) -> dict[str, Any] | None:
    ok = [r for r in runs if "error" not in r and (r.get("sustained") or not only_sustained)]
    return max(ok, key=lambda r: r["sustained_dp_per_s"], default=None)


def _ratio(a: Any, b: Any) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def main() -> dict[str, Any]:
    full = os.environ.get("BENCH_FULL", "") not in ("", "0")
    plan = _plan(full)
    t_start = time.time()
    setup = ensure_setup()
    peer = bool(setup["ok"])
    if not peer:
        log(f"peer unavailable ({setup.get('error')}): ours only; run: {setup_command()}")
    ours: dict[str, list[dict[str, Any]]] = {}
    theirs: dict[str, list[dict[str, Any]]] = {}
    sweeps: dict[str, list[list[dict[str, Any]]]] = {"ours": [], "theirs": []}
    for rnd in range(plan["rounds"]):
        log(f"round {rnd + 1} of {plan['rounds']}")
        # saturation: each side's highest sustained delivered rate
        adaptive = not full
        sweep = _sweep(plan, plan["sat_ours"], _ours, adaptive)
        sweeps["ours"].append([_slim(r) for r in sweep])
        best = _best(sweep, only_sustained=True) or _best(sweep, only_sustained=False)
        if best is not None:
            ours.setdefault("saturation", []).append(best)
        if peer:
            tsweep = _sweep(plan, plan["sat_theirs"], _theirs, False)
            sweeps["theirs"].append([_slim(r) for r in tsweep])
            tbest = _best(tsweep, only_sustained=True) or _best(tsweep, only_sustained=False)
            if tbest is not None:
                theirs.setdefault("saturation", []).append(tbest)
            for r in tsweep:  # a run at a loss scenario's load is that scenario's run too
                if (r["panels"], r["poll_ms"]) in plan["loss"] and "error" not in r:
                    theirs.setdefault(f"loss_{r['panels']}x200_{r['poll_ms']}ms", []).append(r)
        for panels, poll in plan["loss"]:
            key = f"loss_{panels}x200_{poll}ms"
            ours.setdefault(key, []).append(_judged(_ours(plan, panels, poll)))
            if peer and len(theirs.get(key, [])) <= rnd:  # not measured in this round yet
                theirs.setdefault(key, []).append(_judged(_theirs(plan, panels, poll)))
    # reconnect after a broker outage (10 panels x 200 at 1 s, as the peer's README)
    outage = plan["outage"]
    o = _safe(
        lambda: run_ours(OursSettings(10, 1000, warmup=5.0, outage=outage, recover=outage + 5))
    )
    reconnect: dict[str, Any] = {"ours": o}
    if peer and plan["outage_theirs"]:
        reconnect["theirs"] = _safe(
            lambda: run_peer(
                "outage",
                "--storage",
                "memory",
                "--panels",
                "10",
                "--outage",
                str(outage),
                "--recover",
                str(outage + 25),
                "--warmup",
                "10",
                limit=outage * 2 + 200,
            )
        )
    summary: dict[str, Any] = {"ours": {}, "theirs": {}}
    for side, runs in (("ours", ours), ("theirs", theirs)):
        for key, rs in runs.items():
            summary[side][key] = _median(rs)
    s_ours = summary["ours"].get("saturation", {}).get("sustained_dp_per_s")
    s_theirs = summary["theirs"].get("saturation", {}).get("sustained_dp_per_s")
    tmax = max(
        (r.get("delivered_dp_per_s", 0) for sw in sweeps["theirs"] for r in sw if "error" not in r),
        default=None,
    )
    figures: dict[str, Any] = {
        "peer_available": peer,
        # median over rounds of each round's best sustained run (min of delivered, read)
        "delivered_dp_per_s_at_saturation": {"ours": s_ours, "theirs": s_theirs},
        "ratio_delivered_at_saturation": _ratio(s_ours, s_theirs),
        "lost_ratio": {
            key: {
                "ours": summary["ours"].get(key, {}).get("run_lost_ratio"),
                "theirs": summary["theirs"].get(key, {}).get("run_lost_ratio"),
            }
            for key in sorted(set(summary["ours"]) | set(summary["theirs"]))
            if key.startswith("loss_")
        },
        "reconnect_s": {
            "ours_first_delivery_after_restart": o.get("first_delivery_after_restart_s"),
            "ours_uplink_connected_after_restart": o.get("uplink_connected_after_restart_s"),
            "ours_lost_dp": o.get("run_lost_dp"),
            "theirs": (reconnect.get("theirs") or {}).get("reconnect_delay_s"),
            "theirs_readme": "15-16 (20 s outage, paho backoff 5..120 s)",
        },
        "summary": summary,
        "sweeps": sweeps,
        "reconnect_runs": {
            k: _slim(v)
            | {
                x: v.get(x)
                for x in (
                    "outage_s",
                    "first_delivery_after_restart_s",
                    "uplink_connected_after_restart_s",
                    "reconnect_delay_s",
                    "lost_dp_total",
                    "run_lost_dp",
                    "duplicate_dp",
                    "backlog_drained_s_after_restart",
                )
                if x in v
            }
            for k, v in reconnect.items()
        },
        "theirs_max_delivered_any_run_dp_per_s": tmax,
        "wall_s": round(time.time() - t_start, 1),
    }
    if not peer:
        figures["peer_setup_required"] = setup_command()
        figures["peer_setup_error"] = setup.get("error")
    settings = {
        "mode": "full" if full else "default",
        "plan": plan,
        "peer": "thingsboard-gateway 3.8.5 (pymodbus 3.9.2), memory storage, no signing, "
        "plain MQTT, QoS 1, reportStrategy ON_RECEIVED, 'range' mode (2 reads per poll)",
        "peer_root": str(PEER_ROOT),
        "peer_setup_s": setup.get("setup_s"),
        "ours": "python -m edgesdk gateway run: modbus-panel per panel (profile "
        "bench/tb_flat_200.toml, analog_every_poll), Ed25519-signed COSE batches of <= 500 "
        "readings, SQLite WAL synchronous=FULL (fsync), QoS 1 over mTLS",
        "emulator": "shared/peers/thingsboard/modbus_emu.py (pymodbus 3.16.1), one process",
        "datapoint": "(device, register, reading time); distinct ones counted at the broker",
    }
    return result(
        "vs-thingsboard",
        figures,
        settings,
        {
            "ratio_delivered_at_saturation": ">= 4 (ours signing and fsyncing)",
            "ours_lost": "0 at 1 s and 100 ms polls (theirs loses 12-38% at 40 x 200, 100 ms)",
            "ours_reconnect_s": "<= 2 after the broker is back",
        },
        notes="2-core VM shared with other work: compare medians of alternating runs; "
        "loadavg1 is recorded per run.",
    )
