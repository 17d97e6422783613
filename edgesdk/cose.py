"""COSE_Sign1 (RFC 9052 / RFC 9053) on cbor2 and cryptography.

Only what the signed-batch format needs: one signer, EdDSA (Ed25519, Ed448) and ECDSA
P-256 with SHA-256, attached payloads (detached ones only on explicit request).

Verification is deliberately strict, because a message that fails any check must not be
trusted at all: :func:`verify1` raises :class:`~edgesdk.errors.SignatureError` for a wrong
tag, a malformed structure, duplicate map keys anywhere in the envelope, an unknown or
mismatched algorithm, ``alg`` only in the unprotected bucket, unknown ``crit`` labels, a label
in both buckets, a wrong signature length or a bad signature.

Two decisions, both also in ``docs/wire-format.md``:

* **Untagged messages are accepted** when they otherwise parse as a COSE_Sign1 array
  (RFC 9052 section 2 lets the application decide; the IETF set's ``sign-pass-03`` is
  untagged). This is safe because the structure, algorithm and key are checked the same
  way; a *different* tag (COSE_Sign is 98, ...) is always rejected.
* **An empty protected bucket is signed as a zero-length byte string**, even when it is
  transmitted as an encoded empty map (``h'A0'``): RFC 9052 section 4.4 says "if there are
  no protected header parameters, a zero-length byte string is used" (the IETF set's
  ``sign-pass-01`` depends on it). Our own messages never have an empty protected bucket.

Signing-side misuse (a key that does not fit the requested algorithm, a label given in both
buckets) raises :class:`ValueError` / :class:`TypeError`: those are programming errors, not
bad input from a peer.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeAlias

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PrivateKey, Ed448PublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from edgesdk.errors import ProtocolError, SignatureError

__all__ = [
    "ALG_ED25519",
    "ALG_EDDSA",
    "ALG_ES256",
    "ALG_ESP256",
    "COSE_SIGN1_TAG",
    "HDR_ALG",
    "HDR_CONTENT_TYPE",
    "HDR_CRIT",
    "HDR_KID",
    "PrivateKey",
    "PublicKey",
    "Sign1",
    "key_family",
    "loads_strict",
    "parse1",
    "sig_structure",
    "sign1",
    "verify1",
    "verify_parsed",
]

ALG_EDDSA = -8
"""EdDSA (RFC 9053): Ed25519 or Ed448, decided by the key."""
ALG_ED25519 = -19
"""Ed25519 only (RFC 9864 fully-specified algorithm)."""
ALG_ES256 = -7
"""ECDSA with SHA-256; restricted here to P-256 keys."""
ALG_ESP256 = -9
"""ECDSA P-256 with SHA-256 (RFC 9864 fully-specified algorithm)."""

COSE_SIGN1_TAG = 18

HDR_ALG = 1
HDR_CRIT = 2
HDR_CONTENT_TYPE = 3
HDR_KID = 4

# crit may only name header parameters this module processes; anything else listed in crit
# means "you must understand this", which we cannot, so the message is rejected.
_UNDERSTOOD_CRIT = frozenset({HDR_ALG, HDR_CONTENT_TYPE, HDR_KID})

PrivateKey: TypeAlias = Ed25519PrivateKey | Ed448PrivateKey | ec.EllipticCurvePrivateKey
PublicKey: TypeAlias = Ed25519PublicKey | Ed448PublicKey | ec.EllipticCurvePublicKey

_P256_COORD = 32
_SIG_LEN = {"ed25519": 64, "ed448": 114, "p256": 64}

# Nesting in our envelopes and payloads is shallow; a low limit bounds work on hostile input.
_MAX_DEPTH = 64


def _reject_tag(item: object, immutable: bool) -> Any:
    raise ValueError("CBOR tags are not allowed inside this structure")


class _NoTags(Mapping[int, Any]):
    """A ``semantic_decoders`` table that turns every tag into a decode error.

    cbor2 consults this table before its built-in tag decoders, so this also disables value
    sharing (28/29) and string references (25/256), which could otherwise build cyclic or
    amplified structures from a few bytes. Neither COSE headers nor our payloads use tags.
    """

    def __getitem__(self, key: int) -> Any:
        return _reject_tag

    def __len__(self) -> int:
        return 0

    def __iter__(self) -> Iterator[int]:
        return iter(())


_NO_TAGS = _NoTags()


def loads_strict(data: bytes) -> Any:
    """Decode exactly one CBOR data item, strictly.

    Rejects (with :class:`~edgesdk.errors.ProtocolError`) trailing bytes, duplicate map keys
    at any depth (cbor2 >= 6.1 ``allow_duplicate_keys=False``; keys equal in Python such as
    ``1``/``1.0``/``true`` count as duplicates), any tag, invalid UTF-8, nesting deeper than
    64 and truncated input.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ProtocolError(f"expected bytes, got {type(data).__name__}")
    buf = io.BytesIO(data)
    decoder = cbor2.CBORDecoder(
        buf,
        semantic_decoders=_NO_TAGS,
        allow_duplicate_keys=False,
        max_depth=_MAX_DEPTH,
    )
    try:
        value = decoder.decode()
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        cause = f" ({exc.__cause__})" if exc.__cause__ is not None else ""
        raise ProtocolError(f"malformed CBOR: {exc}{cause}") from exc
    end = buf.tell()
    if end != len(data):
        raise ProtocolError(f"malformed CBOR: {len(data) - end} trailing byte(s) after the item")
    return value


