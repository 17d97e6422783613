"""``provision rotate``: a new signing key; the old certificate kept, the old key erased."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.provisioning.cli import edgectl, ok, rows


def test_rotate_signing_key(site: dict[str, Path]) -> None:
    gw, cfg = site["gw"], site["config"]
    old_key = (gw / "signing.key").read_bytes()
    old_cert = x509.load_pem_x509_certificate((gw / "signing.crt").read_bytes())
    comments = [line for line in cfg.read_text().splitlines() if line.lstrip().startswith("#")]

    result = ok(
        edgectl(
            "rotate",
            "--config",
            cfg,
            "--ca",
            site["ca"],
            "--passphrase-env",
            "EDGE_CA_PASS",
            "--json",
        )
    ).json()
    aside = gw / f"signing-{old_cert.serial_number:x}.crt"
    assert aside.read_bytes() == old_cert.public_bytes(serialization.Encoding.PEM)
    assert result["old_serial"] == f"{old_cert.serial_number:x}"
    assert result["old_kid"] != result["new_kid"] and len(result["new_kid"]) == 32

    new_key = (gw / "signing.key").read_bytes()
    assert new_key != old_key
    assert stat.S_IMODE((gw / "signing.key").stat().st_mode) == 0o600
    for path in gw.iterdir():  # the old private key is nowhere in the directory any more
        if path.is_file():
            assert old_key not in path.read_bytes(), path
    data = tomllib.loads(cfg.read_text())
    assert data["gateway"]["previous_signing_certs"] == [aside.name]
    now_comments = [line for line in cfg.read_text().splitlines() if line.lstrip().startswith("#")]
    assert now_comments == comments

    by = rows(edgectl("check", "--config", cfg, "--json", "--timeout", "1"))
    assert by["key pair signing"]["status"] == "pass"
    assert by["chain signing"]["status"] == "pass"
    assert by["previous cert 1"]["status"] == "pass"

    ok(edgectl("rotate", "--config", cfg, "--ca", site["ca"], "--passphrase-env", "EDGE_CA_PASS"))
    assert len(tomllib.loads(cfg.read_text())["gateway"]["previous_signing_certs"]) == 2


def test_rotate_refuses_another_sites_ca(
    site: dict[str, Path], west_template: dict[str, Path]
) -> None:
    other = west_template
    before = (site["gw"] / "signing.key").read_bytes()
    result = edgectl(
        "rotate",
        "--config",
        site["config"],
        "--ca",
        other["ca"],
        "--passphrase-env",
        "EDGE_CA_PASS",
    )
    assert result.code == 2 and "CA is for site 'west'" in result.err
    assert (site["gw"] / "signing.key").read_bytes() == before
