"""A throw-away PKI for tests: a site CA, broker, gateway TLS and signing certificates.

Built directly with cryptography so gateway tests do not depend on the provisioning CLI
(which has its own tests doing the same through the real commands).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["TestPKI"]

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(path: Path, key: PrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.chmod(path, 0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


@dataclass
class TestPKI:
    __test__ = False  # not a test class, despite the name

    """Files under ``dir``: ca.crt, broker.{crt,key}, <gw>-tls.{crt,key}, <gw>-sign.{crt,key}."""

    dir: Path
    site: str = "hq"

    def __post_init__(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        self.ca_cert = (
            x509.CertificateBuilder()
            .subject_name(_name(f"{self.site} site CA"))
            .issuer_name(_name(f"{self.site} site CA"))
            .public_key(self.ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.ca_key.public_key()), critical=False
            )
            .sign(self.ca_key, hashes.SHA256())
        )
        _write_cert(self.ca, self.ca_cert)

    @property
    def ca(self) -> Path:
        return self.dir / "ca.crt"

    def _issue(
        self,
        cn: str,
        key: PrivateKey,
        *,
        eku: list[x509.ObjectIdentifier] | None,
        sans: list[x509.GeneralName],
        signing: bool = False,
        days: int = 30,
    ) -> x509.Certificate:
        now = dt.datetime.now(dt.UTC)
        b = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(self.ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                critical=False,
            )
        )
        if signing:
            b = b.add_extension(
                x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                critical=True,
            )
        else:
            b = b.add_extension(
                x509.KeyUsage(True, False, True, False, False, False, False, False, False),
                critical=True,
            )
        if eku:
            b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return b.sign(self.ca_key, hashes.SHA256())

    def broker(self, host: str = "127.0.0.1") -> dict[str, str]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._issue(
            "broker",
            key,
            eku=[ExtendedKeyUsageOID.SERVER_AUTH],
            sans=[x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("localhost")],
        )
        _write_key(self.dir / "broker.key", key)
        _write_cert(self.dir / "broker.crt", cert)
        return {
            "cafile": str(self.ca),
            "certfile": str(self.dir / "broker.crt"),
            "keyfile": str(self.dir / "broker.key"),
        }

    def client(self, name: str) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._issue(name, key, eku=[ExtendedKeyUsageOID.CLIENT_AUTH], sans=[])
        _write_key(self.dir / f"{name}-tls.key", key)
        _write_cert(self.dir / f"{name}-tls.crt", cert)
        return self.dir / f"{name}-tls.crt", self.dir / f"{name}-tls.key"

    def signing(self, gw: str) -> tuple[Path, Path, ed25519.Ed25519PrivateKey]:
        key = ed25519.Ed25519PrivateKey.generate()
        cert = self._issue(
            f"{self.site}-{gw} signing",
            key,
            eku=None,
            sans=[x509.UniformResourceIdentifier(f"urn:edge:{self.site}:{gw}")],
            signing=True,
        )
        _write_key(self.dir / f"{gw}-sign.key", key)
        _write_cert(self.dir / f"{gw}-sign.crt", cert)
        return self.dir / f"{gw}-sign.crt", self.dir / f"{gw}-sign.key", key
