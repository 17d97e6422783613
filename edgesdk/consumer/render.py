"""Outcomes as text: the human lines and JSON records ``edgectl verify`` prints.

Human lines start with a UTC time and the gateway, e.g.
``2026-11-21T06:40:01Z hq/gw1 alarm#12 FIRE active panel1 fire {zone: 2}``; JSON records
carry a ``type`` (``event``, ``reading``, ``state``, ``snapshot``, ``batch``, ``lost``,
``anomaly``, ``rejected``, ``key``, ``summary``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import time
from collections.abc import Mapping
from typing import Any

from edgesdk.batch import Batch
from edgesdk.consumer.outcomes import (
    ConsumerAnomaly,
    KeyLearned,
    Outcome,
    Rejected,
    Summary,
)
from edgesdk.verify import Conflict, Gap, Reordered

__all__ = ["outcome_lines", "outcome_records", "summary_lines", "utc"]

_TOKEN = re.compile(r"[A-Za-z0-9_.:/%+-]{1,64}")


def utc(t: float) -> str:
    """Epoch seconds as ``2026-11-21T06:40:01Z`` (whole seconds; out-of-range: raw)."""
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
    except (OverflowError, OSError, ValueError):
        return repr(t)


def _value(v: Any) -> str:
    if isinstance(v, str):
        return v if _TOKEN.fullmatch(v) else json.dumps(v)
    if isinstance(v, bytes):
        return f"<{len(v)} bytes>"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{k}: {_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return json.dumps(v) if isinstance(v, bool) or v is None else str(v)


def _plain(v: Any) -> Any:
    """JSON-safe: bytes as hex, non-finite floats as text."""
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


def _head(b: Batch) -> dict[str, Any]:
    return {"site": b.site, "gw": b.gw, "stream": b.stream, "seq": b.seq, "kid": b.kid.hex()}


def _where(b: Batch) -> str:
    return f"{b.site}/{b.gw} {b.stream}#{b.seq}"


def _anomaly_text(a: ConsumerAnomaly) -> str:
    if isinstance(a, Gap):
        how = "accounted" if a.accounted else "unexplained"
        return f"GAP {a.first}..{a.last} ({a.count} missing, {how})"
    if isinstance(a, Reordered):
        return "REORDERED (fills a gap)" if a.filled_gap else "REORDERED"
    if isinstance(a, Conflict):
        return f"CONFLICT seq {a.seq}: a different batch was seen before"
    extra = {"duplicate": " (replayed or redelivered)", "repeated": " (current state again)"}
    return f"{a.kind.upper()} seq {getattr(a, 'seq', '?')}{extra.get(a.kind, '')}"


def _anomaly_record(a: ConsumerAnomaly) -> dict[str, Any]:
    fields = {f.name: getattr(a, f.name) for f in dataclasses.fields(a) if f.name != "key"}
    site, gw, stream = a.key
    record: dict[str, Any] = _plain(
        {"type": "anomaly", "kind": a.kind, "site": site, "gw": gw, "stream": stream, **fields}
    )
    return record


def _state_text(b: Batch) -> str | None:
    birth, death = b.extra.get("birth"), b.extra.get("death")
    if isinstance(birth, Mapping):
        devices = ",".join(
            str(d.get("name")) for d in birth.get("devices", []) if isinstance(d, Mapping)
        )
        active = birth.get("active", [])
        return (
            f"BIRTH version {birth.get('version', '?')} boot {birth.get('boot', b.boot)} "
            f"devices {devices or '-'} active {len(active) if isinstance(active, list) else '?'}"
        )
    if isinstance(death, Mapping):
        return f"DEATH {death.get('reason', '?')} boot {death.get('boot', b.boot)}"
    return None


def _snapshot_text(b: Batch) -> str | None:
    snap = b.extra.get("snapshot")
    if not isinstance(snap, Mapping):
        return None
    data = snap.get("data")
    size = len(data) if isinstance(data, bytes) else 0
    return (
        f"SNAPSHOT {snap.get('camera', '?')} event {snap.get('event', '?')} "
        f"{snap.get('content_type', '?')} {size} bytes"
    )


def outcome_lines(o: Outcome, *, now: float | None = None) -> list[str]:
    """Human lines: one per event, reading, state change, lost notice and anomaly."""
    now = time.time() if now is None else now
    if isinstance(o, Rejected):
        return [f"{utc(now)} REJECTED {o.reason} {o.topic}: {o.detail}"]
    if isinstance(o, KeyLearned):
        which = "previous key" if o.previous else "key"
        return [
            f"{utc(now)} {o.site}/{o.gw} KEY learned {which} {o.kid.hex()} ({o.subject}, "
            f"valid to {o.not_after.strftime('%Y-%m-%dT%H:%M:%SZ')})"
        ]
    b = o.batch
    where = _where(b)
    lines = [
        f"{utc(e.time)} {where} {e.severity.value.upper()} {e.state.value} {e.source} {e.kind} "
        f"{_value(e.data)}"
        for e in b.events
    ]
    lines += [
        f"{utc(r.time)} {where} {r.device} {r.name} = {_value(r.value)}"
        + (f" {r.unit}" if r.unit else "")
        for r in b.readings
    ]
    for text in (_state_text(b), _snapshot_text(b)):
        if text is not None:
            lines.append(f"{utc(b.t)} {where} {text}")
    lines += [f"{utc(b.t)} {where} LOST {x.stream} {x.first}..{x.last} {x.reason}" for x in b.lost]
    if not lines:
        lines.append(f"{utc(b.t)} {where} (empty batch)")
    lines += [f"{utc(b.t)} {where} {_anomaly_text(a)}" for a in o.anomalies]
    return lines


def outcome_records(o: Outcome, *, now: float | None = None) -> list[dict[str, Any]]:
    """JSON records (one per line when printed), the same items as :func:`outcome_lines`."""
    now = time.time() if now is None else now
    if isinstance(o, Rejected):
        return [
            {
                "type": "rejected",
                "time": now,
                "topic": o.topic,
                "reason": o.reason,
                "detail": o.detail,
            }
        ]
    if isinstance(o, KeyLearned):
        return [
            {
                "type": "key",
                "time": now,
                "site": o.site,
                "gw": o.gw,
                "kid": o.kid.hex(),
                "subject": o.subject,
                "not_before": o.not_before.isoformat(),
                "not_after": o.not_after.isoformat(),
                "previous": o.previous,
            }
        ]
    b = o.batch
    head = _head(b)
    out: list[dict[str, Any]] = [
        {
            "type": "event",
            **head,
            "id": e.id,
            "kind": e.kind,
            "severity": e.severity.value,
            "state": e.state.value,
            "source": e.source,
            "time": e.time,
            "data": e.data,
        }
        for e in b.events
    ]
    out += [
        {
            "type": "reading",
            **head,
            "device": r.device,
            "name": r.name,
            "value": r.value,
            "unit": r.unit,
            "time": r.time,
        }
        for r in b.readings
    ]
    for key in ("birth", "death"):
        if isinstance(b.extra.get(key), Mapping):
            body = {k: v for k, v in b.extra[key].items() if k not in ("cert", "previous_certs")}
            out.append({"type": "state", **head, "time": b.t, "kind": key, **body})
    snap = b.extra.get("snapshot")
    if isinstance(snap, Mapping):
        body = {k: v for k, v in snap.items() if k != "data"}
        out.append({"type": "snapshot", **head, "time": b.t, **body})
    out += [
        {
            "type": "lost",
            **head,
            "time": b.t,
            "lost_stream": x.stream,
            "first": x.first,
            "last": x.last,
            "reason": x.reason,
        }
        for x in b.lost
    ]
    if not out:
        out.append({"type": "batch", **head, "time": b.t})
    out += [_anomaly_record(a) for a in o.anomalies]
    return [_plain(r) for r in out]


def summary_lines(s: Summary) -> list[str]:
    """The end-of-run summary, one counter per line."""
    reasons = ", ".join(f"{r} {n}" for r, n in sorted(s.rejected.items()) if r != "unknown-key")
    open_gaps = [
        f"  {'/'.join(g.key)} {g.first}..{g.last} {'accounted' if g.accounted else 'UNEXPLAINED'}"
        for g in s.gaps
    ]
    return [
        "summary:",
        f"  messages             {s.messages}",
        f"  batches verified     {s.verified}",
        f"  invalid              {s.invalid}" + (f" ({reasons})" if reasons else ""),
        f"  unknown key          {s.unknown_key}",
        f"  keys learned         {s.keys_learned}",
        f"  duplicates           {s.duplicates}"
        + (" (replayed or redelivered)" if s.duplicates else ""),
        f"  repeats              {s.repeats} (current state re-sent: harmless)",
        f"  conflicts            {s.conflicts}",
        f"  broken chain         {s.broken_chain}",
        f"  boot regressions     {s.boot_regressions}",
        f"  reordered            {s.reordered}",
        f"  gaps accounted       {s.gaps_accounted} batches",
        f"  gaps unexplained     {s.gaps_unexplained} batches",
        f"  events               {s.events}",
        f"  readings             {s.readings}",
        *open_gaps,
    ]
