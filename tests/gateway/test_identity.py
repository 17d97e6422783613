"""The gateway's signing identity, loaded from real key and certificate files: Ed25519 and
P-256 keys, an encrypted key, a certificate chain file, and every file an installer can get
wrong (another gateway's certificate, not a certificate, a key others can read), each
refused with the key to fix. The certificates are checked by the standard library's
OpenSSL; the tests compare with cryptography's own parse of the same files."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from edgesdk import batch
from edgesdk.errors import ConfigError
from gateway.config import IdentityConfig
from gateway.identity import load_identity
from tests.pki import TestPKI


def config(cert: Path, key: Path, **extra: object) -> IdentityConfig:
    return IdentityConfig.model_validate(
        {"site": "hq", "id": "gw1", "signing_key": key, "signing_cert": cert, **extra}
    )


def der_of(path: Path) -> bytes:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return cert.public_bytes(serialization.Encoding.DER)


def p256_pair(pki: TestPKI, *, password: bytes | None = None) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = pki._issue("hq-gw1 signing", key, eku=None, sans=[], signing=True)
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    key_path, cert_path = pki.dir / "p256.key", pki.dir / "p256.crt"
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def refused(cfg: IdentityConfig) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_identity(cfg)
    return info.value


def test_an_ed25519_identity_carries_its_certificate_as_der(pki: TestPKI) -> None:
    cert, key, private = pki.signing("gw1")
    old_cert, _, _ = pki.signing("gw0")
    ident = load_identity(config(cert, key, previous_signing_certs=[old_cert]))
    assert ident.cert_der() == der_of(cert)
    assert ident.previous_der() == [der_of(old_cert)]
    assert ident.kid == batch.kid_for(private.public_key())
    assert (ident.site, ident.gw) == ("hq", "gw1")


def test_a_p256_identity_and_an_encrypted_key(pki: TestPKI, tmp_path: Path) -> None:
    cert, key = p256_pair(pki)
    assert load_identity(config(cert, key)).cert_der() == der_of(cert)
    cert, key = p256_pair(pki, password=b"s3cret passphrase")
    secret = tmp_path / "pass"
    secret.write_text("s3cret passphrase\n")
    ident = load_identity(config(cert, key, signing_key_passphrase={"file": secret}))
    assert ident.cert_der() == der_of(cert)
    err = refused(config(cert, key))  # no passphrase: refused, never a terminal prompt
    assert err.key == "gateway.signing_key" and "passphrase" in str(err)


def test_a_chain_file_gives_its_first_certificate(pki: TestPKI) -> None:
    cert, key, _ = pki.signing("gw1")
    chain = pki.dir / "chain.pem"
    chain.write_bytes(b"issued by edgectl\n" + cert.read_bytes() + pki.ca.read_bytes())
    assert load_identity(config(chain, key)).cert_der() == der_of(cert)


def test_another_gateways_certificate_is_refused(pki: TestPKI) -> None:
    _, key, _ = pki.signing("gw1")
    other, _, _ = pki.signing("gw2")
    err = refused(config(other, key))
    assert err.key == "gateway.signing_cert"
    assert "does not belong to the key" in str(err) and "install-cert" in str(err)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\xff\xfe not text",
        b"just some text\n",
        b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
        b"-----BEGIN CERTIFICATE-----\nMIIB\n",  # cut short
    ],
    ids=["empty", "binary", "text", "not-der", "truncated"],
)
def test_a_file_that_is_no_certificate_is_refused(pki: TestPKI, content: bytes) -> None:
    cert, key, _ = pki.signing("gw1")
    bad = pki.dir / "bad.crt"
    bad.write_bytes(content)
    err = refused(config(bad, key))
    assert err.key == "gateway.signing_cert" and "is not a PEM certificate" in str(err)
    err = refused(config(cert, key, previous_signing_certs=[cert, bad]))
    assert err.key == "gateway.previous_signing_certs[1]"
    err = refused(config(pki.dir / "missing.crt", key))
    assert err.key == "gateway.signing_cert" and "cannot read certificate" in str(err)


def test_a_key_others_can_read_is_refused(pki: TestPKI) -> None:
    cert, key, _ = pki.signing("gw1")
    key.chmod(0o640)
    err = refused(config(cert, key))
    assert err.key == "gateway.signing_key" and "chmod 600" in str(err)
