"""The split flow: keys made on the gateway, CSRs signed on the laptop, certs installed back."""

from __future__ import annotations

import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from provisioning.certs import site_name
from tests.provisioning.cli import edgectl, ok, rows


def _csr_pem(builder: x509.CertificateSigningRequestBuilder) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def test_csr_sign_install_then_check(site: dict[str, Path], tmp_path: Path) -> None:
    box = tmp_path / "box"
    made = ok(edgectl("gateway", "csr", "--site", "hq", "--id", "gw7", "--out", box, "--json"))
    assert set(made.json()["files"]) == {
        "signing_key",
        "tls_key",
        "signing_csr",
        "tls_csr",
        "config",
    }
    assert stat.S_IMODE((box / "signing.key").stat().st_mode) == 0o600
    keys_before = {n: (box / n).read_bytes() for n in ("signing.key", "tls.key")}
    for kind in ("signing", "tls"):
        signed = ok(
            edgectl(
                "ca",
                "sign",
                "--ca",
                site["ca"],
                "--csr",
                box / f"{kind}.csr",
                "--out",
                tmp_path / f"{kind}.crt",
                "--passphrase-env",
                "EDGE_CA_PASS",
                "--json",
            )
        )
        assert signed.json()["kind"] == kind and signed.json()["gateway"] == "gw7"
        ok(
            edgectl(
                "gateway",
                "install-cert",
                "--dir",
                box,
                "--cert",
                tmp_path / f"{kind}.crt",
                "--ca",
                site["ca"] / "ca.pem",
            )
        )
    assert {n: (box / n).read_bytes() for n in keys_before} == keys_before  # keys never moved
    by = rows(edgectl("check", "--config", box / "gateway.toml", "--json", "--timeout", "1"))
    for name in (
        "key pair signing",
        "key pair tls",
        "chain signing",
        "chain tls",
        "identity signing",
        "identity tls",
    ):
        assert by[name]["status"] == "pass", by[name]
    tls = x509.load_pem_x509_certificate((box / "tls.crt").read_bytes())
    eku = tls.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_ca_sign_refuses_csrs_that_ask_too_much(site: dict[str, Path], tmp_path: Path) -> None:
    def sign(pem: bytes, *extra: str) -> tuple[int, str]:
        path = tmp_path / "x.csr"
        path.write_bytes(pem)
        r = edgectl(
            "ca",
            "sign",
            "--ca",
            site["ca"],
            "--csr",
            path,
            "--out",
            tmp_path / "x.crt",
            "--passphrase-env",
            "EDGE_CA_PASS",
            *extra,
        )
        return r.code, r.err

    base = x509.CertificateSigningRequestBuilder().subject_name(site_name("hq", cn="hq-gw9"))
    uri = x509.SubjectAlternativeName([x509.UniformResourceIdentifier("urn:edge:hq:gw9")])
    server = base.add_extension(uri, critical=False).add_extension(
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
    )
    code, err = sign(_csr_pem(server), "--kind", "tls")
    assert code == 1 and "extended key usage" in err and "refusing to sign" in err
    ca_csr = base.add_extension(uri, critical=False).add_extension(
        x509.BasicConstraints(ca=True, path_length=None), critical=True
    )
    code, err = sign(_csr_pem(ca_csr), "--kind", "tls")
    assert code == 1 and "may not ask to be a CA" in err
    dns = base.add_extension(
        x509.SubjectAlternativeName(
            [x509.UniformResourceIdentifier("urn:edge:hq:gw9"), x509.DNSName("evil.example")]
        ),
        critical=False,
    )
    code, err = sign(_csr_pem(dns), "--kind", "tls")
    assert code == 1 and "only a URI" in err
    other_site = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(site_name("other", cn="other-gw9"))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier("urn:edge:other:gw9")]),
            critical=False,
        )
    )
    code, err = sign(_csr_pem(other_site), "--kind", "tls")
    assert code == 1 and "urn:edge:hq:" in err
    # a CSR altered after signing: its signature no longer verifies
    good = ok(edgectl("gateway", "csr", "--site", "hq", "--id", "gw8", "--out", tmp_path / "b"))
    assert good.code == 0
    pem = (tmp_path / "b" / "tls.csr").read_bytes()
    der = bytearray(x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER))
    at = bytes(der).find(b"hq-gw8")
    der[at + 3] ^= 0x01  # hq-gw8 -> hq-fw8 inside the signed part
    altered = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    code, err = sign(altered)
    assert code == 1 and "signature does not verify" in err
    assert not (tmp_path / "x.crt").exists()


def test_install_cert_refuses_foreign_certs(
    site: dict[str, Path], rival_template: dict[str, Path], tmp_path: Path
) -> None:
    box = tmp_path / "box"
    ok(edgectl("gateway", "csr", "--site", "hq", "--id", "gw7", "--out", box))
    # a certificate for another key (the site's own gw1 certificate)
    wrong_key = edgectl(
        "gateway",
        "install-cert",
        "--dir",
        box,
        "--cert",
        site["gw"] / "tls.crt",
        "--ca",
        site["ca"] / "ca.pem",
    )
    assert wrong_key.code == 1 and "does not match" in wrong_key.err
    # a certificate for this key but checked against another site's CA
    ok(
        edgectl(
            "ca",
            "sign",
            "--ca",
            site["ca"],
            "--csr",
            box / "tls.csr",
            "--out",
            tmp_path / "tls.crt",
            "--passphrase-env",
            "EDGE_CA_PASS",
        )
    )
    other = rival_template
    wrong_ca = edgectl(
        "gateway",
        "install-cert",
        "--dir",
        box,
        "--cert",
        tmp_path / "tls.crt",
        "--ca",
        other["ca"] / "ca.pem",
    )
    assert wrong_ca.code == 1 and "not issued by this CA" in wrong_ca.err
    assert not (box / "tls.crt").exists()
    assert not (box / "ca.pem").exists()
