"""SenML-JSON and SenML-CBOR encoders and decoders, and label conversion (sans-I/O).

In memory a pack is a list of dicts in either label style; ``vd`` is always ``bytes``
(it becomes base64url text only inside JSON). Decoders check the structure and every known
field's type and reject duplicate keys; encoders do not validate (they sit on the hot path,
and :func:`~edgesdk.senml.resolve` checks what is received).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, NoReturn

import cbor2

from edgesdk.senml._model import (
    CBOR_TO_JSON,
    JSON_TO_CBOR,
    NUMBER_LABELS,
    CborPack,
    Pack,
    SenMLError,
    as_records,
    check_number,
    known_fields,
    label_of,
    show,
)

__all__ = [
    "decode_cbor",
    "decode_json",
    "encode_cbor",
    "encode_json",
    "to_cbor_labels",
    "to_json_labels",
]

_B64URL_RE = re.compile(r"[A-Za-z0-9_-]*")
# A pack is an array of maps; extension values may nest a little. Deeper input is hostile.
_MAX_DEPTH = 32
# What cbor2 raises besides CBORError on hostile input (bad tag contents, huge numbers).
_CBOR_FAILURES = (cbor2.CBORError, ValueError, TypeError, OverflowError, RecursionError)


def _record(rec: Any, index: int) -> Mapping[Any, Any]:
    if not isinstance(rec, Mapping):
        raise SenMLError(f"record {index}: must be a map, got {type(rec).__name__}")
    return rec


def to_cbor_labels(pack: Sequence[Mapping[str, Any]]) -> CborPack:
    """The same pack with CBOR integer labels; extension (unknown) labels stay text."""
    out: CborPack = []
    for i, rec in enumerate(as_records(pack)):
        new: dict[Any, Any] = {}
        for key, value in _record(rec, i).items():
            if not isinstance(key, str):
                raise SenMLError(f"record {i}: JSON labels are text, got {key!r}")
            new[JSON_TO_CBOR.get(key, key)] = value
        out.append(new)
    return out


def to_json_labels(pack: Sequence[Mapping[int, Any]]) -> Pack:
    """The same pack with JSON labels. Integer labels outside RFC 8428's table are rejected."""
    out: Pack = []
    for i, rec in enumerate(as_records(pack)):
        new: dict[str, Any] = {}
        for key, value in _record(rec, i).items():
            if type(key) is int:
                label = CBOR_TO_JSON.get(key)
                if label is None:
                    raise SenMLError(f"record {i}: CBOR label {show(key)} has no JSON label")
            elif isinstance(key, str):
                label = key
            else:
                raise SenMLError(f"record {i}: labels must be text or integers, got {show(key)}")
            if label in new:
                raise SenMLError(f"record {i}: field {label!r} appears twice")
            new[label] = value
        out.append(new)
    return out


