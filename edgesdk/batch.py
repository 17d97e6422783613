"""The signed-batch wire format: what a gateway sends upstream (``docs/wire-format.md``).

Every message is a COSE_Sign1 (tag 18) whose protected header is
``{1: alg, 3: "application/vnd.edgesdk.batch+cbor", 4: kid}`` and whose payload is a
deterministically encoded CBOR map with text keys (``v``, ``site``, ``gw``, ``stream``,
``seq``, ``prev``, ``boot``, ``t``, ``senml``, ``events`` and optionally ``lost``). The
``prev`` hash chain and per-stream ``seq`` let a consumer prove that nothing was lost,
reordered or forged (see :mod:`edgesdk.verify`).

Sans-I/O: :func:`seal` returns bytes, :func:`decode` takes bytes. :func:`decode` does **not**
verify the signature (use :class:`edgesdk.verify.Verifier`); it raises
:class:`~edgesdk.errors.ProtocolError` for anything malformed, never ``KeyError`` or
``TypeError``. Encoding-side misuse (``seq`` 0, a ``prev`` of the wrong size, an ``extra``
key that shadows a standard one) raises :class:`ValueError`, like :mod:`edgesdk.model`.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import cbor2
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from edgesdk import cose
from edgesdk.errors import ProtocolError, SignatureError
from edgesdk.model import Event, EventState, Reading, ReadingBlock, Severity
from edgesdk.senml import SenMLError, encode_readings, unpack_readings

__all__ = [
    "CONTENT_TYPE",
    "FORMAT_VERSION",
    "KID_SIZE",
    "ZERO_DIGEST",
    "Batch",
    "BatchHeader",
    "LostRange",
    "batch_from_parts",
    "check_envelope",
    "decode",
    "decode_payload",
    "digest",
    "encode_payload",
    "kid_for",
    "seal",
    "valid_name",
]

CONTENT_TYPE = "application/vnd.edgesdk.batch+cbor"
FORMAT_VERSION = 1
KID_SIZE = 16
ZERO_DIGEST = bytes(32)
"""``prev`` of a stream's first batch (seq 1)."""

_UINT_MAX = 2**64 - 1
# site, gw and stream names travel in MQTT topics and in the certificate SAN
# urn:edge:{site}:{gw}, so they exclude "/", "+", "#" and ":".
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_STANDARD_KEYS = frozenset(
    {"v", "site", "gw", "stream", "seq", "prev", "boot", "t", "senml", "events", "lost"}
)
_EVENT_KEYS = frozenset({"id", "kind", "sev", "state", "src", "t", "data"})
_LOST_KEYS = frozenset({"stream", "first", "last", "reason"})
_MAX_DATA_DEPTH = 16


def valid_name(value: object) -> bool:
    """Whether ``value`` may be a site, gateway or stream name (1-64 of A-Z a-z 0-9 . _ -)."""
    return isinstance(value, str) and _NAME_RE.fullmatch(value) is not None


def kid_for(public_key: cose.PublicKey) -> bytes:
    """The key id: the first 16 bytes of SHA-256 over the SubjectPublicKeyInfo DER."""
    der = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).digest()[:KID_SIZE]


def digest(message: bytes) -> bytes:
    """SHA-256 of a complete signed message: the next batch's ``prev``."""
    return hashlib.sha256(message).digest()


@dataclass(frozen=True, slots=True)
class BatchHeader:
    """Who sealed a batch, in which stream, where in the chain; ``t`` defaults to now."""

    site: str
    gw: str
    stream: str
    seq: int
    prev: bytes
    boot: int
    t: float | None = None


@dataclass(frozen=True, slots=True)
class LostRange:
    """A notice that seqs ``first..last`` (inclusive) of ``stream`` will never be sent."""

    stream: str
    first: int
    last: int
    reason: str


@dataclass(frozen=True, slots=True)
class Batch:
    """A decoded batch. Trusted only when it came from :meth:`Verifier.verify`.

    ``digest`` is SHA-256 of ``raw`` (the complete message), i.e. the next batch's ``prev``;
    ``extra`` holds payload keys this version does not define (forward compatibility) and
    the documented optional keys (``birth``, ``death``).
    """

    site: str
    gw: str
    stream: str
    seq: int
    prev: bytes
    boot: int
    t: float
    readings: tuple[Reading, ...]
    events: tuple[Event, ...]
    lost: tuple[LostRange, ...]
    kid: bytes
    alg: int
    digest: bytes
    raw: bytes
    extra: Mapping[str, Any]


# --- encoding ---------------------------------------------------------------------------