@dataclass(frozen=True, slots=True)
class Sign1:
    """A structurally decoded COSE_Sign1, **not verified**: nothing in it may be trusted."""

    protected: Mapping[int | str, Any]
    protected_bytes: bytes
    unprotected: Mapping[int | str, Any]
    payload: bytes | None
    signature: bytes
    alg: int | str | None
    kid: bytes | None
    tagged: bool


def _read_head(data: bytes) -> tuple[int, int, int]:
    """(major type, argument, head length) of the first CBOR item head in ``data``."""
    if not data:
        raise SignatureError("empty message")
    first = data[0]
    major, info = first >> 5, first & 0x1F
    if info < 24:
        return major, info, 1
    if info > 27:
        raise SignatureError(f"malformed CBOR head 0x{first:02x}")
    size = 1 << (info - 24)
    if len(data) < 1 + size:
        raise SignatureError("truncated message")
    return major, int.from_bytes(data[1 : 1 + size], "big"), 1 + size


def _check_labels(bucket: Mapping[Any, Any], name: str) -> dict[int | str, Any]:
    out: dict[int | str, Any] = {}
    for label, value in bucket.items():
        if isinstance(label, bool) or not isinstance(label, int | str):
            raise SignatureError(f"{name} header label {label!r} is not an integer or text")
        out[label] = value
    return out


def parse1(message: bytes) -> Sign1:
    """Decode a COSE_Sign1 without verifying it (for tooling, and to find the ``kid``).

    Raises :class:`~edgesdk.errors.SignatureError` when the bytes are not a well-formed
    COSE_Sign1 (a wrong tag, a wrong shape, duplicate keys, labels in both buckets...).
    """
    if not isinstance(message, bytes | bytearray | memoryview):
        raise SignatureError(f"a COSE message is bytes, not {type(message).__name__}")
    data = bytes(message)
    major, arg, head = _read_head(data)
    tagged = major == 6
    if tagged:
        if arg != COSE_SIGN1_TAG:
            raise SignatureError(f"wrong CBOR tag {arg}: a COSE_Sign1 is tag 18")
        body = data[head:]
    elif major == 4:
        body = data
    else:
        raise SignatureError("not a COSE_Sign1: expected tag 18 or an array")
    try:
        item = loads_strict(body)
    except ProtocolError as exc:
        raise SignatureError(f"not a COSE_Sign1: {exc}") from exc
    if not isinstance(item, list) or len(item) != 4:
        raise SignatureError("not a COSE_Sign1: expected an array of 4 items")
    prot_bytes, unprot, payload, signature = item
    if not isinstance(prot_bytes, bytes):
        raise SignatureError("protected header must be a byte string")
    if not isinstance(unprot, dict):
        raise SignatureError("unprotected header must be a map")
    if payload is not None and not isinstance(payload, bytes):
        raise SignatureError("payload must be a byte string or nil")
    if not isinstance(signature, bytes):
        raise SignatureError("signature must be a byte string (is this a COSE_Sign?)")
    if prot_bytes:
        try:
            prot_map = loads_strict(prot_bytes)
        except ProtocolError as exc:
            raise SignatureError(f"protected header: {exc}") from exc
        if not isinstance(prot_map, dict):
            raise SignatureError("protected header must encode a map")
    else:
        prot_map = {}
    protected = _check_labels(prot_map, "protected")
    unprotected = _check_labels(unprot, "unprotected")
    both = protected.keys() & unprotected.keys()
    if both:
        raise SignatureError(f"header label(s) {sorted(map(str, both))} in both buckets")
    alg = protected.get(HDR_ALG, unprotected.get(HDR_ALG))
    if alg is not None and (isinstance(alg, bool) or not isinstance(alg, int | str)):
        raise SignatureError(f"alg must be an integer or text, got {type(alg).__name__}")
    kid = protected.get(HDR_KID, unprotected.get(HDR_KID))
    if kid is not None and not isinstance(kid, bytes):
        raise SignatureError("kid must be a byte string")
    return Sign1(
        protected=MappingProxyType(protected),
        protected_bytes=prot_bytes,
        unprotected=MappingProxyType(unprotected),
        payload=payload,
        signature=signature,
        alg=alg,
        kid=kid,
        tagged=tagged,
    )


