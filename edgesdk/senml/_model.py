"""SenML types, label tables and the per-field checks shared by the decoders and resolve().

Every check lives here once so that ``decode_json``, ``decode_cbor`` and ``resolve`` reject
exactly the same things with the same messages.
"""

from __future__ import annotations

import re
import reprlib
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from edgesdk.errors import ProtocolError

__all__ = [
    "BASE_LABELS",
    "CBOR_TO_JSON",
    "JSON_TO_CBOR",
    "NUMBER_LABELS",
    "SUPPORTED_VERSION",
    "TEXT_LABELS",
    "CborPack",
    "Pack",
    "Record",
    "SenMLError",
    "as_records",
    "check_number",
    "known_fields",
    "label_of",
    "show",
    "valid_name",
]

SUPPORTED_VERSION = 10
"""The SenML version this module implements (RFC 8428); a higher ``bver`` is rejected."""

JSON_TO_CBOR: dict[str, int] = {
    "bver": -1,
    "bn": -2,
    "bt": -3,
    "bu": -4,
    "bv": -5,
    "bs": -6,
    "n": 0,
    "u": 1,
    "v": 2,
    "vs": 3,
    "vb": 4,
    "s": 5,
    "t": 6,
    "ut": 7,
    "vd": 8,
}
"""RFC 8428 section 6, table 6. The RFC says the table is final: extensions use text labels."""

CBOR_TO_JSON: dict[int, str] = {v: k for k, v in JSON_TO_CBOR.items()}

BASE_LABELS = frozenset({"bver", "bn", "bt", "bu", "bv", "bs"})
TEXT_LABELS = frozenset({"bn", "bu", "n", "u", "vs"})
NUMBER_LABELS = frozenset({"bt", "bv", "bs", "v", "s", "t", "ut"})

Pack: TypeAlias = list[dict[str, Any]]
"""A SenML pack with JSON labels ("bn", "n", "v"...); ``vd`` values are ``bytes``."""

CborPack: TypeAlias = list[dict[int, Any]]
"""A SenML pack with CBOR integer labels (bn -2, n 0, v 2...); extension labels stay text."""

# RFC 8428 section 4.5.1. fullmatch, not match + "$": "$" would accept a trailing newline.
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-:./_]*")
_FLOAT_MAX = sys.float_info.max


class SenMLError(ProtocolError):
    """A SenML pack is malformed or uses something RFC 8428 forbids (or we do not support)."""


@dataclass(frozen=True, slots=True)
class Record:
    """One resolved SenML record (RFC 8428 section 4.6): base values applied, full name.

    ``time`` is ``bt + t``; relative times (below 2**28) are turned into absolute ones only
    when :func:`~edgesdk.senml.resolve` is given ``now``. At most one of ``value``,
    ``string_value``, ``bool_value`` and ``data_value`` is set; ``sum`` may come alone.
    """

    name: str
    time: float
    unit: str | None = None
    value: float | int | None = None
    string_value: str | None = None
    bool_value: bool | None = None
    data_value: bytes | None = None
    sum: float | int | None = None
    update_time: float | None = None


_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 80


def show(value: Any) -> str:
    """A short ``repr`` of a received value for an error message.

    Bounded on purpose: CBOR string references (tags 25/256) and shared values (28/29) let
    a few bytes stand for one long string repeated thousands of times, whose full repr
    would take gigabytes. And CBOR bignums (tags 2/3) decode to integers Python refuses to
    print (over 4300 digits, ``ValueError``): quoting one would turn a SenMLError into a
    crash.
    """
    try:
        return _SHORT.repr(value)
    except ValueError:
        if isinstance(value, int):
            return f"<integer of {value.bit_length()} bits>"
        return f"<unprintable {type(value).__name__}>"


def valid_name(name: str) -> bool:
    """True if ``name`` is a legal concatenated SenML name (RFC 8428 section 4.5.1)."""
    return _NAME_RE.fullmatch(name) is not None


def check_number(value: Any, what: str) -> float | int:
    """Return ``value`` if it is a finite JSON/CBOR number, else raise :class:`SenMLError`.

    ``bool`` is an ``int`` subclass in Python but not a SenML number. Integers must fit a
    double (RFC 8428 section 5 numbers are IEEE doubles); they stay ``int``.
    """
    if isinstance(value, float):
        if value - value != 0.0:  # inf - inf and nan - nan are nan; cheaper than math.isfinite
            raise SenMLError(f"{what}: must be a finite number, got {value!r}")
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        if not -_FLOAT_MAX <= value <= _FLOAT_MAX:
            raise SenMLError(f"{what}: integer {show(value)} is outside the range of a double")
        return value
    raise SenMLError(f"{what}: must be a number, got {type(value).__name__}")


