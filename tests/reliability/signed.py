"""Deterministic keys, certificates and signed messages for the COSE, batch and consumer fuzz.

Everything here is reproducible byte for byte: keys come from fixed seeds, Ed25519
signatures are deterministic, ECDSA signatures use RFC 6979 nonces, certificates have
fixed serials and dates. :func:`sign` signs *any* protected header and payload (unlike
:func:`edgesdk.cose.sign1`, which refuses misuse), so hostile content can sit behind a
valid signature and reach the checks that run after the signature is verified.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from edgesdk import batch, cose

__all__ = [
    "CA_CERT",
    "CA_KEY",
    "ED448",
    "GW1",
    "GW2",
    "OTHER_CA_KEY",
    "P256",
    "STRANGER",
    "T_VALID",
    "BatchKey",
    "SigningKey",
    "certificate",
    "der",
    "envelope",
    "kid",
    "payload_map",
    "reading_records",
    "seal_map",
    "sign",
]

SigningKey: TypeAlias = Ed25519PrivateKey | Ed448PrivateKey | ec.EllipticCurvePrivateKey
BatchKey: TypeAlias = Ed25519PrivateKey | ec.EllipticCurvePrivateKey
"""The key types a gateway may sign batches with (the certificate profile has no Ed448)."""

GW1 = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
"""Signs hq/gw1's batches; its certificate (issued by :data:`CA_CERT`) is learned from births."""
GW2 = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
"""Signs hq/gw2's batches; pinned in the fuzzed consumer and verifier, bound to nothing."""
STRANGER = Ed25519PrivateKey.from_private_bytes(bytes(range(2, 34)))
"""A key nobody trusts (its batches are parked, then rejected as unknown-key)."""
P256 = ec.derive_private_key(0x1F2E3D4C5B6A79880102030405060708, ec.SECP256R1())
ED448 = Ed448PrivateKey.from_private_bytes(bytes(range(57)))
CA_KEY = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32)
OTHER_CA_KEY = Ed25519PrivateKey.from_private_bytes(b"\x09" * 32)

_START = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
_END = dt.datetime(2040, 1, 1, tzinfo=dt.UTC)
T_VALID = 1.7e9
"""A sealing time inside every certificate's validity (November 2023)."""


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(key: Ed25519PrivateKey, cn: str) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(_START)
        .not_valid_after(_END)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(key, None)
    )


CA_CERT = _ca(CA_KEY, "hq site CA")
_OTHER_CA = _ca(OTHER_CA_KEY, "elsewhere CA")


def certificate(
    key: BatchKey,
    *,
    uri: str = "urn:edge:hq:gw1",
    other_ca: bool = False,
    is_ca: bool = False,
    serial: int = 2,
) -> x509.Certificate:
    """A signing certificate for ``key`` issued by the site CA (or by another CA)."""
    ca_key, ca = (OTHER_CA_KEY, _OTHER_CA) if other_ca else (CA_KEY, CA_CERT)
    return (
        x509.CertificateBuilder()
        .subject_name(_name("signer"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(_START)
        .not_valid_after(_END)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=False
        )
        .sign(ca_key, None)
    )


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def kid(key: SigningKey) -> bytes:
    return batch.kid_for(key.public_key())


def sign(
    payload: bytes | None,
    key: SigningKey,
    protected: Mapping[Any, Any] | bytes,
    *,
    unprotected: Mapping[Any, Any] | None = None,
    tag: int | None = cose.COSE_SIGN1_TAG,
    detached: bytes | None = None,
) -> bytes:
    """A COSE_Sign1 over whatever it is given; ``protected`` may be pre-encoded bytes.

    ``detached`` is the payload that is signed when ``payload`` is ``None`` (nil).
    """
    prot = protected if isinstance(protected, bytes) else cbor2.dumps(dict(protected))
    signed = payload if payload is not None else detached or b""
    tbs = cose.sig_structure(prot, b"", signed)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        algorithm = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
        r, s = decode_dss_signature(key.sign(tbs, algorithm))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        signature = key.sign(tbs)
    body = [prot, dict(unprotected or {}), payload, signature]
    return cbor2.dumps(body if tag is None else cbor2.CBORTag(tag, body))


def envelope(key: BatchKey) -> dict[int, Any]:
    """The protected header of a signed batch made with ``key``."""
    alg = cose.ALG_ES256 if isinstance(key, ec.EllipticCurvePrivateKey) else cose.ALG_EDDSA
    return {cose.HDR_ALG: alg, cose.HDR_CONTENT_TYPE: batch.CONTENT_TYPE, cose.HDR_KID: kid(key)}


def reading_records(n: int = 2) -> list[dict[int, Any]]:
    """A small valid SenML-CBOR pack as the gateway packs readings."""
    out: list[dict[int, Any]] = [{-2: "panel1/", 0: "zone1/smoke", -3: T_VALID, 2: 0.12, 1: "%/m"}]
    out += [{0: f"zone{i}/heat", 6: float(i), 2: 21 + i, 1: "Cel"} for i in range(2, n + 1)]
    return out


def payload_map(
    *,
    site: str = "hq",
    gw: str = "gw1",
    stream: str = "telemetry",
    seq: int = 1,
    t: float = T_VALID,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A valid batch payload map (docs/wire-format.md), ready to be broken."""
    body: dict[str, Any] = {
        "v": batch.FORMAT_VERSION,
        "site": site,
        "gw": gw,
        "stream": stream,
        "seq": seq,
        "prev": batch.ZERO_DIGEST if seq == 1 else bytes([seq % 256]) * 32,
        "boot": 1,
        "t": t,
        "senml": reading_records(),
        "events": [
            {
                "id": "e1",
                "kind": "fire",
                "sev": "fire",
                "state": "active",
                "src": "panel1/L1D001",
                "t": t,
                "data": {"zone": 1, "detail": [1, "two", 3.0]},
            }
        ],
        "lost": [{"stream": "telemetry", "first": 1, "last": 2, "reason": "overflow"}],
    }
    body.update(extra or {})
    return body


def seal_map(
    body: Mapping[Any, Any] | Sequence[Any] | Any,
    key: BatchKey,
) -> bytes:
    """Sign any payload value (usually a broken payload map) as a batch of ``key``."""
    return sign(cbor2.dumps(body), key, envelope(key))
