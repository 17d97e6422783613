"""Which signing keys a consumer trusts: site CAs (keys learned from births) and pinned certs.

A gateway announces its signing certificate in its retained **birth** message. A consumer
configured with only the site CA learns that key after checking, by hand, the one-level
chain the provisioning tool builds (``provisioning/certs.py``):

* the CA is a CA (basicConstraints ``CA:TRUE``; keyCertSign when keyUsage is present);
* the leaf names the CA as issuer and ``leaf.verify_directly_issued_by(ca)`` holds;
* the leaf is not a CA, has keyUsage with digitalSignature, and lies (with the CA) inside
  its validity period at the birth's sealing time;
* the leaf's subject sits inside the CA's directoryName name constraints, if any;
* the leaf has exactly one SAN URI ``urn:edge:{site}:{gw}`` equal to the birth's site and
  gateway (site CA ``urn:edge:<site>:ca`` and operator URIs are refused), and a CA that
  names its site (``urn:edge:<site>:ca``) only vouches for that site.

Why by hand and not ``cryptography.x509.verification``: that verifier implements the Web
PKI profile (it rejects Ed25519 CAs and keys, which provisioning issues), while this chain
is exactly one level with fixed rules.

Certificates in a directory (``--certs``) are **pinned** instead: trusted as they are, like
:meth:`edgesdk.verify.Verifier.from_cert_files`.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from edgesdk import batch as _batch
from edgesdk.errors import ConfigError, SignatureError
from edgesdk.verify import TrustedKey, Verifier

__all__ = ["CERT_SUFFIXES", "SiteTrust", "load_certificates"]

CERT_SUFFIXES = frozenset({".pem", ".crt", ".cer", ".der"})
_URN = "urn:edge:"


def load_certificates(path: Path) -> list[x509.Certificate]:
    """Every certificate in a PEM (one or many) or DER file; ConfigError names the file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read certificate: {exc.strerror or exc}", file=str(path)
        ) from exc
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise ConfigError(f"not a certificate: {exc}", file=str(path)) from exc