def _check_header(header: BatchHeader) -> float:
    for name in ("site", "gw", "stream"):
        value = getattr(header, name)
        if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
            raise ValueError(f"{name} {value!r} must be 1-64 of A-Z a-z 0-9 . _ - (letter first)")
    seq, boot, prev = header.seq, header.boot, header.prev
    if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= _UINT_MAX:
        raise ValueError(f"seq must be an integer >= 1, got {seq!r}")
    if isinstance(boot, bool) or not isinstance(boot, int) or not 0 <= boot <= _UINT_MAX:
        raise ValueError(f"boot must be an integer >= 0, got {boot!r}")
    if not isinstance(prev, bytes) or len(prev) != 32:
        raise ValueError("prev must be 32 bytes (SHA-256 of the previous message)")
    if (seq == 1) != (prev == ZERO_DIGEST):
        raise ValueError("prev must be 32 zero bytes exactly when seq is 1")
    t = time.time() if header.t is None else float(header.t)
    if not math.isfinite(t) or t < 0:
        raise ValueError(f"t must be finite epoch seconds, got {t!r}")
    return t


def _event_map(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "kind": event.kind,
        "sev": event.severity.value,
        "state": event.state.value,
        "src": event.source,
        "t": float(event.time),
        "data": dict(event.data),
    }


def _lost_map(lost: LostRange) -> dict[str, Any]:
    if not _NAME_RE.fullmatch(lost.stream) or not 1 <= lost.first <= lost.last <= _UINT_MAX:
        raise ValueError(f"bad lost range {lost!r}: need a valid stream and 1 <= first <= last")
    return {"stream": lost.stream, "first": lost.first, "last": lost.last, "reason": lost.reason}


def _map_head(count: int) -> bytes:
    # cbor2 writes no bare map head; an unsigned int's head (major type 0) with the major
    # type bits set to 5 is one (RFC 8949 section 3).
    uint = cbor2.dumps(count)
    return bytes((uint[0] | 0xA0,)) + uint[1:]


def _canonical_order(entry: tuple[bytes, bytes]) -> tuple[int, bytes]:
    # cbor2's canonical order: encoded key length first, then the encoded bytes
    return len(entry[0]), entry[0]


_KEY_BYTES = {key: cbor2.dumps(key) for key in _STANDARD_KEYS}


