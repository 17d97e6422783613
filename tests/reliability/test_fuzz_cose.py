"""Fuzzing COSE_Sign1 (``edgesdk/cose.py``): ``loads_strict``, ``parse1`` and ``verify1``.

Documented contract: :func:`loads_strict` raises :class:`~edgesdk.errors.ProtocolError` for
anything but exactly one tag-free, duplicate-free CBOR item at most 64 deep; :func:`parse1`
and :func:`verify1` raise :class:`~edgesdk.errors.SignatureError` for every bad message.
Beyond "no other exception", a message that verifies must carry a protected header and a
payload that the key really signed: mutating a signed message may only ever touch what the
signature does not cover.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2
from hypothesis import given
from hypothesis import strategies as st

from edgesdk import cose
from edgesdk.errors import ProtocolError, SignatureError
from tests.reliability.fuzzkit import SCALES, FuzzCount, expect, fuzz_settings, walk
from tests.reliability.hostile import cbor_bytes, cbor_values, mutants
from tests.reliability.signed import ED448, GW1, P256, SigningKey, kid, sign
from tests.support import VECTORS

KEYS: dict[str, SigningKey] = {"ed25519": GW1, "p256": P256, "ed448": ED448}
_ALGS: dict[str, tuple[int, ...]] = {
    "ed25519": (cose.ALG_EDDSA, cose.ALG_ED25519),
    "p256": (cose.ALG_ES256, cose.ALG_ESP256),
    "ed448": (cose.ALG_EDDSA,),
}

_labels = st.one_of(
    st.sampled_from([1, 2, 3, 4, 5, 6, -1, 33, "alg", "kid", ""]),
    st.integers(-(2**64), 2**64 - 1),
    st.text(max_size=4),
)
_header_values = st.one_of(
    st.sampled_from([-8, -7, -9, -19, -35, -257, 0, "EdDSA", True, 1.5, None]),
    st.lists(_labels, max_size=4),  # crit
    st.binary(max_size=20),  # kid
    cbor_values,
)
header_maps = st.dictionaries(_labels, _header_values, max_size=4)
"""Header buckets: the labels COSE defines and others, with right and wrong values."""


def _vectors() -> list[bytes]:
    out = []
    for path in sorted((VECTORS / "cose").rglob("*.json")):
        output = json.loads(Path(path).read_text()).get("output", {})
        if "cbor" in output:
            out.append(bytes.fromhex(output["cbor"]))
    return out


def _ours() -> list[tuple[str, bytes, bytes, bytes]]:
    """(key name, protected bytes, payload, message) signed by each of our keys."""
    out = []
    for name, key in KEYS.items():
        for payload in (b"", b"payload", cbor2.dumps({"a": [1, 2.5, None]})):
            protected = {cose.HDR_ALG: _ALGS[name][0], cose.HDR_KID: kid(key)}
            message = sign(payload, key, protected, unprotected={cose.HDR_CONTENT_TYPE: 0})
            out.append((name, cbor2.dumps(protected), payload, message))
    return out


OURS = _ours()
CORPUS = _vectors() + [m for *_, m in OURS]
SIGNED = {(name, prot, payload) for name, prot, payload, _ in OURS}
"""What each key really signed: the only (protected, payload) pairs that may verify."""


@st.composite
def structures(draw: st.DrawFn) -> bytes:
    """Sign1-shaped CBOR: four (or three, or five) parts of right and wrong types."""
    prot_map = draw(header_maps)
    protected = draw(
        st.one_of(st.just(cbor2.dumps(prot_map)), st.sampled_from([b"", b"\xa0"]), cbor_bytes())
    )
    parts: list[Any] = [
        draw(st.one_of(st.just(protected), cbor_values)),
        draw(st.one_of(header_maps, cbor_values)),
        draw(st.one_of(st.binary(max_size=24), st.none(), cbor_values)),
        draw(st.one_of(st.binary(max_size=130), st.sampled_from([bytes(64), bytes(114)]))),
    ]
    parts = draw(st.sampled_from([parts, parts[:3], [*parts, b""]]))
    tag = draw(st.sampled_from([cose.COSE_SIGN1_TAG, None, 98, 17, 96, 55799]))
    return cbor2.dumps(parts if tag is None else cbor2.CBORTag(tag, parts))


messages = st.one_of(structures(), cbor_bytes(*CORPUS), mutants(CORPUS))


@SCALES
def test_fuzz_cose_loads_strict(scale: int, fuzz: Callable[[str], FuzzCount]) -> None:
    count = fuzz("cose-loads-strict")

    @fuzz_settings(1500, scale)
    @given(st.one_of(messages, st.text(max_size=4), st.integers(), st.none()))
    def prop(data: Any) -> None:
        with count.example():
            value = expect(ProtocolError, lambda: cose.loads_strict(data))
            if value is not None:
                for item, depth in walk(value):
                    assert depth <= 64 + 1
                    assert not isinstance(item, cbor2.CBORTag), "a tag got through"

    prop()


def _check_sign1(sign: cose.Sign1) -> None:
    assert isinstance(sign.protected_bytes, bytes) and isinstance(sign.signature, bytes)
    assert sign.payload is None or isinstance(sign.payload, bytes)
    assert sign.kid is None or isinstance(sign.kid, bytes)
    assert sign.alg is None or (type(sign.alg) in (int, str))
    for label in [*sign.protected, *sign.unprotected]:
        assert type(label) in (int, str)
    assert not sign.protected.keys() & sign.unprotected.keys()


@SCALES
def test_fuzz_cose_parse1(scale: int, fuzz: Callable[[str], FuzzCount]) -> None:
    count = fuzz("cose-parse1")
    seen = {"parsed": 0, "errors": 0}

    @fuzz_settings(1500, scale)
    @given(messages)
    def prop(message: bytes) -> None:
        with count.example():
            sign = expect(SignatureError, lambda: cose.parse1(message))
            seen["errors" if sign is None else "parsed"] += 1
            if sign is not None:
                _check_sign1(sign)

    prop()
    assert all(seen.values()), f"the inputs missed a path: {seen}"


@SCALES
def test_fuzz_cose_verify1(scale: int, fuzz: Callable[[str], FuzzCount]) -> None:
    """Mutated and forged messages: SignatureError, unless only unsigned parts changed."""
    count = fuzz("cose-verify1")
    seen = {"verified": 0, "errors": 0}

    @fuzz_settings(1200, scale)
    @given(
        messages | st.sampled_from([m for *_, m in OURS]),
        st.sampled_from(sorted(KEYS)),
        st.booleans(),
    )
    def prop(message: bytes, name: str, unprotected_alg: bool) -> None:
        with count.example():
            public = KEYS[name].public_key()
            payload = expect(
                SignatureError,
                lambda: cose.verify1(message, public, allow_unprotected_alg=unprotected_alg),
            )
            seen["errors" if payload is None else "verified"] += 1
            if payload is not None:
                sign = cose.parse1(message)
                assert (name, sign.protected_bytes, payload) in SIGNED, "a forgery verified"

    prop()
    assert all(seen.values()), f"the inputs missed a path: {seen}"


@SCALES
def test_fuzz_cose_signed_hostile_headers(scale: int, fuzz: Callable[[str], FuzzCount]) -> None:
    """Validly signed messages with odd headers: accepted only when every rule holds."""
    count = fuzz("cose-signed-headers")
    seen = {"verified": 0, "errors": 0}
    alg_first = st.sampled_from([-8, -7, -9, -19, -35, "EdDSA"]).map(lambda a: {cose.HDR_ALG: a})

    @fuzz_settings(800, scale)
    @given(
        st.sampled_from(sorted(KEYS)),
        st.builds(lambda a, b: {**a, **b}, alg_first, header_maps),
        header_maps,
        st.one_of(st.binary(max_size=16), st.none()),
        st.one_of(st.none(), st.binary(max_size=8)),
        st.booleans(),
    )
    def prop(
        name: str,
        protected: dict[Any, Any],
        unprotected: dict[Any, Any],
        payload: bytes | None,
        detached: bytes | None,
        unprotected_alg: bool,
    ) -> None:
        with count.example():
            key = KEYS[name]
            message = sign(payload, key, protected, unprotected=unprotected, detached=detached)
            got = expect(
                SignatureError,
                lambda: cose.verify1(
                    message,
                    key.public_key(),
                    detached_payload=detached,
                    allow_unprotected_alg=unprotected_alg,
                ),
            )
            seen["errors" if got is None else "verified"] += 1
            if got is None:
                return
            s = cose.parse1(message)
            assert got == (payload if payload is not None else detached)
            assert (payload is None) == (detached is not None)
            assert s.alg in _ALGS[name]
            assert unprotected_alg or cose.HDR_ALG in s.protected
            assert cose.HDR_CRIT not in s.unprotected
            crit = s.protected.get(cose.HDR_CRIT)
            if crit is not None:
                assert crit and all(c in (1, 3, 4) and c in s.protected for c in crit)

    prop()
    assert all(seen.values()), f"the inputs missed a path: {seen}"
