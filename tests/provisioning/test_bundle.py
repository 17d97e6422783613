"""Signed bundles: create, verify, install; tampering, rollback, wrong site and passphrase."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path
from typing import Any

import cbor2
import pytest

from tests.provisioning.cli import edgectl, ok, rows
from tests.provisioning.conftest import copy_site

CA = ("--passphrase-env", "EDGE_CA_PASS")
KEYS = ("--include-keys", "--bundle-passphrase-env", "EDGE_BUNDLE_PASS")


def _create(site: dict[str, Path], out: Path, *extra: object) -> dict[str, Any]:
    result = ok(
        edgectl(
            "bundle",
            "create",
            "--config",
            site["config"],
            "--ca",
            site["ca"],
            "--out",
            out,
            *CA,
            *extra,
            "--json",
        )
    )
    data: dict[str, Any] = result.json()
    return data


def test_create_verify_install_with_keys(site: dict[str, Path], tmp_path: Path) -> None:
    bundle = tmp_path / "gw1.bundle"
    made = _create(site, bundle, *KEYS)
    assert made["sequence"] == 1 and made["site"] == "hq" and made["gateway"] == "gw1"
    files = {f["path"]: f for f in made["files"]}
    assert set(files) == {
        "gateway.toml",
        "ca.pem",
        "signing.crt",
        "tls.crt",
        "signing.key",
        "tls.key",
    }
    assert files["signing.key"]["encrypted"] and not files["tls.crt"]["encrypted"]
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o600  # it carries keys
    assert b"PRIVATE KEY" not in bundle.read_bytes()  # encrypted, not PEM in the clear

    verified = ok(
        edgectl(
            "bundle",
            "verify",
            "--bundle",
            bundle,
            "--ca",
            site["ca"] / "ca.pem",
            "--site",
            "hq",
            "--json",
        )
    ).json()
    assert verified["sequence"] == 1

    target = tmp_path / "installed"
    ok(
        edgectl(
            "bundle",
            "install",
            "--bundle",
            bundle,
            "--ca",
            site["ca"] / "ca.pem",
            "--to",
            target,
            "--bundle-passphrase-env",
            "EDGE_BUNDLE_PASS",
        )
    )
    for name in files:
        assert (target / name).read_bytes() == (site["gw"] / name).read_bytes(), name
    assert stat.S_IMODE((target / "tls.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((target / "tls.crt").stat().st_mode) == 0o644
    state = json.loads((target / ".bundle-state.json").read_text())
    assert state["sequence"] == 1 and state["gateway"] == "gw1"
    assert not [p for p in tmp_path.iterdir() if ".stage-" in p.name]
    by = rows(edgectl("check", "--config", target / "gateway.toml", "--json", "--timeout", "1"))
    assert by["key pair signing"]["status"] == "pass" and by["chain tls"]["status"] == "pass"


def test_sequence_counter_and_rollback(site: dict[str, Path], tmp_path: Path) -> None:
    first = tmp_path / "1.bundle"
    second = tmp_path / "2.bundle"
    assert _create(site, first)["sequence"] == 1
    assert _create(site, second)["sequence"] == 2
    assert (site["ca"] / "bundle-sequence").read_text().strip() == "2"
    explicit = _create(site, tmp_path / "10.bundle", "--sequence", "10")
    assert explicit["sequence"] == 10
    assert _create(site, tmp_path / "11.bundle")["sequence"] == 11

    target = tmp_path / "gw"
    ca_pem = site["ca"] / "ca.pem"
    ok(edgectl("bundle", "install", "--bundle", second, "--ca", ca_pem, "--to", target))
    (target / "data").mkdir()
    (target / "data" / "store.db").write_bytes(b"queued batches")
    (target / "local.key").write_bytes(b"made on the box")
    again = edgectl("bundle", "install", "--bundle", second, "--ca", ca_pem, "--to", target)
    assert again.code == 1 and "rollback refused" in again.err
    older = edgectl(
        "bundle", "install", "--bundle", first, "--ca", ca_pem, "--to", target, "--json"
    )
    assert older.code == 1 and "not newer than the installed 2" in older.json()["error"]
    ok(
        edgectl(
            "bundle", "install", "--bundle", tmp_path / "10.bundle", "--ca", ca_pem, "--to", target
        )
    )
    assert json.loads((target / ".bundle-state.json").read_text())["sequence"] == 10
    # what was in the directory and not in the bundle is still there
    assert (target / "data" / "store.db").read_bytes() == b"queued batches"
    assert (target / "local.key").read_bytes() == b"made on the box"


def _tampered(bundle: Path, out: Path, change: str) -> Path:
    outer = cbor2.loads(bundle.read_bytes())
    if change == "file":
        outer[3]["gateway.toml"] = outer[3]["gateway.toml"].replace(b"gw1", b"gw2")
    elif change == "signature":
        signed = bytearray(outer[2])
        signed[-1] ^= 0x01
        outer[2] = bytes(signed)
    elif change == "extra":
        outer[3]["../evil"] = b"x"
    out.write_bytes(cbor2.dumps(outer))
    return out


@pytest.fixture(scope="module")
def signed(site_template: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One good bundle (made from a copy of the site), for the tampering tests."""
    site = copy_site(site_template, tmp_path_factory.mktemp("tamper"))
    bundle = site["gw"].parent / "good.bundle"
    _create(site, bundle)
    good = edgectl("bundle", "verify", "--bundle", bundle, "--ca", site_template["ca"] / "ca.pem")
    assert good.code == 0, good.text
    return bundle


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("file", "changed after signing"),
        ("signature", "signature is not valid"),
        ("extra", "do not match the manifest"),
    ],
)
def test_tampered_bundles_are_refused(
    signed: Path, site_template: dict[str, Path], tmp_path: Path, change: str, message: str
) -> None:
    ca_pem = site_template["ca"] / "ca.pem"
    bad = _tampered(signed, tmp_path / "bad", change)
    verify = edgectl("bundle", "verify", "--bundle", bad, "--ca", ca_pem)
    assert verify.code == 1 and message in verify.err
    install = edgectl("bundle", "install", "--bundle", bad, "--ca", ca_pem, "--to", tmp_path / "gw")
    assert install.code == 1 and message in install.err
    assert not (tmp_path / "gw").exists()


