"""Site CA, gateway, broker and operator certificates through the CLI, checked with openssl."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.provisioning.cli import CA_PASS, edgectl, ok


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _openssl_verify(ca: Path, leaf: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", "verify", *extra, "-CAfile", str(ca), str(leaf)],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_every_leaf_verifies_with_openssl_and_has_its_profile(
    site: dict[str, Path], tmp_path: Path
) -> None:
    s = site
    ca_pem, gw = s["ca"] / "ca.pem", s["gw"]
    broker = tmp_path / "broker"
    ok(
        edgectl(
            "broker-cert",
            "--ca",
            s["ca"],
            "--host",
            "localhost",
            "--ip",
            "127.0.0.1",
            "--out",
            broker,
            "--passphrase-env",
            "EDGE_CA_PASS",
        )
    )
    ok(
        edgectl(
            "operator",
            "--ca",
            s["ca"],
            "--name",
            "alice",
            "--role",
            "commander",
            "--out",
            tmp_path / "ops",
            "--passphrase-env",
            "EDGE_CA_PASS",
        )
    )
    leaves = {
        gw / "signing.crt": None,
        gw / "tls.crt": "sslclient",
        broker / "broker.crt": "sslserver",
        tmp_path / "ops" / "operator-alice.crt": "sslclient",
    }
    for leaf, purpose in leaves.items():
        plain = _openssl_verify(ca_pem, leaf)
        assert plain.returncode == 0 and ": OK" in plain.stdout, plain.stdout + plain.stderr
        if purpose:
            assert _openssl_verify(ca_pem, leaf, "-purpose", purpose).returncode == 0
    # a TLS server cert cannot pose as a client, and the reverse
    assert _openssl_verify(ca_pem, broker / "broker.crt", "-purpose", "sslclient").returncode != 0
    assert _openssl_verify(ca_pem, gw / "tls.crt", "-purpose", "sslserver").returncode != 0

    ca = _load(ca_pem)
    bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign and not ku.digital_signature
    nc = ca.extensions.get_extension_for_class(x509.NameConstraints).value
    assert nc.permitted_subtrees == [
        x509.DirectoryName(
            x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "edgesdk site hq")])
        )
    ]
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    lifetime = ca.not_valid_after_utc - ca.not_valid_before_utc
    assert 3640 <= lifetime.days <= 3660

    signing = _load(gw / "signing.crt")
    assert isinstance(signing.public_key(), ed25519.Ed25519PublicKey)
    sku = signing.extensions.get_extension_for_class(x509.KeyUsage).value
    assert sku.digital_signature and not (sku.key_cert_sign or sku.key_encipherment)
    with pytest.raises(x509.ExtensionNotFound):
        signing.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    aki = signing.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    san = signing.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["urn:edge:hq:gw1"]

    tls = _load(gw / "tls.crt")
    assert isinstance(tls.public_key(), ec.EllipticCurvePublicKey)
    assert tls.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "hq-gw1"
    eku = tls.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]

    bsan = (
        _load(broker / "broker.crt")
        .extensions.get_extension_for_class(x509.SubjectAlternativeName)
        .value
    )
    assert bsan.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(i) for i in bsan.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]

    op = _load(tmp_path / "ops" / "operator-alice.crt")
    assert (
        op.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "commander"
    )
    osan = op.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert osan.get_values_for_type(x509.UniformResourceIdentifier) == [
        "urn:edge:hq:operator:alice"
    ]

    # modes: CA dir 0700 with 0600 files; private keys 0600, certs 0644
    assert _mode(s["ca"]) == 0o700
    assert all(_mode(p) == 0o600 for p in s["ca"].iterdir())
    for key in (
        gw / "signing.key",
        gw / "tls.key",
        broker / "broker.key",
        tmp_path / "ops" / "operator-alice.key",
    ):
        assert _mode(key) == 0o600, key
    assert _mode(gw / "signing.crt") == 0o644


def test_name_constraints_reject_a_leaf_outside_the_site(
    site_template: dict[str, Path], tmp_path: Path, ca_pass_env: None
) -> None:
    """openssl enforces the CA's directory-name constraint on what it signs."""
    import datetime as dt

    from provisioning.ca import open_ca
    from provisioning.passphrase import PassphraseSource

    s = site_template
    ca = open_ca(s["ca"], PassphraseSource(env="EDGE_CA_PASS"))
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    rogue = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "edgesdk site other")])
        )
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(ca.key, None)
    )
    path = tmp_path / "rogue.pem"
    path.write_bytes(rogue.public_bytes(serialization.Encoding.PEM))
    result = _openssl_verify(s["ca"] / "ca.pem", path)
    assert result.returncode != 0
    assert "subtree" in (result.stdout + result.stderr)