def encode_payload(
    header: BatchHeader,
    *,
    readings: Sequence[Reading | ReadingBlock] = (),
    events: Sequence[Event] = (),
    lost: Sequence[LostRange] = (),
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """The deterministically encoded (RFC 8949 section 4.2) payload map.

    Exactly ``cbor2.dumps(payload, canonical=True)`` of the payload dict, assembled by
    hand: the readings, which are most of a batch and of the gateway's time, come from
    :func:`edgesdk.senml.encode_readings` (already deterministic bytes; cbor2 cannot
    splice those into a map), every other value from ``cbor2.dumps(canonical=True)``, and
    the entries are sorted by their encoded keys as cbor2 sorts them. A test compares the
    result with cbor2's over generated batches.
    """
    t = _check_header(header)
    try:
        entries: dict[str, bytes] = {
            "v": _dumps(FORMAT_VERSION),
            "site": _dumps(header.site),
            "gw": _dumps(header.gw),
            "stream": _dumps(header.stream),
            "seq": _dumps(header.seq),
            "prev": _dumps(header.prev),
            "boot": _dumps(header.boot),
            "t": _dumps(t),
            "senml": encode_readings(readings),
            "events": _dumps([_event_map(e) for e in events]),
        }
        if lost:
            entries["lost"] = _dumps([_lost_map(x) for x in lost])
        pairs = [(_KEY_BYTES[key], value) for key, value in entries.items()]
        if extra:
            clash = _STANDARD_KEYS & extra.keys()
            if clash:
                raise ValueError(f"extra keys {sorted(clash)} would replace standard payload keys")
            for key in extra:
                if not isinstance(key, str):
                    raise ValueError(f"extra keys are text, got {key!r}")
            pairs.extend((_dumps(key), _dumps(value)) for key, value in extra.items())
    except (cbor2.CBOREncodeError, SenMLError) as exc:
        raise ValueError(f"batch payload cannot be encoded: {exc}") from exc
    pairs.sort(key=_canonical_order)  # stable, as cbor2's sorted()
    return b"".join([_map_head(len(pairs)), *(key + value for key, value in pairs)])


def _dumps(value: Any) -> bytes:
    return cbor2.dumps(value, canonical=True)


def seal(
    header: BatchHeader,
    *,
    key: cose.PrivateKey,
    readings: Sequence[Reading | ReadingBlock] = (),
    events: Sequence[Event] = (),
    lost: Sequence[LostRange] = (),
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """Encode and sign one batch; returns the complete COSE_Sign1 message."""
    payload = encode_payload(header, readings=readings, events=events, lost=lost, extra=extra)
    protected = {cose.HDR_CONTENT_TYPE: CONTENT_TYPE, cose.HDR_KID: kid_for(key.public_key())}
    return cose.sign1(payload, key, protected=protected)


# --- decoding ---------------------------------------------------------------------------


def _text(value: Any, where: str, *, name: bool = False) -> str:
    if not isinstance(value, str) or not value:
        raise ProtocolError(f"{where} must be non-empty text, got {type(value).__name__}")
    if name and not _NAME_RE.fullmatch(value):
        raise ProtocolError(f"{where} {value!r} is not a valid name")
    return value


def _uint(value: Any, where: str, *, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError(f"{where} must be an unsigned integer, got {type(value).__name__}")
    if not low <= value <= _UINT_MAX:
        raise ProtocolError(f"{where} must be >= {low}, got {value}")
    return value


def _time(value: Any, where: str) -> float:
    if not isinstance(value, float) or not math.isfinite(value) or value < 0:
        raise ProtocolError(f"{where} must be a finite non-negative float, got {value!r}")
    return value


def _plain(value: Any, where: str, depth: int = 0) -> None:
    """Event data and documented extras hold plain CBOR values only (see DataValue)."""
    if depth > _MAX_DATA_DEPTH:
        raise ProtocolError(f"{where} nests too deeply")
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _plain(item, f"{where}[{i}]", depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ProtocolError(f"{where} has a non-text key {key!r}")
            _plain(item, f"{where}.{key}", depth + 1)
        return
    raise ProtocolError(f"{where} holds an unsupported value ({type(value).__name__})")


def _map(value: Any, where: str, keys: frozenset[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProtocolError(f"{where} must be a map, got {type(value).__name__}")
    if value.keys() != keys:
        missing, unknown = keys - value.keys(), value.keys() - keys
        raise ProtocolError(
            f"{where}: missing {sorted(missing)}, unknown {sorted(map(repr, unknown))}"
        )
    return value


def _event(value: Any, where: str) -> Event:
    m = _map(value, where, _EVENT_KEYS)
    sev, state, data = m["sev"], m["state"], m["data"]
    if not isinstance(sev, str) or sev not in Severity._value2member_map_:
        raise ProtocolError(f"{where}.sev {sev!r} is not a known severity")
    if not isinstance(state, str) or state not in EventState._value2member_map_:
        raise ProtocolError(f"{where}.state {state!r} is not a known event state")
    if not isinstance(data, dict):
        raise ProtocolError(f"{where}.data must be a map")
    _plain(data, f"{where}.data")
    return Event(
        kind=_text(m["kind"], f"{where}.kind"),
        severity=Severity(sev),
        state=EventState(state),
        source=_text(m["src"], f"{where}.src"),
        time=_time(m["t"], f"{where}.t"),
        data=data,
        id=_text(m["id"], f"{where}.id"),
    )


def _lost(value: Any, where: str) -> LostRange:
    m = _map(value, where, _LOST_KEYS)
    first = _uint(m["first"], f"{where}.first", low=1)
    last = _uint(m["last"], f"{where}.last", low=1)
    if last < first:
        raise ProtocolError(f"{where}: last {last} < first {first}")
    reason = m["reason"]
    if not isinstance(reason, str):
        raise ProtocolError(f"{where}.reason must be text")
    return LostRange(_text(m["stream"], f"{where}.stream", name=True), first, last, reason)


def _array(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ProtocolError(f"{where} must be an array, got {type(value).__name__}")
    return value


def _check_extra(extra: dict[str, Any]) -> None:
    """Extensions hold plain values; the documented ones (birth, death) have typed fields.

    Only the fields a consumer relies on are checked (the signing certificate above all);
    the gateway may add more inside ``birth`` and ``death`` without a format change.
    """
    for key, value in extra.items():
        _plain(value, key)
    birth = extra.get("birth")
    if birth is not None:
        if not isinstance(birth, dict):
            raise ProtocolError("birth must be a map")
        _typed(birth, "birth", "version", str, "text")
        _typed(birth, "birth", "boot", int, "an unsigned integer")
        _typed(birth, "birth", "devices", list, "an array")
        _typed(birth, "birth", "cert", bytes, "a byte string (X.509 DER)")
        _typed(birth, "birth", "previous_certs", list, "an array of byte strings")
        if not all(isinstance(c, bytes) for c in birth.get("previous_certs", [])):
            raise ProtocolError("birth.previous_certs must be an array of byte strings")
    death = extra.get("death")
    if death is not None:
        if not isinstance(death, dict):
            raise ProtocolError("death must be a map")
        _typed(death, "death", "reason", str, "text")
        _typed(death, "death", "boot", int, "an unsigned integer")


def _typed(m: dict[str, Any], where: str, key: str, kind: type, what: str) -> None:
    if key not in m:
        return
    value = m[key]
    if kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise ProtocolError(f"{where}.{key} must be {what}")


def decode_payload(payload: bytes) -> dict[str, Any]:
    """Strictly decode and validate a payload; returns Batch fields (without envelope ones).

    Raises :class:`~edgesdk.errors.ProtocolError` on any malformed or out-of-range field.
    """
    body = cose.loads_strict(payload)
    if not isinstance(body, dict):
        raise ProtocolError(f"payload must be a map, got {type(body).__name__}")
    for key in body:
        if not isinstance(key, str):
            raise ProtocolError(f"payload keys are text, got {key!r}")
    missing = (_STANDARD_KEYS - {"lost"}) - body.keys()
    if missing:
        raise ProtocolError(f"payload lacks {sorted(missing)}")
    version = body["v"]
    if isinstance(version, bool) or version != FORMAT_VERSION:
        raise ProtocolError(f"unsupported batch format version {version!r} (this is v1)")
    seq = _uint(body["seq"], "seq", low=1)
    prev = body["prev"]
    if not isinstance(prev, bytes) or len(prev) != 32:
        raise ProtocolError("prev must be a 32-byte string")
    if (seq == 1) != (prev == ZERO_DIGEST):
        raise ProtocolError(f"prev must be all zero exactly when seq is 1 (seq {seq})")
    senml = _array(body["senml"], "senml")
    try:
        readings = tuple(unpack_readings(senml))
    except ProtocolError:
        raise
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise ProtocolError(f"senml: {exc}") from exc
    events = tuple(
        _event(e, f"events[{i}]") for i, e in enumerate(_array(body["events"], "events"))
    )
    lost = tuple(_lost(x, f"lost[{i}]") for i, x in enumerate(_array(body.get("lost", []), "lost")))
    extra = {k: v for k, v in body.items() if k not in _STANDARD_KEYS}
    _check_extra(extra)
    return {
        "site": _text(body["site"], "site", name=True),
        "gw": _text(body["gw"], "gw", name=True),
        "stream": _text(body["stream"], "stream", name=True),
        "seq": seq,
        "prev": prev,
        "boot": _uint(body["boot"], "boot"),
        "t": _time(body["t"], "t"),
        "readings": readings,
        "events": events,
        "lost": lost,
        "extra": MappingProxyType(extra),
    }


def check_envelope(sign: cose.Sign1) -> tuple[int, bytes, bytes]:
    """(alg, kid, payload) of a parsed message, checked against the batch profile."""
    if sign.protected.get(cose.HDR_CONTENT_TYPE) != CONTENT_TYPE:
        raise ProtocolError(f"content type is not {CONTENT_TYPE!r} in the protected header")
    alg = sign.protected.get(cose.HDR_ALG)
    if isinstance(alg, bool) or not isinstance(alg, int):
        raise ProtocolError("alg must be an integer in the protected header")
    kid = sign.protected.get(cose.HDR_KID)
    if not isinstance(kid, bytes) or len(kid) != KID_SIZE:
        raise ProtocolError(f"kid must be {KID_SIZE} bytes in the protected header")
    if sign.payload is None:
        raise ProtocolError("a batch never has a detached payload")
    return alg, kid, sign.payload


def batch_from_parts(message: bytes, alg: int, kid: bytes, payload: bytes) -> Batch:
    """A :class:`Batch` from an envelope's parts (shared by :func:`decode` and the verifier)."""
    return Batch(
        **decode_payload(payload), kid=kid, alg=alg, digest=digest(message), raw=bytes(message)
    )


def decode(message: bytes) -> Batch:
    """Parse a signed batch **without verifying** it (for ``edgectl decode`` and tooling)."""
    try:
        sign = cose.parse1(message)
    except SignatureError as exc:
        raise ProtocolError(f"not a signed batch: {exc}") from exc
    alg, kid, payload = check_envelope(sign)
    return batch_from_parts(message, alg, kid, payload)
