"""Private keys: generate, encrypt at rest (PKCS#8), load with a passphrase, compare.

Only two key types are issued: Ed25519 (small, fast, deterministic signatures; what the
gateway signs batches with) and ECDSA P-256 (what every TLS stack and broker accepts).
Both are what :mod:`edgesdk.cose` signs and verifies with.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal, TypeAlias

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from provisioning.errors import CryptoError
from provisioning.files import read_bytes

__all__ = [
    "KeyType",
    "PrivateKey",
    "PublicKey",
    "fingerprint",
    "generate",
    "key_type_of",
    "load_private_key",
    "private_pem",
    "same_key",
    "spki_der",
]

KeyType: TypeAlias = Literal["ed25519", "p256"]
PrivateKey: TypeAlias = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
PublicKey: TypeAlias = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


def generate(kind: KeyType) -> PrivateKey:
    """A fresh private key of ``kind``."""
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1())


def key_type_of(key: PrivateKey | PublicKey | object) -> str:
    """``ed25519``, ``p256``, or a description of an unsupported key."""
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return "p256" if isinstance(key.curve, ec.SECP256R1) else f"ec-{key.curve.name}"
    return type(key).__name__


def private_pem(key: PrivateKey, passphrase: bytes | None = None) -> bytes:
    """PKCS#8 PEM; encrypted with ``passphrase`` when given (see :mod:`provisioning.pkcs8`)."""
    if passphrase:
        from provisioning.pkcs8 import encrypted_pem

        return encrypted_pem(key, passphrase)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key(path: Path, passphrase: bytes | None, what: str) -> PrivateKey:
    """Load a PEM private key; CryptoError says whether the passphrase is wrong or missing."""
    data = read_bytes(path, what)
    encrypted = b"ENCRYPTED" in data.split(b"\n", 1)[0]
    if encrypted and not passphrase:
        raise CryptoError(f"{what} {path} is encrypted and no passphrase was given")
    try:
        key = serialization.load_pem_private_key(data, passphrase if encrypted else None)
    except ValueError as exc:
        if encrypted:
            raise CryptoError(
                f"wrong passphrase for {what} {path} (or the file is damaged); "
                "check the passphrase file or variable"
            ) from exc
        raise CryptoError(f"{what} {path} is not a readable PEM private key: {exc}") from exc
    except TypeError as exc:
        raise CryptoError(f"{what} {path}: {exc}") from exc
    if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        raise CryptoError(f"{what} {path} is a {type(key).__name__}; use Ed25519 or P-256")
    return key


def spki_der(key: PrivateKey | PublicKey) -> bytes:
    """SubjectPublicKeyInfo DER of a key (a private key gives its public half)."""
    public = (
        key.public_key()
        if isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey)
        else key
    )
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def fingerprint(key: PrivateKey | PublicKey) -> str:
    """SHA-256 of the SubjectPublicKeyInfo, hex: safe to print, identifies the key."""
    return hashlib.sha256(spki_der(key)).hexdigest()


def same_key(a: PrivateKey | PublicKey, b: PrivateKey | PublicKey) -> bool:
    """Whether two keys (private or public) share the same public key."""
    return spki_der(a) == spki_der(b)
