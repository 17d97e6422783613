"""Structure-aware hostile inputs: mutated encodings, raw CBOR, wrong-typed values, JSON.

Random bytes alone rarely get past a decoder's first check, so most strategies here start
from something well-formed and break one thing: bit flips, truncation, insertion, splicing
of valid messages, CBOR heads that promise huge lengths, nesting thousands deep, duplicate
map keys, tags, NaN and infinities, integers beyond 64 bits, text that is not UTF-8.

Raw CBOR is written by hand here (a head is one byte plus a big-endian argument, RFC 8949
section 3) because cbor2 cannot be asked to emit what we need: duplicate keys, wrong
element counts, reserved additional-information values, non-preferred argument sizes.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from typing import Any

import cbor2
import tomlkit
from hypothesis import strategies as st

__all__ = [
    "CBOR_TAGS",
    "cbor_bytes",
    "cbor_head",
    "cbor_values",
    "deep_cbor",
    "huge_heads",
    "json_texts",
    "json_values",
    "mutants",
    "raw_cbor",
    "scalars",
    "toml_documents",
    "toml_values",
]

# Tags cbor2 gives meaning to (dates, bignums, decimals, string refs, value sharing,
# rationals, regexes, MIME, UUIDs, sets, IP addresses, self-describe) and COSE's 18.
CBOR_TAGS: tuple[int, ...] = (
    0,
    1,
    2,
    3,
    4,
    5,
    18,
    21,
    24,
    25,
    28,
    29,
    30,
    32,
    35,
    36,
    37,
    98,
    256,
    258,
)
CBOR_TAGS += (260, 261, 262, 263, 272, 1001, 55799, 2**32, 2**64 - 1)

# Bytes that, written over a byte of a valid encoding, change its structure: 8-byte
# arguments (huge lengths), indefinite lengths, break, floats, reserved values.
_HEAD_BYTES: tuple[int, ...] = (
    0x00,
    0x17,
    0x18,
    0x1B,
    0x1C,
    0x1F,
    0x40,
    0x5B,
    0x5F,
    0x60,
    0x7B,
    0x7F,
    0x80,
)
_HEAD_BYTES += (0x9B, 0x9F, 0xA0, 0xBB, 0xBF, 0xC0, 0xD2, 0xD8, 0xDB, 0xF4, 0xF6, 0xF7, 0xF9)
_HEAD_BYTES += (0xFB, 0xFC, 0xFF, 0xAA, 0x55)

_U64 = st.one_of(
    st.integers(0, 30),
    st.sampled_from([23, 24, 255, 256, 65535, 65536, 2**31, 2**32 - 1, 2**32, 2**63, 2**64 - 1]),
    st.integers(0, 2**64 - 1),
)


def cbor_head(major: int, arg: int, width: int | None = None) -> bytes:
    """A CBOR head; ``width`` (1, 2, 4 or 8) forces a non-preferred argument size."""
    if width is None:
        if arg < 24:
            return bytes([major << 5 | arg])
        width = 1 if arg < 2**8 else 2 if arg < 2**16 else 4 if arg < 2**32 else 8
    info = {1: 24, 2: 25, 4: 26, 8: 27}[width]
    return bytes([major << 5 | info]) + arg.to_bytes(width, "big")


@st.composite
def _head(draw: st.DrawFn, major: int, arg: int) -> bytes:
    need = 0 if arg < 24 else 1 if arg < 2**8 else 2 if arg < 2**16 else 4 if arg < 2**32 else 8
    widths = [w for w in (1, 2, 4, 8) if w >= max(need, 1)]
    if need == 0 and draw(st.integers(0, 3)):
        return cbor_head(major, arg)
    return cbor_head(major, arg, draw(st.sampled_from(widths)))


def _text_item(data: bytes) -> st.SearchStrategy[bytes]:
    return _head(3, len(data)).map(lambda h: h + data)


def _bytes_item(data: bytes) -> st.SearchStrategy[bytes]:
    return _head(2, len(data)).map(lambda h: h + data)


_FLOATS = st.one_of(
    st.floats().map(lambda f: b"\xfb" + struct.pack(">d", f)),
    st.floats(width=32).map(lambda f: b"\xfa" + struct.pack(">f", f)),
    st.floats(width=16).map(lambda f: b"\xf9" + struct.pack(">e", f)),
    st.binary(min_size=2, max_size=2).map(lambda b: b"\xf9" + b),
    st.binary(min_size=8, max_size=8).map(lambda b: b"\xfb" + b),
)

huge_heads = st.builds(
    lambda major, arg, tail: cbor_head(major, arg, 8) + tail,
    st.sampled_from([2, 3, 4, 5, 6]),
    st.sampled_from([2**32, 2**40, 2**63, 2**64 - 1]) | st.integers(2**20, 2**64 - 1),
    st.binary(max_size=8),
)
"""Items whose head promises gigabytes (or 2**64 elements) and delivers a few bytes."""

# Integers too long to print: Python refuses str() of one over 4300 digits, so an error
# message that quotes one fails while it is being built.
_UNPRINTABLE = st.builds(
    lambda bits, sign: sign * ((1 << bits) - 1), st.integers(14300, 16000), st.sampled_from([1, -1])
)

_LEAVES = st.one_of(
    _U64.flatmap(lambda n: _head(0, n)),
    _U64.flatmap(lambda n: _head(1, n)),
    st.binary(max_size=24).flatmap(_bytes_item),
    st.text(max_size=12).map(lambda t: t.encode("utf-8", "surrogatepass")).flatmap(_text_item),
    st.binary(max_size=6).flatmap(_text_item),  # usually not UTF-8
    st.sampled_from([b"\xf4", b"\xf5", b"\xf6", b"\xf7", b"\xf8\x00", b"\xf8\x18", b"\xf8\xff"]),
    st.sampled_from([b"\xf0", b"\xfc", b"\xfd", b"\xfe", b"\xff", b"\x1c", b"\x5d", b"\xde"]),
    _FLOATS,
    huge_heads,
    st.integers(1790, 2000).map(lambda n: b"\xc2" + cbor_head(2, n) + b"\x01" * n),  # bignum
)


def _array(items: list[bytes], delta: int) -> bytes:
    return cbor_head(4, max(0, len(items) + delta)) + b"".join(items)


def _map(pairs: list[tuple[bytes, bytes]], duplicate: bool) -> bytes:
    if duplicate and pairs:
        pairs = [*pairs, (pairs[0][0], pairs[-1][1])]
    return cbor_head(5, len(pairs)) + b"".join(k + v for k, v in pairs)


def _containers(children: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.builds(_array, st.lists(children, max_size=5), st.sampled_from([0, 0, 0, -1, 1])),
        st.builds(_map, st.lists(st.tuples(children, children), max_size=4), st.booleans()),
        st.lists(children, max_size=4).map(lambda xs: b"\x9f" + b"".join(xs) + b"\xff"),
        st.lists(st.tuples(children, children), max_size=3).map(
            lambda ps: b"\xbf" + b"".join(k + v for k, v in ps) + b"\xff"
        ),
        st.lists(children, max_size=3).map(lambda xs: b"\x5f" + b"".join(xs) + b"\xff"),
        st.lists(children, max_size=3).map(lambda xs: b"\x7f" + b"".join(xs) + b"\xff"),
        st.tuples(st.sampled_from(CBOR_TAGS), children).map(lambda t: cbor_head(6, t[0]) + t[1]),
    )


raw_cbor = st.recursive(_LEAVES, _containers, max_leaves=16)
"""One hand-built CBOR item, often malformed in a way a real decoder must survive."""

deep_cbor = st.builds(
    lambda prefix, depth, leaf: prefix * depth + leaf,
    st.sampled_from(
        [b"\x81", b"\xa1\x00", b"\xd8\x1c", b"\x9f", b"\xc6", b"\xd9\xd9\xf7", b"\xc2"]
    ),
    st.integers(1, 4000),
    _LEAVES,
)
"""Nesting (arrays, maps, tags, indefinite arrays) up to 4000 levels deep."""


def cbor_bytes(*valid: bytes) -> st.SearchStrategy[bytes]:
    """Raw CBOR, deep CBOR, trailing items, random bytes, and mutants of ``valid``."""
    options = [
        raw_cbor,
        deep_cbor,
        st.lists(raw_cbor, min_size=2, max_size=3).map(b"".join),
        st.binary(max_size=64),
    ]
    if valid:
        options.append(mutants(valid))
    return st.one_of(options)


@st.composite
def _mutate(draw: st.DrawFn, base: bytes, donors: Sequence[bytes]) -> bytes:
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        n = len(data)
        op = draw(st.sampled_from(["flip", "cut", "insert", "delete", "splice", "dup", "set"]))
        if op == "insert" or n == 0:
            at = draw(st.integers(0, n))
            data[at:at] = draw(st.binary(min_size=1, max_size=12))
        elif op == "flip":
            data[draw(st.integers(0, n - 1))] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del data[draw(st.integers(0, n - 1)) :]
        elif op == "delete":
            at = draw(st.integers(0, n - 1))
            del data[at : draw(st.integers(at + 1, min(n, at + 16)))]
        elif op == "splice" and donors:
            donor = draw(st.sampled_from(donors))
            a = draw(st.integers(0, len(donor)))
            b = draw(st.integers(a, len(donor)))
            at = draw(st.integers(0, n))
            end = at if draw(st.booleans()) else n  # insert, or replace the tail
            data[at:end] = donor[a:b]
        elif op == "dup":
            a = draw(st.integers(0, n - 1))
            b = draw(st.integers(a + 1, min(n, a + 32)))
            data[b:b] = data[a:b]
        else:
            data[draw(st.integers(0, n - 1))] = draw(st.sampled_from(_HEAD_BYTES))
    return bytes(data)


def mutants(valid: Sequence[bytes]) -> st.SearchStrategy[bytes]:
    """One of ``valid`` with 1-4 mutations (others of ``valid`` are the splice donors)."""
    corpus = list(valid)
    return st.sampled_from(corpus).flatmap(lambda base: _mutate(base, corpus))


# -- Python values that encode to valid CBOR of the wrong shape -------------------------
_BIG = st.integers(-(2**300), 2**300)  # cbor2 encodes these as bignums (tags 2 and 3)

scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64 - 1),
    _BIG,
    _UNPRINTABLE,
    st.floats(),  # NaN, infinities, -0.0, subnormals
    st.sampled_from([float("nan"), float("inf"), float("-inf"), 1e308, -0.0, 2.0**64]),
    st.text(max_size=16),
    st.binary(max_size=16),
    st.just(cbor2.undefined),
    st.builds(cbor2.CBORSimpleValue, st.integers(0, 19) | st.integers(32, 255)),
    st.builds(cbor2.CBORTag, st.sampled_from(CBOR_TAGS), st.integers() | st.text(max_size=4)),
)
"""Scalars of every CBOR kind, including the awkward ones."""

_keys = st.one_of(
    st.integers(-8, 10),
    st.text(max_size=6),
    st.binary(max_size=4),
    st.booleans(),
    st.floats(allow_nan=False),
    st.none(),
    _BIG,
    _UNPRINTABLE,
)

cbor_values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(_keys, inner, max_size=4),
        st.builds(cbor2.CBORTag, st.sampled_from(CBOR_TAGS), inner),
    ),
    max_leaves=10,
)
"""Any value cbor2 can encode: the 'valid CBOR, wrong types' half of the hostile inputs."""


# -- JSON -----------------------------------------------------------------------------------
_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(10**400), 10**400),
    st.floats(),  # json.dumps writes NaN / Infinity, which json.loads accepts
    st.text(max_size=16),
)

json_values: st.SearchStrategy[Any] = st.recursive(
    _json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


def _json_dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


json_texts = st.one_of(
    json_values.map(_json_dump),
    st.integers(1, 3000).map(lambda d: "[" * d + "]" * d),
    st.integers(1, 3000).map(lambda d: '{"a":' * d + "1" + "}" * d),
    st.sampled_from(['{"a":1,"a":2}', '"\\ud800"', "NaN", "-Infinity", "1e400", "-0", "\ufeff[]"]),
    st.integers(4000, 5000).map(lambda n: "1" * n),
    st.text(max_size=40),
)
"""JSON text: random values, deep nesting, duplicate keys, lone surrogates, odd numbers."""


# -- TOML -----------------------------------------------------------------------------------
_toml_scalars = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0, -1, 2**63 - 1, 0.0, -0.0, 0.01, 1e308]),
    st.floats(),  # nan and inf are TOML too
    st.text(max_size=12),  # control characters and NUL are written as escapes
    st.sampled_from(["", "k\x00", "../../etc/passwd", "mqtt://h", "mqtts://h:8883", "x" * 300]),
    st.datetimes(),
    st.dates(),
    st.times(),
)
_toml_keys = st.one_of(st.text(min_size=1, max_size=8), st.sampled_from(["options", "file", "env"]))

toml_values: st.SearchStrategy[Any] = st.recursive(
    _toml_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_toml_keys, inner, max_size=3),
    max_leaves=8,
)
"""Any value a TOML document can hold, of any shape."""


def _paths(value: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every key path in nested tables (tables themselves included)."""
    out: list[tuple[str, ...]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            out.append((*prefix, key))
            out += _paths(item, (*prefix, key))
    return out


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


@st.composite
def _edited(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """``base`` with 1-3 keys replaced by values of any shape, deleted or added."""
    doc: dict[str, Any] = _copy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        op = draw(st.sampled_from(["set", "set", "delete", "add"]))
        if op == "set":
            parent[path[-1]] = draw(toml_values)
        elif op == "delete":
            del parent[path[-1]]
        elif isinstance(parent[path[-1]], dict):
            parent[path[-1]][draw(_toml_keys)] = draw(toml_values)
    return doc


def _toml_dump(doc: dict[str, Any]) -> str:
    return tomlkit.dumps(doc)


def toml_documents(*valid: dict[str, Any]) -> st.SearchStrategy[str]:
    """TOML text: edits of ``valid`` documents, random tables, deep nesting, raw text."""
    options: list[st.SearchStrategy[str]] = [
        st.dictionaries(_toml_keys, toml_values, max_size=5).map(_toml_dump),
        st.integers(1, 3000).map(lambda d: "a = " + "[" * d + "]" * d),
        st.integers(1, 3000).map(lambda d: "a = " + "{b = " * d + "1" + "}" * d),
        st.text(max_size=60),
    ]
    if valid:
        options.append(st.sampled_from(list(valid)).flatmap(_edited).map(_toml_dump))
        options.append(
            mutants([_toml_dump(v).encode() for v in valid]).map(
                lambda b: b.decode("utf-8", "replace")
            )
        )
    return st.one_of(options)