def sig_structure(protected_bytes: bytes, external_aad: bytes, payload: bytes) -> bytes:
    """The encoded ``Sig_structure`` ``["Signature1", protected, external_aad, payload]``."""
    return cbor2.dumps(["Signature1", protected_bytes, external_aad, payload])


def key_family(key: object) -> str:
    """The key's family: ``ed25519``, ``ed448``, ``p256``, or a name this module refuses."""
    if isinstance(key, Ed25519PrivateKey | Ed25519PublicKey):
        return "ed25519"
    if isinstance(key, Ed448PrivateKey | Ed448PublicKey):
        return "ed448"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if isinstance(key.curve, ec.SECP256R1):
            return "p256"
        return f"ec-{key.curve.name}"
    return type(key).__name__


# Which key families each algorithm accepts (RFC 9053 / RFC 9864; ES256 restricted to P-256).
_ALG_FAMILIES: dict[int, frozenset[str]] = {
    ALG_EDDSA: frozenset({"ed25519", "ed448"}),
    ALG_ED25519: frozenset({"ed25519"}),
    ALG_ES256: frozenset({"p256"}),
    ALG_ESP256: frozenset({"p256"}),
}


def _default_alg(family: str) -> int:
    if family in ("ed25519", "ed448"):
        return ALG_EDDSA
    if family == "p256":
        return ALG_ES256
    raise TypeError(f"unsupported signing key {family}: use Ed25519, Ed448 or EC P-256")


def sign1(
    payload: bytes,
    key: PrivateKey,
    *,
    kid: bytes | None = None,
    protected: Mapping[int, Any] | None = None,
    unprotected: Mapping[int, Any] | None = None,
    external_aad: bytes = b"",
) -> bytes:
    """Sign ``payload`` into a tagged (18) COSE_Sign1.

    The algorithm comes from ``protected[1]`` when given, otherwise from the key type
    (EdDSA -8 for Ed25519/Ed448, ES256 -7 for P-256). ``kid``, when given, goes into the
    *protected* bucket so it is covered by the signature. The protected map is encoded
    deterministically. ECDSA signatures are raw ``r || s`` (RFC 9053 section 2.1).
    """
    family = key_family(key)
    prot: dict[int, Any] = dict(protected or {})
    unprot: dict[int, Any] = dict(unprotected or {})
    if kid is not None:
        prot[HDR_KID] = kid
    alg = prot.setdefault(HDR_ALG, _default_alg(family))
    if family not in _ALG_FAMILIES.get(alg, frozenset()):
        raise ValueError(f"alg {alg!r} cannot be used with a {family} key")
    if HDR_ALG in unprot:
        raise ValueError("alg belongs in the protected bucket")
    if prot.keys() & unprot.keys():
        raise ValueError(f"labels in both buckets: {sorted(prot.keys() & unprot.keys())}")
    prot_bytes = cbor2.dumps(prot, canonical=True)
    tbs = sig_structure(prot_bytes, external_aad, payload)
    signature = _sign(key, tbs)
    return cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG, [prot_bytes, unprot, payload, signature]))


