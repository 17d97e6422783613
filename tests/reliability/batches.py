"""Hostile signed batches: broken payload maps behind valid signatures, mutants, junk.

Shared by the batch, verifier and consumer fuzz tests. A broken payload is signed by a real
key (:func:`tests.reliability.signed.sign` signs anything), so it passes the signature and
reaches every payload check the verifier runs after it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import cbor2
from hypothesis import strategies as st

from edgesdk import cose
from edgesdk.verify import TrustedKey, Verifier
from tests.reliability.hostile import cbor_bytes, cbor_values, mutants, scalars
from tests.reliability.signed import (
    GW1,
    GW2,
    P256,
    STRANGER,
    T_VALID,
    BatchKey,
    certificate,
    der,
    envelope,
    kid,
    payload_map,
    reading_records,
    seal_map,
    sign,
)

__all__ = [
    "SIGNERS",
    "VALID",
    "VALID_PAYLOADS",
    "hostile",
    "hostile_payloads",
    "signed_messages",
    "verifier",
]

SIGNERS: dict[str, BatchKey] = {"gw1": GW1, "gw2": GW2, "p256": P256, "stranger": STRANGER}


def verifier() -> Verifier:
    """gw1's key bound to hq/gw1 and 2020-2040; gw2's and the P-256 key unbound."""
    start, end = dt.datetime(2020, 1, 1, tzinfo=dt.UTC), dt.datetime(2040, 1, 1, tzinfo=dt.UTC)
    bound = TrustedKey(GW1.public_key(), "hq", "gw1", start, end, "gw1 certificate")
    return Verifier({kid(GW1): bound, kid(GW2): GW2.public_key(), kid(P256): P256.public_key()})


# Values at the edges of what each field allows, and of the wrong types.
_EDGES = st.sampled_from(
    [0, -1, 1, 2**64 - 1, True, 1.0, float("nan"), float("inf"), -0.0, 1e300, "", "a/b"]
)
_EDGES |= st.sampled_from(["x" * 65, "ok", b"", bytes(31), bytes(32), None, [], {}, [{}], {"": 1}])
hostile = st.one_of(_EDGES, scalars, cbor_values)
"""A value for any field: edge cases of the right type, and every wrong type."""
_TOP = ["v", "site", "gw", "stream", "seq", "prev", "boot", "t", "senml", "events", "lost"]
_EVENT = ["id", "kind", "sev", "state", "src", "t", "data"]
_LOST = ["stream", "first", "last", "reason"]


@st.composite
def hostile_payloads(draw: st.DrawFn) -> Any:
    """A valid payload map with 0-3 things broken, or (rarely) no map at all."""
    if draw(st.integers(0, 19)) == 0:
        return draw(cbor_values)
    body = payload_map(
        site=draw(st.sampled_from(["hq", "other"])),
        gw=draw(st.sampled_from(["gw1", "gw2"])),
        stream=draw(st.sampled_from(["telemetry", "state"])),
        seq=draw(st.sampled_from([1, 2, 7])),
        t=draw(st.sampled_from([T_VALID, 0.0, 1e300, 4e9])),
    )
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["drop", "set", "extra", "event", "lost", "senml", "ext"]))
        if op == "drop":
            body.pop(draw(st.sampled_from(_TOP)), None)
        elif op == "set":
            body[draw(st.sampled_from(_TOP))] = draw(hostile)
        elif op == "extra":
            body[draw(st.one_of(st.text(max_size=6), scalars))] = draw(hostile)
        elif op == "event":
            events = body.get("events")
            first = events[0] if isinstance(events, list) and events else None
            event = dict(first) if isinstance(first, dict) else {}
            event[draw(st.sampled_from([*_EVENT, "x"]))] = draw(hostile)
            body["events"] = [event]
        elif op == "lost":
            body["lost"] = [{k: draw(hostile) if draw(st.booleans()) else 1 for k in _LOST}]
        elif op == "senml":
            records = reading_records()
            records[0][draw(st.integers(-6, 8))] = draw(hostile)
            body["senml"] = records
        else:
            body[draw(st.sampled_from(["birth", "death"]))] = draw(_extension())
    return body


@st.composite
def _extension(draw: st.DrawFn) -> Any:
    """A birth or death map with right and wrong field types."""
    fields = {
        "cert": st.sampled_from([der(certificate(GW1)), b"not DER"]),
        "previous_certs": st.lists(st.binary(max_size=8), max_size=2),
        "boot": st.integers(0, 3),
        "version": st.just("1.0"),
        "devices": st.just([]),
        "reason": st.just("shutdown"),
    }
    out = {k: draw(s | hostile) for k, s in fields.items() if draw(st.booleans())}
    return out if draw(st.integers(0, 9)) else draw(hostile)


VALID = [
    seal_map(payload_map(seq=1), GW1),
    seal_map(payload_map(seq=2, extra={"birth": {"cert": der(certificate(GW1)), "boot": 1}}), GW1),
    seal_map(payload_map(gw="gw2", stream="state", seq=7), GW2),
    seal_map(payload_map(site="other", gw="x"), P256),
]
VALID_PAYLOADS = {cose.parse1(m).payload for m in VALID}


@st.composite
def signed_messages(draw: st.DrawFn) -> tuple[bytes, bytes | None]:
    """(message, payload signed for it by a real key, or None for mutants and junk)."""
    kind = draw(st.integers(0, 9))
    if kind < 6:
        payload = cbor2.dumps(draw(hostile_payloads()))
        key = SIGNERS[draw(st.sampled_from(sorted(SIGNERS)))]
        return sign(payload, key, envelope(key)), payload
    if kind < 9:
        return draw(mutants(VALID)), None
    return draw(cbor_bytes()), None
