"""The gateway's signing identity: private key, certificate, previous certificates.

The key file must be private to its owner (mode 0600 or stricter), as OpenSSH insists for
its keys: a gateway whose signing key others can read proves nothing. Keys are never
logged; only their ``kid`` is.

The certificates are kept as DER and checked with the standard library's OpenSSL (the one
the TLS uplink loads anyway): OpenSSL parses each one and checks that the signing key
belongs to its certificate. cryptography's X.509 layer is 43 modules and +2.7 MB of
resident memory in a process that only needs the DER bytes (docs/performance.md).
"""

from __future__ import annotations

import ssl
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    cert: bytes  # DER
    previous: tuple[bytes, ...]  # DER

    @property
    def kid(self) -> bytes:
        return batch.kid_for(self.key.public_key())

    def cert_der(self) -> bytes:
        return self.cert

    def previous_der(self) -> list[bytes]:
        return list(self.previous)

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


def _load_cert(path: Path, key: str) -> bytes:
    """The DER of the PEM certificate at ``path``, parsed by OpenSSL."""
    try:
        text = path.read_text(encoding="ascii")
    except OSError as exc:
        raise ConfigError(
            f"cannot read certificate {path}: {exc.strerror}", key=key, fix="check the path"
        ) from exc
    except UnicodeDecodeError:
        text = ""
    begin, end = text.find(ssl.PEM_HEADER), text.find(ssl.PEM_FOOTER)
    try:  # the first certificate of the file, as cryptography's loader takes it
        der = ssl.PEM_cert_to_DER_cert(text[begin : end + len(ssl.PEM_FOOTER)])
        # a throwaway trust store: OpenSSL parses the certificate or refuses it
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=der)
    except (ValueError, ssl.SSLError) as exc:
        raise ConfigError(
            f"{path} is not a PEM certificate: {exc}",
            key=key,
            fix="point it at the PEM certificate from edgectl provision",
        ) from None
    return der


def _check_pair(cert: Path, key: Path, password: bytes | None) -> None:
    """OpenSSL's own check (SSL_CTX_check_private_key) that ``key`` belongs to ``cert``."""
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(
            # never None: OpenSSL would prompt on the terminal for an encrypted key
            str(cert),
            str(key),
            password=b"" if password is None else password,
        )
    except ssl.SSLError as exc:
        raise ConfigError(
            f"{cert} does not belong to the key {key} ({exc.reason or exc})",
            key="gateway.signing_cert",
            fix="install the certificate issued for this key (edgectl provision gateway "
            "install-cert)",
        ) from None


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
    _check_pair(cfg.signing_cert, cfg.signing_key, password)
    previous = tuple(
        _load_cert(p, f"gateway.previous_signing_certs[{i}]")
        for i, p in enumerate(cfg.previous_signing_certs)
    )
    return Identity(cfg.site, cfg.id, key, cert, previous)