def _check_text(value: Any, what: str) -> None:
    if not isinstance(value, str):
        raise SenMLError(f"{what}: must be text, got {type(value).__name__}")
    if not value.isascii():
        try:  # lone surrogates (JSON escapes such as \ud800) are not Unicode text
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise SenMLError(f"{what}: not valid Unicode text") from exc


def _check_field(label: str, value: Any, what: str) -> None:
    """The full (slow) check of one known field; the common cases never get here."""
    if label in NUMBER_LABELS:
        check_number(value, what)
    elif label in TEXT_LABELS:
        _check_text(value, what)
    elif label == "vb":
        if not isinstance(value, bool):
            raise SenMLError(f"{what}: must be true or false, got {type(value).__name__}")
    elif label == "vd":
        if not isinstance(value, bytes):
            raise SenMLError(f"{what}: must be bytes, got {type(value).__name__}")
    else:  # bver: RFC 8428 section 6 allows only an unsigned integer
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise SenMLError(f"{what}: must be a positive integer, got {show(value)}")
        if value > SUPPORTED_VERSION:
            raise SenMLError(
                f"{what}: version {show(value)} is newer than the supported {SUPPORTED_VERSION}"
            )


def _slow_label(key: Any, index: int) -> str | None:
    """The label of a key the fast lookup did not settle; ``None`` means "ignore it"."""
    if type(key) is int:
        return None  # not in the final table: an unknown field, ignored
    if isinstance(key, str):
        if key in JSON_TO_CBOR:
            return str(key)  # a str subclass spelling a known label
        if key.endswith("_"):
            raise SenMLError(f"record {index}: must-understand field {key!r} is not supported")
        return None
    # bool, float, bytes... (True == 1 and 2.0 == 2 would otherwise pass as labels)
    raise SenMLError(f"record {index}: labels must be text or integers, got {show(key)}")


# Every key that names a known field, in both label styles, for one dict lookup per field.
_KEY_LABEL: dict[Any, str] = {**CBOR_TO_JSON, **{label: label for label in JSON_TO_CBOR}}
_TEXT, _NUMBER, _OTHER = 0, 1, 2
_KIND: dict[str, int] = {
    label: _TEXT if label in TEXT_LABELS else _NUMBER if label in NUMBER_LABELS else _OTHER
    for label in JSON_TO_CBOR
}


def known_fields(record: Any, index: int) -> dict[str, Any]:
    """The known fields of one record, keyed by JSON label, each checked for its type.

    Accepts JSON labels, CBOR labels, or a mix (CBOR extension fields use text labels).
    Unknown fields are dropped, as RFC 8428 section 4.4 requires, except labels ending in
    ``_`` (must-understand), which are rejected. A field given twice (``0`` and ``"n"``)
    is rejected. The loop takes a fast path for exact ``str``/``float``/``int`` values
    (resolve runs it for every received reading) and hands everything else to the full check.
    """
    if type(record) is not dict and not isinstance(record, Mapping):
        raise SenMLError(f"record {index}: must be a map, got {type(record).__name__}")
    out: dict[str, Any] = {}
    for key, value in record.items():
        label = _KEY_LABEL.get(key)
        key_type = type(key)
        if label is None or (key_type is not int and key_type is not str):
            label = _slow_label(key, index)
            if label is None:
                continue
        if label in out:
            raise SenMLError(f"record {index}: field {label!r} appears twice")
        kind = _KIND[label]
        value_type = type(value)
        if kind == _TEXT:
            ok = value_type is str and value.isascii()
        elif kind == _NUMBER:
            if value_type is float:
                ok = value - value == 0.0  # false for inf and nan; cheaper than isfinite
            else:
                ok = value_type is int and -_FLOAT_MAX <= value <= _FLOAT_MAX
        else:
            ok = False
        if not ok:
            _check_field(label, value, f"record {index}: field {label!r}")
        out[label] = value
    return out


def as_records(pack: Any) -> Sequence[Any]:
    """``pack`` itself if it is an array of records, else :class:`SenMLError`."""
    if not isinstance(pack, Sequence) or isinstance(pack, str | bytes | bytearray):
        raise SenMLError(f"a SenML pack must be an array, got {type(pack).__name__}")
    return pack


def label_of(key: Any) -> str | None:
    """The JSON label for a CBOR or JSON key, or ``None`` for an unknown one."""
    if type(key) is int:
        return CBOR_TO_JSON.get(key)
    if isinstance(key, str) and key in JSON_TO_CBOR:
        return key
    return None