def _ext(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _edge_uris(cert: x509.Certificate) -> list[str]:
    san = _ext(cert, x509.SubjectAlternativeName)
    if not isinstance(san, x509.SubjectAlternativeName):
        return []
    return [
        u for u in san.get_values_for_type(x509.UniformResourceIdentifier) if u.startswith(_URN)
    ]


def _ca_site(ca: x509.Certificate) -> str | None:
    for uri in _edge_uris(ca):
        parts = uri[len(_URN) :].split(":")
        if len(parts) == 2 and parts[1] == "ca":
            return parts[0]
    return None


def _check_ca(ca: x509.Certificate) -> None:
    name = ca.subject.rfc4514_string()
    bc = _ext(ca, x509.BasicConstraints)
    if not isinstance(bc, x509.BasicConstraints) or not bc.ca:
        raise ConfigError(
            f"{name} is not a CA certificate (no basicConstraints CA:TRUE)",
            fix="give the site CA certificate (ca.pem from 'edgectl provision ca init')",
        )
    ku = _ext(ca, x509.KeyUsage)
    if isinstance(ku, x509.KeyUsage) and not ku.key_cert_sign:
        raise ConfigError(f"{name} may not sign certificates (keyUsage lacks keyCertSign)")


def _within(subject: x509.Name, base: x509.Name) -> bool:
    """RFC 5280 directoryName constraint: ``base``'s RDNs are a prefix of ``subject``'s."""
    rdns, prefix = list(subject.rdns), list(base.rdns)
    return rdns[: len(prefix)] == prefix


def _check_name_constraints(cert: x509.Certificate, ca: x509.Certificate) -> None:
    nc = _ext(ca, x509.NameConstraints)
    if not isinstance(nc, x509.NameConstraints):
        return
    permitted = [g.value for g in nc.permitted_subtrees or () if isinstance(g, x509.DirectoryName)]
    excluded = [g.value for g in nc.excluded_subtrees or () if isinstance(g, x509.DirectoryName)]
    if permitted and not any(_within(cert.subject, p) for p in permitted):
        raise SignatureError(
            f"subject {cert.subject.rfc4514_string()} is outside the CA's name constraints"
        )
    if any(_within(cert.subject, e) for e in excluded):
        raise SignatureError(f"subject {cert.subject.rfc4514_string()} is excluded by the CA")


def _validity(cert: x509.Certificate, at: dt.datetime, what: str) -> None:
    if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
        raise SignatureError(
            f"{what} is valid {cert.not_valid_before_utc.isoformat()} .. "
            f"{cert.not_valid_after_utc.isoformat()}, not at {at.isoformat()}"
        )


class SiteTrust:
    """Trust anchors (site CAs) and the growing set of trusted signing keys.

    :attr:`verifier` is an :class:`~edgesdk.verify.Verifier` holding the pinned keys and
    every key learned so far; :meth:`learn` adds one after the chain checks above.
    Thread-safe for learning (the verifier locks its own writes).
    """

    def __init__(
        self,
        cas: Iterable[x509.Certificate] = (),
        *,
        pinned: Iterable[x509.Certificate] = (),
    ) -> None:
        self.cas = list(cas)
        for ca in self.cas:
            _check_ca(ca)
        self.verifier = Verifier()
        self._lock = threading.Lock()
        for cert in pinned:
            self.verifier.add_certificate(cert, source=f"pinned {cert.subject.rfc4514_string()}")
        if not self.cas and not self.verifier.keys:
            raise ConfigError(
                "no trust anchors: give a site CA certificate or a directory of signing "
                "certificates",
                fix="--ca site-ca.pem and/or --certs DIR",
            )

    @classmethod
    def from_files(
        cls,
        cas: Iterable[str | os.PathLike[str]] = (),
        *,
        certs_dir: str | os.PathLike[str] | None = None,
    ) -> SiteTrust:
        """Site CAs from PEM/DER files; pinned signing certificates from a directory."""
        ca_certs = [c for path in cas for c in load_certificates(Path(path))]
        pinned: list[x509.Certificate] = []
        if certs_dir is not None:
            certs_dir = Path(certs_dir)
            if not certs_dir.is_dir():
                raise ConfigError("not a directory", file=str(certs_dir), key="--certs")
            for path in sorted(certs_dir.iterdir()):
                if path.suffix.lower() in CERT_SUFFIXES and path.is_file():
                    pinned.extend(load_certificates(path))
            if not pinned:
                raise ConfigError(
                    "no certificates (*.pem, *.crt, *.cer, *.der) found",
                    file=str(certs_dir),
                    key="--certs",
                )
        try:
            return cls(ca_certs, pinned=pinned)
        except ConfigError as exc:
            raise ConfigError(exc.reason, key=exc.key, fix=exc.fix) from exc

    def trusts(self, kid: bytes) -> bool:
        return kid in self.verifier.keys

    def check(
        self, cert: x509.Certificate, *, site: str, gw: str, at: float | None
    ) -> x509.Certificate:
        """Check ``cert`` as a signing certificate of ``site``/``gw``; returns its CA.

        ``at`` (epoch seconds, the birth's sealing time) must lie in both validity periods;
        ``None`` (a rotated-out certificate) only requires it was issued while the CA was
        valid: each batch's time is still checked against it when verifying.
        Raises :class:`~edgesdk.errors.SignatureError` saying which check failed.
        """
        uris = _edge_uris(cert)
        if len(uris) != 1:
            raise SignatureError(f"certificate has {len(uris)} urn:edge: SAN URIs; expected one")
        if uris[0] != f"{_URN}{site}:{gw}":
            raise SignatureError(f"certificate names {uris[0]!r}, not {_URN}{site}:{gw}")
        bc = _ext(cert, x509.BasicConstraints)
        if isinstance(bc, x509.BasicConstraints) and bc.ca:
            raise SignatureError("a CA certificate cannot be a signing certificate")
        ku = _ext(cert, x509.KeyUsage)
        if not isinstance(ku, x509.KeyUsage) or not ku.digital_signature:
            raise SignatureError("certificate keyUsage lacks digitalSignature")
        problems: list[str] = []
        for ca in self.cas:
            try:
                self._check_issued(cert, ca, site, at)
            except SignatureError as exc:
                problems.append(str(exc))
                continue
            return ca
        if not self.cas:
            raise SignatureError("no site CA is configured to vouch for certificates")
        raise SignatureError("; ".join(problems))

    def _check_issued(
        self, cert: x509.Certificate, ca: x509.Certificate, site: str, at: float | None
    ) -> None:
        ca_name = ca.subject.rfc4514_string()
        if cert.issuer != ca.subject:
            raise SignatureError(
                f"issued by {cert.issuer.rfc4514_string()}, not by the site CA {ca_name}"
            )
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise SignatureError(
                f"not signed by the site CA {ca_name}: {exc or 'bad signature'}"
            ) from exc
        ca_site = _ca_site(ca)
        if ca_site is not None and ca_site != site:
            raise SignatureError(f"the CA {ca_name} is for site {ca_site!r}, not {site!r}")
        _check_name_constraints(cert, ca)
        if at is None:
            _validity(ca, cert.not_valid_before_utc, f"the site CA {ca_name}")
            return
        try:
            when = dt.datetime.fromtimestamp(at, dt.UTC)
        except (OverflowError, OSError, ValueError) as exc:  # a hostile t such as 1e300
            raise SignatureError(f"sealing time t={at!r} is not a representable date") from exc
        _validity(cert, when, "the certificate")
        _validity(ca, when, f"the site CA {ca_name}")

    def covers(self, cert: x509.Certificate) -> bool:
        """Whether ``cert``'s key is trusted already for all of ``cert``'s validity (or
        pinned without a binding): learning it again would add nothing."""
        known = self.verifier.keys.get(self.kid_of(cert))
        if known is None:
            return False
        if known.site is None or known.not_before is None or known.not_after is None:
            return True
        return (
            known.not_before <= cert.not_valid_before_utc
            and cert.not_valid_after_utc <= known.not_after
        )

    def learn(
        self, cert: x509.Certificate, *, site: str, gw: str, at: float | None, source: str
    ) -> bytes:
        """:meth:`check` then trust the certificate's key (bound to site/gw); returns kid.

        A key already learned from another certificate (a renewal that kept the key) keeps
        its binding and gets the union of both validity periods, so batches sealed under
        either certificate still verify.
        """
        self.check(cert, site=site, gw=gw, at=at)
        kid = self.kid_of(cert)
        with self._lock:
            known = self.verifier.keys.get(kid)
            start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
            if (
                known is not None
                and (known.site, known.gw) == (site, gw)
                and known.not_before is not None
                and known.not_after is not None
            ):
                start, end = min(start, known.not_before), max(end, known.not_after)
            key = cert.public_key()
            if not isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
                raise SignatureError(f"certificate key type {type(key).__name__} unsupported")
            trusted = TrustedKey(key, site, gw, start, end, source)
            try:
                return self.verifier.add_key(trusted, kid=kid)
            except ConfigError as exc:  # e.g. an EC key on another curve
                raise SignatureError(f"certificate key cannot be used: {exc}") from exc

    @staticmethod
    def kid_of(cert: x509.Certificate) -> bytes:
        """The kid a batch signed by ``cert``'s key carries."""
        key = cert.public_key()
        try:
            return _batch.kid_for(key)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise SignatureError(f"unsupported certificate key: {exc}") from exc