def test_not_a_bundle(site_template: dict[str, Path], tmp_path: Path) -> None:
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\x00not a bundle")
    result = edgectl("bundle", "verify", "--bundle", garbage, "--ca", site_template["ca"])
    assert result.code == 1 and "not a bundle file" in result.err


def test_wrong_site_wrong_ca_and_wrong_passphrase(
    site: dict[str, Path], west_template: dict[str, Path], tmp_path: Path
) -> None:
    bundle = tmp_path / "b"
    _create(site, bundle, *KEYS)
    ca_pem = site["ca"] / "ca.pem"
    wrong_site = edgectl("bundle", "verify", "--bundle", bundle, "--ca", ca_pem, "--site", "west")
    assert wrong_site.code == 1 and "bundle is for site 'hq', not 'west'" in wrong_site.err
    other = copy_site(west_template, tmp_path / "west")
    wrong_ca = edgectl(
        "bundle",
        "install",
        "--bundle",
        bundle,
        "--ca",
        other["ca"] / "ca.pem",
        "--to",
        tmp_path / "gw",
        "--bundle-passphrase-env",
        "EDGE_BUNDLE_PASS",
    )
    assert wrong_ca.code == 1 and "signed by another key" in wrong_ca.err
    bad_pass = edgectl(
        "bundle",
        "install",
        "--bundle",
        bundle,
        "--ca",
        ca_pem,
        "--to",
        tmp_path / "gw",
        "--bundle-passphrase-env",
        "X",
        env={"X": "not the bundle passphrase"},
    )
    assert bad_pass.code == 3 and "wrong bundle passphrase" in bad_pass.err
    assert not (tmp_path / "gw").exists()
    # a bundle of another site's gateway cannot be installed over this one
    target = tmp_path / "gw"
    ok(
        edgectl(
            "bundle",
            "install",
            "--bundle",
            bundle,
            "--ca",
            ca_pem,
            "--to",
            target,
            "--bundle-passphrase-env",
            "EDGE_BUNDLE_PASS",
        )
    )
    west = tmp_path / "west.bundle"
    ok(
        edgectl(
            "bundle", "create", "--config", other["config"], "--ca", other["ca"], "--out", west, *CA
        )
    )
    cross = edgectl(
        "bundle", "install", "--bundle", west, "--ca", other["ca"] / "ca.pem", "--to", target
    )
    assert cross.code == 1 and "directory holds site 'hq'" in cross.err
    digest = hashlib.sha256((target / "gateway.toml").read_bytes()).hexdigest()
    assert digest == hashlib.sha256(site["config"].read_bytes()).hexdigest()


def test_signed_manifest_with_a_path_out_of_the_directory(
    site_template: dict[str, Path], tmp_path: Path, ca_pass_env: None
) -> None:
    """Even a correctly signed manifest may not name a file outside the target directory."""
    from edgesdk import cose
    from edgesdk.batch import kid_for
    from provisioning.bundle import CONTENT_TYPE, EXTERNAL_AAD
    from provisioning.ca import open_ca
    from provisioning.passphrase import PassphraseSource

    ca = open_ca(site_template["ca"], PassphraseSource(env="EDGE_CA_PASS"))
    data = b"owned"
    payload = {
        "manifest-version": 1,
        "manifest-sequence-number": 99,
        "site": "hq",
        "gateway": "gw1",
        "created": 0,
        "files": [
            {
                "path": "../evil",
                "size": len(data),
                "mode": 0o644,
                "digest": [-16, hashlib.sha256(data).digest()],
            }
        ],
    }
    signed = cose.sign1(
        cbor2.dumps(payload),
        ca.key,
        kid=kid_for(ca.key.public_key()),
        protected={cose.HDR_CONTENT_TYPE: CONTENT_TYPE},
        external_aad=EXTERNAL_AAD,
    )
    bundle = tmp_path / "evil.bundle"
    bundle.write_bytes(cbor2.dumps(["edgesdk-bundle", 1, signed, {"../evil": data}]))
    target = tmp_path / "gw"
    result = edgectl(
        "bundle", "install", "--bundle", bundle, "--ca", site_template["ca"], "--to", target
    )
    assert result.code == 1 and "unsafe file path '../evil'" in result.err
    assert not (tmp_path / "evil").exists() and not target.exists()