def _b64url(data: bytes | bytearray | memoryview) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _from_b64url(text: str, index: int) -> bytes:
    # RFC 8428 section 5: base64url (RFC 4648 section 5) with the padding left out.
    if not _B64URL_RE.fullmatch(text) or len(text) % 4 == 1:
        raise SenMLError(f"record {index}: field 'vd' is not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - the regex rules it out
        raise SenMLError(f"record {index}: field 'vd' is not base64url: {exc}") from exc


def encode_json(pack: Sequence[Mapping[str, Any]]) -> str:
    """SenML-JSON text for a JSON-labelled pack; ``vd`` bytes become unpadded base64url."""
    out: list[dict[str, Any]] = []
    for i, rec in enumerate(as_records(pack)):
        new: dict[str, Any] = {}
        for key, value in _record(rec, i).items():
            if not isinstance(key, str):
                raise SenMLError(
                    f"record {i}: JSON labels are text, got {key!r} (use to_json_labels)"
                )
            if key == "vd":
                if not isinstance(value, bytes | bytearray | memoryview):
                    raise SenMLError(f"record {i}: field 'vd' must be bytes")
                value = _b64url(value)
            new[key] = value
        out.append(new)
    try:
        return json.dumps(out, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        raise SenMLError(f"cannot encode the pack as JSON: {exc}") from exc


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json keeps the last of duplicate keys silently; a signed pack must mean one thing.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise SenMLError(f"duplicate key {key!r} in a JSON object")
            seen.add(key)
    return obj


def _no_constant(name: str) -> NoReturn:
    raise SenMLError(f"JSON constant {name} is not a number SenML allows")


def decode_json(text: str | bytes) -> Pack:
    """Parse SenML-JSON (UTF-8 only, RFC 8428 section 5) into a JSON-labelled pack.

    Rejects invalid JSON, duplicate keys, NaN/Infinity, a top level that is not an array of
    objects, known fields of the wrong type, bad base64url in ``vd`` (returned as bytes),
    must-understand fields and an unsupported ``bver``.
    """
    if isinstance(text, bytes | bytearray | memoryview):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SenMLError(f"SenML-JSON must be UTF-8: {exc}") from exc
    elif not isinstance(text, str):
        raise SenMLError(f"SenML-JSON must be text or bytes, got {type(text).__name__}")
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, int digit limit, nesting
        raise SenMLError(f"not valid JSON: {exc}") from exc
    if not isinstance(data, list):
        raise SenMLError(f"a SenML pack must be an array, got {type(data).__name__}")
    for i, rec in enumerate(data):
        if isinstance(rec, dict) and "vd" in rec:
            if not isinstance(rec["vd"], str):
                raise SenMLError(f"record {i}: field 'vd' must be base64url text")
            rec["vd"] = _from_b64url(rec["vd"], i)
        known_fields(rec, i)
    return data


def encode_cbor(pack: Sequence[Mapping[int, Any]]) -> bytes:
    """Deterministic SenML-CBOR bytes (cbor2 canonical: sorted keys, shortest exact floats)."""
    try:
        return cbor2.dumps(pack if isinstance(pack, list) else list(pack), canonical=True)
    except (cbor2.CBORError, TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise SenMLError(f"cannot encode the pack as CBOR: {exc}") from exc


def _decimal_number(value: Decimal, what: str) -> float:
    # RFC 8428 section 6 lets CBOR carry numbers as decimal fractions (tag 4).
    try:
        number = float(value)
    except (ValueError, OverflowError) as exc:  # signalling NaN
        raise SenMLError(f"{what}: not a usable number: {value!r}") from exc
    return float(check_number(number, what))


def decode_cbor(data: bytes) -> CborPack:
    """Parse SenML-CBOR bytes into a CBOR-labelled pack.

    Rejects malformed or truncated CBOR, trailing bytes, duplicate map keys, nesting deeper
    than 32, a top level that is not an array of maps, known fields of the wrong type,
    must-understand fields and an unsupported ``bver``. Decimal fractions (tag 4) in
    numeric fields become floats.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise SenMLError(f"SenML-CBOR must be bytes, got {type(data).__name__}")
    raw = bytes(data)
    buf = io.BytesIO(raw)
    # Outside the try: on a cbor2 too old for allow_duplicate_keys (< 6.1) this must fail
    # loudly as a TypeError, not pass for "invalid CBOR".
    decoder = cbor2.CBORDecoder(buf, allow_duplicate_keys=False, max_depth=_MAX_DEPTH)
    try:
        obj = decoder.decode()
    except _CBOR_FAILURES as exc:
        raise SenMLError(f"not valid CBOR: {exc}") from exc
    if buf.tell() != len(raw):
        raise SenMLError(f"{len(raw) - buf.tell()} trailing bytes after the CBOR pack")
    if not isinstance(obj, list):
        raise SenMLError(f"a SenML pack must be an array, got {type(obj).__name__}")
    for i, rec in enumerate(obj):
        if isinstance(rec, dict):
            for key, value in list(rec.items()):
                if isinstance(value, Decimal) and label_of(key) in NUMBER_LABELS:
                    rec[key] = _decimal_number(value, f"record {i}: field {label_of(key)!r}")
        known_fields(rec, i)
    return obj