def _sign(key: PrivateKey, tbs: bytes) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(tbs, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(_P256_COORD, "big") + s.to_bytes(_P256_COORD, "big")
    return key.sign(tbs)


def _check_crit(sign: Sign1) -> None:
    if HDR_CRIT in sign.unprotected:
        raise SignatureError("crit must be in the protected bucket")
    if HDR_CRIT not in sign.protected:
        return
    crit = sign.protected[HDR_CRIT]
    if not isinstance(crit, list) or not crit:
        raise SignatureError("crit must be a non-empty array")
    for label in crit:
        if isinstance(label, bool) or not isinstance(label, int | str):
            raise SignatureError(f"crit label {label!r} is not an integer or text")
        if label not in _UNDERSTOOD_CRIT:
            raise SignatureError(f"crit names header parameter {label!r}, not understood")
        if label not in sign.protected:
            raise SignatureError(f"crit names {label!r}, absent from the protected bucket")


def verify1(
    message: bytes,
    public_key: PublicKey,
    *,
    external_aad: bytes = b"",
    detached_payload: bytes | None = None,
    allow_unprotected_alg: bool = False,
) -> bytes:
    """Verify a COSE_Sign1 with ``public_key`` and return its payload.

    Raises :class:`~edgesdk.errors.SignatureError` for every bad message (see the module
    docstring). ``detached_payload`` must be given exactly when the message carries a nil
    payload. ``allow_unprotected_alg`` accepts ``alg`` in the unprotected bucket; it exists
    only for interop with third-party messages (the IETF ``sign-pass-01`` case) and is safe
    only because the algorithm must still match the pinned key's type.
    """
    return verify_parsed(
        parse1(message),
        public_key,
        external_aad=external_aad,
        detached_payload=detached_payload,
        allow_unprotected_alg=allow_unprotected_alg,
    )


def verify_parsed(
    sign: Sign1,
    public_key: PublicKey,
    *,
    external_aad: bytes = b"",
    detached_payload: bytes | None = None,
    allow_unprotected_alg: bool = False,
) -> bytes:
    """:func:`verify1` for a message already decoded by :func:`parse1` (decode once)."""
    if HDR_ALG not in sign.protected:
        if HDR_ALG in sign.unprotected and not allow_unprotected_alg:
            raise SignatureError("alg is only in the unprotected bucket; it must be protected")
        if HDR_ALG not in sign.unprotected:
            raise SignatureError("no alg header parameter")
    _check_crit(sign)
    alg = sign.alg
    if not isinstance(alg, int) or alg not in _ALG_FAMILIES:
        raise SignatureError(f"unsupported alg {alg!r}")
    family = key_family(public_key)
    if family not in _ALG_FAMILIES[alg]:
        raise SignatureError(f"alg {alg} does not match the {family} key")
    if sign.payload is None:
        if detached_payload is None:
            raise SignatureError("detached (nil) payload and no detached_payload given")
        payload = detached_payload
    elif detached_payload is not None:
        raise SignatureError("detached_payload given but the message carries a payload")
    else:
        payload = sign.payload
    if len(sign.signature) != _SIG_LEN[family]:
        raise SignatureError(
            f"signature is {len(sign.signature)} bytes, {family} needs {_SIG_LEN[family]}"
        )
    prot_bytes = sign.protected_bytes if sign.protected else b""
    tbs = sig_structure(prot_bytes, external_aad, payload)
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            r = int.from_bytes(sign.signature[:_P256_COORD], "big")
            s = int.from_bytes(sign.signature[_P256_COORD:], "big")
            public_key.verify(encode_dss_signature(r, s), tbs, ec.ECDSA(hashes.SHA256()))
        else:
            public_key.verify(sign.signature, tbs)
    except InvalidSignature as exc:
        raise SignatureError("bad signature") from exc
    return payload
