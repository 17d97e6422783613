"""Deterministic CBOR items, written by hand: the pieces :mod:`._encode` assembles.

Each function returns exactly what ``cbor2.dumps(value, canonical=True)`` returns for its
type (RFC 8949 section 4.2: shortest heads, floats in the shortest of half/single/double
that keeps the value); a property test compares them with cbor2. Why by hand: cbor2 cannot
splice already-encoded items into a larger one, so every record of a pack would go
through it again, and its canonical mode sorts each record's keys on every call. Anything
unusual (bignums, NaN, subclasses) is handed to cbor2, which then defines the bytes.
"""

from __future__ import annotations

import struct
from typing import Any

import cbor2

__all__ = ["bytes_item", "float_item", "head", "int_item", "text_item", "via_cbor2"]

_pack_double = struct.Struct(">d").pack
_single = struct.Struct(">f")
_half = struct.Struct(">e")
_pack_single, _unpack_single = _single.pack, _single.unpack
_pack_half, _unpack_half = _half.pack, _half.unpack
_UINT64 = 2**64
# One-byte heads of each major type, for lengths and values 0..23.
_SMALL = [[bytes(((major << 5) | n,)) for n in range(24)] for major in range(8)]


def via_cbor2(value: Any) -> bytes:
    """cbor2's own deterministic encoding of ``value`` (the reference for everything here)."""
    return cbor2.dumps(value, canonical=True)


def head(major: int, n: int) -> bytes:
    """The shortest head of major type ``major`` with argument ``0 <= n < 2**64``."""
    if n < 24:
        return _SMALL[major][n]
    if n < 0x100:
        return bytes(((major << 5) | 24, n))
    if n < 0x10000:
        return bytes(((major << 5) | 25, n >> 8, n & 0xFF))
    if n < 0x100000000:
        return bytes(((major << 5) | 26,)) + n.to_bytes(4, "big")
    return bytes(((major << 5) | 27,)) + n.to_bytes(8, "big")


def int_item(value: int) -> bytes:
    """An exact ``int``: major type 0 or 1; beyond 64 bits cbor2's bignum (tag 2 or 3)."""
    if 0 <= value < _UINT64:
        return head(0, value)
    if -_UINT64 <= value < 0:
        return head(1, -1 - value)
    return via_cbor2(value)


def float_item(value: float) -> bytes:
    """An exact ``float`` in the shortest width that keeps it (cbor2's canonical rule).

    cbor2 tries single precision, then half, each only if the value survives the round
    trip exactly; ``struct`` raises ``OverflowError`` where cbor2's casts give infinity
    (which would not survive either). Subnormals and -0.0 follow the same rule. NaN and
    infinities go to cbor2 (it writes them as half-precision specials).
    """
    if value - value != 0.0:  # NaN or infinite
        return via_cbor2(value)
    try:
        single = _pack_single(value)
    except OverflowError:
        return b"\xfb" + _pack_double(value)
    if _unpack_single(single)[0] != value:
        return b"\xfb" + _pack_double(value)
    try:
        half = _pack_half(value)
    except OverflowError:
        return b"\xfa" + single
    if _unpack_half(half)[0] != value:
        return b"\xfa" + single
    return b"\xf9" + half


def text_item(value: str) -> bytes:
    """An exact ``str`` as UTF-8 text; text that is not valid Unicode goes to cbor2,
    which raises for it."""
    try:
        data = value.encode("utf-8")
    except UnicodeEncodeError:
        return via_cbor2(value)
    n = len(data)
    return (_SMALL[3][n] if n < 24 else head(3, n)) + data


def bytes_item(value: bytes) -> bytes:
    """An exact ``bytes`` as a byte string."""
    n = len(value)
    return (_SMALL[2][n] if n < 24 else head(2, n)) + value
