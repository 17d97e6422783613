"""The gateway's signing identity: private key, certificate, previous certificates.

The key file must be private to its owner (mode 0600 or stricter), as OpenSSH insists for
its keys: a gateway whose signing key others can read proves nothing. Keys are never
logged; only their ``kid`` is.
"""

from __future__ import annotations

import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from edgesdk import batch
from edgesdk.batch import BatchHeader, LostRange
from edgesdk.cose import PrivateKey
from edgesdk.errors import ConfigError
from edgesdk.model import Event, Reading, ReadingBlock
from gateway.config import IdentityConfig

__all__ = ["Identity", "check_private", "load_identity"]


def check_private(path: Path, key: str) -> None:
    """Refuse a private key file that group or others can read or write."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(
            f"cannot read {path}: {exc.strerror}",
            key=key,
            fix="check the path (edgectl provision check)",
        ) from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"private key {path} is accessible by others (mode {stat.S_IMODE(mode):o})",
            key=key,
            fix=f"chmod 600 {path}",
        )


@dataclass(frozen=True)
class Identity:
    site: str
    gw: str
    key: PrivateKey
    cert: x509.Certificate
    previous: tuple[x509.Certificate, ...]

    @property
    def kid(self) -> bytes:
        return batch.kid_for(self.key.public_key())

    def cert_der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    def previous_der(self) -> list[bytes]:
        return [c.public_bytes(serialization.Encoding.DER) for c in self.previous]

    def seal(
        self,
        header: BatchHeader,
        *,
        readings: Sequence[Reading | ReadingBlock],
        events: Sequence[Event],
        lost: Sequence[LostRange],
        extra: dict[str, Any] | None,
    ) -> bytes:
        """The store's sealer: sign a batch with this identity's key."""
        return batch.seal(
            header, key=self.key, readings=readings, events=events, lost=lost, extra=extra
        )


def _load_cert(path: Path, key: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except OSError as exc:
        raise ConfigError(
            f"cannot read certificate {path}: {exc.strerror}", key=key, fix="check the path"
        ) from exc
    except ValueError as exc:
        raise ConfigError(
            f"{path} is not a PEM certificate: {exc}",
            key=key,
            fix="point it at the PEM certificate from edgectl provision",
        ) from exc


def load_identity(cfg: IdentityConfig) -> Identity:
    """Load and cross-check the signing key and certificate (key matches certificate)."""
    check_private(cfg.signing_key, "gateway.signing_key")
    password = cfg.signing_key_passphrase.read() if cfg.signing_key_passphrase else None
    try:
        key = serialization.load_pem_private_key(cfg.signing_key.read_bytes(), password=password)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"cannot load signing key {cfg.signing_key}: {exc}",
            key="gateway.signing_key",
            fix="check the key file and gateway.signing_key_passphrase",
        ) from None
    if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        raise ConfigError(
            f"signing key {cfg.signing_key} is a {type(key).__name__}",
            key="gateway.signing_key",
            fix="use an Ed25519 or P-256 key",
        )
    if isinstance(key, ec.EllipticCurvePrivateKey) and not isinstance(key.curve, ec.SECP256R1):
        raise ConfigError(
            "signing key must be on P-256",
            key="gateway.signing_key",
            fix="use an Ed25519 or P-256 key",
        )
    cert = _load_cert(cfg.signing_cert, "gateway.signing_cert")
    if cert.public_key() != key.public_key():
        raise ConfigError(
            f"{cfg.signing_cert} does not belong to the key {cfg.signing_key}",
            key="gateway.signing_cert",
            fix="install the certificate issued for this key (edgectl provision gateway "
            "install-cert)",
        )
    previous = tuple(
        _load_cert(p, f"gateway.previous_signing_certs[{i}]")
        for i, p in enumerate(cfg.previous_signing_certs)
    )
    return Identity(cfg.site, cfg.id, key, cert, previous)