def test_ca_key_is_encrypted_with_strong_kdf(site_template: dict[str, Path]) -> None:
    s = site_template
    key = s["ca"] / "ca.key"
    assert key.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    good = subprocess.run(
        ["openssl", "pkey", "-in", str(key), "-passin", f"pass:{CA_PASS}", "-noout"],
        capture_output=True,
        timeout=20,
        check=False,
    )
    assert good.returncode == 0
    bad = subprocess.run(
        ["openssl", "pkey", "-in", str(key), "-passin", "pass:wrong-one", "-noout"],
        capture_output=True,
        timeout=20,
        check=False,
    )
    assert bad.returncode != 0
    parsed = subprocess.run(
        ["openssl", "asn1parse", "-in", str(key)],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    ).stdout
    assert "PBES2" in parsed and "PBKDF2" in parsed and "aes-256-cbc" in parsed
    assert ":0927C0" in parsed  # 600,000 iterations


def test_wrong_passphrase_exit_3(site: dict[str, Path], tmp_path: Path) -> None:
    result = edgectl(
        "gateway",
        "create",
        "--ca",
        site["ca"],
        "--site",
        "hq",
        "--id",
        "gw2",
        "--out",
        tmp_path / "gw2",
        "--passphrase-env",
        "WRONG",
        env={"WRONG": "not the passphrase"},
    )
    assert result.code == 3
    assert "wrong passphrase" in result.err
    assert not (tmp_path / "gw2").exists()


def test_passphrase_missing_and_no_terminal_exit_2(site: dict[str, Path], tmp_path: Path) -> None:
    result = edgectl("broker-cert", "--ca", site["ca"], "--host", "b", "--out", tmp_path / "b")
    assert result.code == 2
    assert "no terminal" in result.err and "--passphrase-file" in result.err


def test_passphrase_file_and_json_output(site: dict[str, Path], tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text(CA_PASS + "\n")
    result = ok(
        edgectl(
            "operator",
            "--ca",
            site["ca"],
            "--name",
            "bob",
            "--role",
            "viewer",
            "--out",
            tmp_path / "ops",
            "--passphrase-file",
            pw,
            "--json",
        )
    )
    data = result.json()
    assert data["ok"] is True and data["uri"] == "urn:edge:hq:operator:bob"
    assert Path(data["files"]["cert"]).exists()


def test_refuses_to_overwrite_a_ca_exit_4(site: dict[str, Path]) -> None:
    before = (site["ca"] / "ca.key").read_bytes()
    result = edgectl(
        "ca", "init", "--site", "hq", "--out", site["ca"], "--passphrase-env", "EDGE_CA_PASS"
    )
    assert result.code == 4
    assert "already exists" in result.err
    assert (site["ca"] / "ca.key").read_bytes() == before


def test_site_mismatch_and_bad_names_exit_2(site: dict[str, Path], tmp_path: Path) -> None:
    wrong = edgectl(
        "gateway",
        "create",
        "--ca",
        site["ca"],
        "--site",
        "other",
        "--id",
        "g",
        "--out",
        tmp_path / "g",
        "--passphrase-env",
        "EDGE_CA_PASS",
    )
    assert wrong.code == 2 and "site 'hq'" in wrong.err
    bad = edgectl(
        "ca", "init", "--site", "a:b", "--out", tmp_path / "x", "--passphrase-env", "EDGE_CA_PASS"
    )
    assert bad.code == 2 and "may only use" in bad.err
    short = edgectl(
        "ca",
        "init",
        "--site",
        "s",
        "--out",
        tmp_path / "y",
        "--passphrase-env",
        "P",
        env={"P": "short"},
    )
    assert short.code == 2 and "shorter than 8" in short.err
    broker = edgectl(
        "gateway",
        "csr",
        "--site",
        "hq",
        "--id",
        "g",
        "--out",
        tmp_path / "z",
        "--broker",
        "http://broker:80",
    )
    assert broker.code == 2 and "--broker" in broker.err and "mqtts://" in broker.err
    assert not (tmp_path / "z").exists()
