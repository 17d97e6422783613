"""Fuzzing signed batches: ``batch.decode``, ``batch.decode_payload``, ``Verifier.verify``.

Documented contract (``edgesdk/batch.py``, ``edgesdk/verify.py``): ``decode`` and
``decode_payload`` raise :class:`~edgesdk.errors.ProtocolError` for anything malformed,
"never KeyError or TypeError"; ``Verifier.verify`` raises
:class:`~edgesdk.errors.UnknownKeyError`, :class:`~edgesdk.errors.SignatureError` or
:class:`~edgesdk.errors.ProtocolError`. Broken payloads are signed with trusted keys, so
they get past the signature and reach every payload check. A batch that verifies must be
what the key bound to it may sign, and read the same as the unverified decode.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Callable
from typing import Any

import cbor2
from hypothesis import given
from hypothesis import strategies as st

from edgesdk import batch, cose
from edgesdk.errors import ProtocolError, SignatureError
from edgesdk.model import Event, Reading
from tests.reliability.batches import VALID_PAYLOADS, hostile_payloads, signed_messages, verifier
from tests.reliability.fuzzkit import SCALES, FuzzCount, expect, fuzz_settings
from tests.reliability.hostile import cbor_bytes

_NOT_BEFORE = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
_NOT_AFTER = dt.datetime(2040, 1, 1, tzinfo=dt.UTC)


def _check_fields(fields: dict[str, Any]) -> None:
    for name in ("site", "gw", "stream"):
        assert batch.valid_name(fields[name])
    assert 1 <= fields["seq"] <= 2**64 - 1 and 0 <= fields["boot"] <= 2**64 - 1
    assert len(fields["prev"]) == 32 and (fields["seq"] == 1) == (fields["prev"] == bytes(32))
    assert math.isfinite(fields["t"]) and fields["t"] >= 0
    assert all(isinstance(r, Reading) for r in fields["readings"])
    assert all(isinstance(e, Event) for e in fields["events"])
    assert all(1 <= x.first <= x.last for x in fields["lost"])
    assert all(isinstance(k, str) for k in fields["extra"])


@SCALES
def test_fuzz_batch_decode_payload(scale: int, fuzz: Callable[[str], FuzzCount]) -> None:
    count = fuzz("batch-decode-payload")
    seen = {"decoded": 0, "errors": 0}
    inputs = st.one_of(
        hostile_payloads().map(cbor2.dumps),
        cbor_bytes(*VALID_PAYLOADS),  # type: ignore[arg-type]
    )

    @fuzz_settings(1000, scale)
    @given(inputs)
    def prop(payload: bytes) -> None:
        with count.example():
            fields = expect(ProtocolError, lambda: batch.decode_payload(payload))
            seen["errors" if fields is None else "decoded"] += 1
            if fields is not None:
                _check_fields(fields)

    prop()
    assert all(seen.values()), f"the inputs missed a path: {seen}"


@SCALES
def test_fuzz_batch_decode(scale: int, fuzz: Callable[[str], FuzzCount]) -> None:
    count = fuzz("batch-decode")
    seen = {"decoded": 0, "errors": 0}

    @fuzz_settings(800, scale)
    @given(signed_messages())
    def prop(case: tuple[bytes, bytes | None]) -> None:
        message, _ = case
        with count.example():
            got = expect(ProtocolError, lambda: batch.decode(message))
            seen["errors" if got is None else "decoded"] += 1
            if got is not None:
                assert got.raw == message and got.digest == hashlib.sha256(message).digest()

    prop()
    assert all(seen.values()), f"the inputs missed a path: {seen}"


@SCALES
def test_fuzz_verifier(scale: int, fuzz: Callable[[str], FuzzCount]) -> None:
    count = fuzz("batch-verify")
    seen = {"verified": 0, "errors": 0}
    ver = verifier()

    @fuzz_settings(1000, scale)
    @given(signed_messages())
    def prop(case: tuple[bytes, bytes | None]) -> None:
        message, signed = case
        with count.example():
            got = expect((SignatureError, ProtocolError), lambda: ver.verify(message))
            seen["errors" if got is None else "verified"] += 1
            if got is None:
                return
            payload = cose.parse1(message).payload
            assert payload == signed or payload in VALID_PAYLOADS, "a forgery verified"
            assert got.kid in ver.keys and got.raw == message
            trusted = ver.keys[got.kid]
            if trusted.site is not None:
                assert (got.site, got.gw) == (trusted.site, trusted.gw)
                assert _NOT_BEFORE.timestamp() <= got.t <= _NOT_AFTER.timestamp()
            plain = batch.decode(message)  # unverified, the same bytes: the same batch
            assert (plain.site, plain.gw, plain.stream, plain.seq, plain.digest) == (
                got.site,
                got.gw,
                got.stream,
                got.seq,
                got.digest,
            )

    prop()
    assert all(seen.values()), f"the inputs missed a path: {seen}"
