"""The live terminal dashboard of ``edgectl demo`` (rich), built from verified data only."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from edgesdk.model import Severity
from gateway.demo.stack import EXPECTED, DemoState

__all__ = ["render", "summary"]

_STYLE = {
    Severity.FIRE: "bold white on red",
    Severity.ALARM: "bold red",
    Severity.PREALARM: "bold yellow",
    Severity.SUPERVISORY: "magenta",
    Severity.TROUBLE: "cyan",
    Severity.INFO: "dim",
}


def _firefighters(state: DemoState) -> Table:
    t = Table(title="Firefighters", expand=True)
    for col in (
        "beacon",
        "heart",
        "skin °C",
        "ambient °C",
        "motion mg",
        "SCBA bar",
        "battery",
        "status",
    ):
        t.add_column(col, justify="right" if col != "status" else "left")
    status: dict[str, tuple[str, str]] = {}
    for e in state.active.values():
        b = e.data.get("beacon")
        if b is None or e.severity is Severity.INFO:
            continue
        cur = status.get(str(b))
        if cur is None or _rank(e.severity) < _rank(cur[1]):
            status[str(b)] = (f"{e.kind} ({e.severity.value})", e.severity.value)
    for beacon in sorted(state.vitals, key=int):
        v = state.vitals[beacon]
        text, sev = status.get(beacon, ("ok", "info"))
        t.add_row(
            beacon,
            _fmt(v.get("heart_rate"), "{:.0f}"),
            _fmt(v.get("skin_temp"), "{:.1f}"),
            _fmt(v.get("ambient_temp"), "{:.0f}"),
            _fmt(v.get("motion"), "{:.0f}"),
            _fmt(v.get("scba_pressure"), "{:.0f}"),
            _fmt(v.get("battery"), "{:.0f}%"),
            Text(text, style=_STYLE[Severity(sev)] if sev != "info" else "green"),
        )
    return t


def _rank(sev: Severity | str) -> int:
    return Severity(sev).rank


def _fmt(value: float | None, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def _alarms(state: DemoState) -> Table:
    t = Table(title="Active alarms (verified)", expand=True)
    for col in ("severity", "kind", "source", "detail", "age"):
        t.add_column(col)
    now = time.time()
    events = sorted(state.active.values(), key=lambda e: (e.severity.rank, e.time))
    for e in [e for e in events if e.severity is not Severity.INFO][:12]:
        detail = " ".join(
            f"{k}={v}"
            for k, v in e.data.items()
            if k in ("zone", "beacon", "camera", "score", "point", "unit")
        )
        t.add_row(
            Text(e.severity.value, style=_STYLE[e.severity]),
            e.kind,
            e.source,
            detail,
            f"{max(0.0, now - e.time):.0f}s",
        )
    return t


def _sites(state: DemoState) -> Table:
    t = Table(title="Panel zones and cameras", expand=True)
    t.add_column("where")
    t.add_column("state")
    for zone, kind in sorted(state.zones.items()):
        t.add_row(f"panel1 {zone}", kind)
    for cam, text in sorted(state.cameras.items()):
        t.add_row(f"camera {cam}", text)
    return t


def render(state: DemoState, gateway: Any, *, duration: float, broker: str) -> Group:
    elapsed = time.time() - state.started
    up = gateway.uplink.stats if gateway is not None else None
    link = "[green]connected[/]" if up is not None and up.connected else "[red]down[/]"
    signed = gateway.counters.signatures if gateway is not None else 0
    head = Text.from_markup(
        f"[bold]edgesdk demo[/]  site demo / gw1   {elapsed:4.0f}s of {duration:.0f}s   "
        f"broker {broker} {link}   signed {signed}  verified {state.batches_verified} "
        f"batches / {state.readings_verified} readings   rejected "
        f"{sum(state.rejected.values())}"
    )
    expected = " ".join(
        (f"[green]✓ {k} {s.value}[/]" if (k, s.value) in state.seen else f"[dim]… {k} {s.value}[/]")
        for k, s in EXPECTED
    )
    return Group(
        Panel(head),
        _alarms(state),
        _firefighters(state),
        _sites(state),
        Text.from_markup("expected: " + expected),
        Panel("\n".join(state.log) or "starting…", title="log"),
    )


def summary(state: DemoState, gateway: Any) -> dict[str, Any]:
    """The end-of-run summary (also the ``--json`` output)."""
    first = {f"{k}/{s}": round(t - state.started, 1) for (k, s), t in sorted(state.seen.items())}
    return {
        "ok": not state.missing() and not state.rejected,
        "missing": state.missing(),
        "expected": [f"{k}/{s.value}" for k, s in EXPECTED],
        "first_seen_s": first,
        "batches_signed": gateway.counters.signatures if gateway is not None else 0,
        "batches_verified": state.batches_verified,
        "readings_verified": state.readings_verified,
        "rejected": state.rejected,
        "keys_learned": state.keys_learned,
    }
