"""The site CA directory: one encrypted key, one certificate, a bundle counter, a log.

Layout (directory 0700, every file 0600)::

    ca.key            PKCS#8, encrypted with the CA passphrase
    ca.pem            the self-signed site CA certificate (give this one to brokers/gateways)
    bundle-sequence   the last sequence number put into a signed bundle
    issued.jsonl      one JSON line per certificate issued (serial, kind, subject, expiry)

The CA key is only ever decrypted in memory, for the one command that needs it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from provisioning import certs, keys
from provisioning.errors import CryptoError, FileAccessError, VerificationError
from provisioning.files import PRIVATE, ensure_dir, read_bytes, write_file
from provisioning.passphrase import PassphraseSource

__all__ = ["CA_CERT", "CA_KEY", "SiteCA", "init_ca", "load_ca_cert", "open_ca"]

CA_KEY = "ca.key"
CA_CERT = "ca.pem"
SEQUENCE = "bundle-sequence"
ISSUED = "issued.jsonl"


@dataclass(frozen=True, slots=True)
class SiteCA:
    """An opened site CA: its directory, certificate, site and decrypted key."""

    directory: Path
    cert: x509.Certificate
    key: keys.PrivateKey
    site: str

    @property
    def cert_path(self) -> Path:
        return self.directory / CA_CERT

    def issue(
        self,
        public_key: keys.PublicKey,
        kind: certs.Kind,
        *,
        cn: str,
        ou: str | None = None,
        uris: Sequence[str] = (),
        dns: Sequence[str] = (),
        ips: Sequence[str] = (),
        days: int = certs.LEAF_DAYS,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> x509.Certificate:
        """Issue a leaf (see :func:`provisioning.certs.issue`) and log it in issued.jsonl."""
        cert = certs.issue(
            ca_key=self.key,
            ca_cert=self.cert,
            public_key=public_key,
            kind=kind,
            cn=cn,
            ou=ou,
            uris=uris,
            dns=dns,
            ips=ips,
            days=days,
            not_before=not_before,
            not_after=not_after,
        )
        entry = {
            "serial": f"{cert.serial_number:x}",
            "kind": str(kind),
            "subject": cert.subject.rfc4514_string(),
            "uris": certs.uris(cert),
            "not_after": cert.not_valid_after_utc.isoformat(),
            "issued": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        log = self.directory / ISSUED
        try:
            fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry, sort_keys=True) + "\n")
        except OSError as exc:
            raise FileAccessError(f"cannot append to {log}: {exc.strerror}") from exc
        return cert

    def last_sequence(self) -> int:
        """The last bundle sequence number used with this CA (0 when none)."""
        path = self.directory / SEQUENCE
        if not path.exists():
            return 0
        text = read_bytes(path, "bundle sequence file").decode(errors="replace").strip()
        try:
            return int(text)
        except ValueError as exc:
            raise FileAccessError(
                f"{path} does not hold a number ({text!r}); put the last sequence number in it"
            ) from exc

    def record_sequence(self, sequence: int) -> None:
        """Remember ``sequence`` as the last one used, if it is higher than the stored one."""
        if sequence > self.last_sequence():
            write_file(
                self.directory / SEQUENCE, f"{sequence}\n".encode(), mode=PRIVATE, overwrite=True
            )


def init_ca(
    directory: Path,
    site: str,
    key_type: keys.KeyType,
    passphrase: bytes,
    *,
    days: int = certs.CA_DAYS,
) -> SiteCA:
    """Create a new site CA in ``directory`` (refuses to touch an existing CA)."""
    for name in (CA_KEY, CA_CERT):
        if (directory / name).exists():
            raise FileAccessError(
                f"{directory / name} already exists: this directory holds a CA already; "
                "choose another --out (never overwrite a CA key that has issued certificates)"
            )
    ensure_dir(directory, 0o700)
    key = keys.generate(key_type)
    cert = certs.make_ca(key, site, days=days)
    write_file(directory / CA_KEY, keys.private_pem(key, passphrase), mode=PRIVATE)
    write_file(directory / CA_CERT, certs.cert_pem(cert), mode=PRIVATE)
    return SiteCA(directory=directory, cert=cert, key=key, site=site)


def _ca_cert_path(path: Path) -> Path:
    return path / CA_CERT if path.is_dir() else path


def load_ca_cert(path: Path) -> x509.Certificate:
    """The CA certificate from a CA directory or a ca.pem file; checks it is a site CA."""
    cert = certs.load_cert(_ca_cert_path(path), "CA certificate")
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise VerificationError(
            f"{_ca_cert_path(path)} is not a CA certificate; give the site's ca.pem"
        )
    certs.site_of_ca(cert)
    return cert


def open_ca(directory: Path, passphrase: PassphraseSource) -> SiteCA:
    """Open the CA in ``directory``: load the certificate, decrypt the key, match them."""
    if not (directory / CA_KEY).exists():
        raise FileAccessError(
            f"no CA key in {directory} ({CA_KEY} missing); give the directory made by "
            "'provision ca init' with --ca"
        )
    cert = load_ca_cert(directory)
    key = keys.load_private_key(directory / CA_KEY, passphrase.read(), "CA key")
    if not keys.same_key(key, certs.public_key_of(cert)):
        raise CryptoError(f"{directory / CA_KEY} does not belong to {directory / CA_CERT}")
    return SiteCA(directory=directory, cert=cert, key=key, site=certs.site_of_ca(cert))
