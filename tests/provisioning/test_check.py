"""``provision check`` end to end: a real mosquitto with TLS and required client certs."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomlkit

from provisioning.certs import Kind
from tests.provisioning.certutil import reissue
from tests.provisioning.cli import edgectl, edgectl_with_test_driver, emulator, ok, rows
from tests.provisioning.conftest import copy_site
from tests.support import Mosquitto, free_port


def _set_uplink(config: Path, url: str) -> None:
    doc = tomlkit.parse(config.read_text())
    doc["uplink"]["url"] = url
    config.write_text(tomlkit.dumps(doc))


@pytest.fixture
def tls_broker(site: dict[str, Path], tmp_path: Path) -> Iterator[Mosquitto]:
    """mosquitto with a broker certificate from the site CA; client certificates required."""
    out = tmp_path / "broker"
    ok(
        edgectl(
            "broker-cert",
            "--ca",
            site["ca"],
            "--host",
            "localhost",
            "--ip",
            "127.0.0.1",
            "--out",
            out,
            "--passphrase-env",
            "EDGE_CA_PASS",
        )
    )
    tls = {
        k: str(out / f)
        for k, f in (("cafile", "ca.pem"), ("certfile", "broker.crt"), ("keyfile", "broker.key"))
    }
    with Mosquitto(tls=tls) as broker:
        yield broker


def test_full_site_passes_check_with_tls_broker(
    site: dict[str, Path], tls_broker: Mosquitto
) -> None:
    _set_uplink(site["config"], f"mqtts://localhost:{tls_broker.port}")
    result = edgectl("check", "--config", site["config"], "--json", "--timeout", "5")
    assert result.code == 0, result.text
    data = result.json()
    assert data["ok"] is True and data["summary"]["fail"] == 0
    by = rows(result)
    assert by["broker"]["status"] == "pass"
    assert "TLS with client certificate" in by["broker"]["detail"]
    for name in (
        "config",
        "key pair signing",
        "key pair tls",
        "chain signing",
        "chain tls",
        "identity signing",
        "identity tls",
        "expiry ca",
        "mode gateway.signing_key",
    ):
        assert by[name]["status"] == "pass", by[name]


def test_broker_rejects_a_client_cert_from_another_ca(
    tls_broker: Mosquitto, rival_template: dict[str, Path], tmp_path: Path
) -> None:
    other = copy_site(rival_template, tmp_path / "rival")  # same names, another CA
    _set_uplink(other["config"], f"mqtts://localhost:{tls_broker.port}")
    result = edgectl("check", "--config", other["config"], "--json", "--timeout", "5")
    assert result.code == 1
    broker = rows(result)["broker"]
    assert broker["status"] == "fail"
    assert "certificate verify failed" in broker["detail"]  # the broker's cert is not ours
    assert broker["fix"]


def test_unreachable_broker_fails_with_a_fix(site: dict[str, Path]) -> None:
    _set_uplink(site["config"], f"mqtts://127.0.0.1:{free_port()}")
    result = edgectl("check", "--config", site["config"], "--json", "--timeout", "2")
    assert result.code == 1 and result.json()["ok"] is False
    broker = rows(result)["broker"]
    assert broker["status"] == "fail" and "refused" in broker["detail"].lower()
    assert "start the broker" in broker["fix"]
    human = edgectl("check", "--config", site["config"], "--timeout", "2")
    assert human.code == 1 and "NOT READY" in human.out


def test_expired_and_not_yet_valid_and_expiring_certs(
    site: dict[str, Path], ca_pass_env: None
) -> None:
    now = dt.datetime.now(dt.UTC)
    gw = site["gw"]
    reissue(
        site["ca"],
        gw / "tls.crt",
        Kind.TLS,
        not_before=now - dt.timedelta(days=400),
        not_after=now - dt.timedelta(days=1),
    )
    reissue(
        site["ca"],
        gw / "signing.crt",
        Kind.SIGNING,
        not_before=now + dt.timedelta(days=2),
        not_after=now + dt.timedelta(days=300),
    )
    result = edgectl("check", "--config", site["config"], "--json", "--timeout", "1")
    assert result.code == 1
    by = rows(result)
    assert by["expiry tls"]["status"] == "fail" and "expired on" in by["expiry tls"]["detail"]
    assert by["expiry signing"]["status"] == "fail"
    assert "not valid before" in by["expiry signing"]["detail"]
    assert by["key pair tls"]["status"] == "pass"  # same key, only the dates changed

    reissue(
        site["ca"],
        gw / "tls.crt",
        Kind.TLS,
        not_before=now - dt.timedelta(days=1),
        not_after=now + dt.timedelta(days=10),
    )
    by = rows(edgectl("check", "--config", site["config"], "--json", "--timeout", "1"))
    assert by["expiry tls"]["status"] == "warn" and "expires in" in by["expiry tls"]["detail"]


def test_wrong_ca_mismatched_key_and_loose_modes(
    site: dict[str, Path], rival_template: dict[str, Path]
) -> None:
    other = rival_template
    gw = site["gw"]
    (gw / "ca.pem").write_bytes((other["ca"] / "ca.pem").read_bytes())  # a wrong CA
    (gw / "tls.key").write_bytes((other["gw"] / "tls.key").read_bytes())  # another key
    (gw / "signing.key").chmod(0o644)
    result = edgectl("check", "--config", site["config"], "--json", "--timeout", "1")
    assert result.code == 1
    by = rows(result)
    assert by["chain signing"]["status"] == "fail"
    assert "not issued by this CA" in by["chain signing"]["detail"]
    assert (
        by["key pair tls"]["status"] == "fail" and "does not match" in by["key pair tls"]["detail"]
    )
    assert by["mode gateway.signing_key"]["status"] == "fail"
    assert "chmod 600" in by["mode gateway.signing_key"]["fix"]


def test_invalid_config_and_missing_files(site: dict[str, Path]) -> None:
    (site["gw"] / "tls.crt").unlink()
    by = rows(edgectl("check", "--config", site["config"], "--json", "--timeout", "1"))
    assert by["file uplink.cert"]["status"] == "fail"
    text = site["config"].read_text().replace('id = "gw1"', 'id = "gw1"\nbogus = 1')
    site["config"].write_text(text)
    result = edgectl("check", "--config", site["config"], "--json")
    assert result.code == 1
    assert rows(result)["config"]["status"] == "fail"
    assert "bogus" in rows(result)["config"]["detail"] + rows(result)["config"]["fix"]


def test_devices_reachable_unreachable_and_disabled(site: dict[str, Path]) -> None:
    """With a driver that loads (tcp-probe): one device answers, one does not."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        up_port = listener.getsockname()[1]
        cfg = site["config"]
        ok(
            edgectl_with_test_driver(
                "device",
                "add",
                "--config",
                cfg,
                "--name",
                "up",
                "--driver",
                "tcp-probe",
                "--option",
                f"port={up_port}",
            )
        )
        ok(
            edgectl_with_test_driver(
                "device",
                "add",
                "--config",
                cfg,
                "--name",
                "down",
                "--driver",
                "tcp-probe",
                "--option",
                f"port={free_port()}",
            )
        )
        ok(
            edgectl_with_test_driver(
                "device",
                "add",
                "--config",
                cfg,
                "--name",
                "off",
                "--driver",
                "tcp-probe",
                "--option",
                "port=1",
                "--disabled",
            )
        )
        result = edgectl_with_test_driver("check", "--config", cfg, "--json", "--timeout", "1")
    assert result.code == 1
    by = rows(result)
    assert by["device up"]["status"] == "pass"
    assert by["device down"]["status"] == "fail"
    assert "no data within 1s" in by["device down"]["detail"]
    assert "ConnectionRefusedError" in by["device down"]["detail"]
    assert by["device off"]["status"] == "skip"
    # without the driver (plain edgectl) the device row says the driver is unavailable
    plain = rows(edgectl("check", "--config", cfg, "--json", "--timeout", "1"))
    assert plain["device up"]["status"] == "fail"
    assert "no driver named 'tcp-probe'" in plain["device up"]["detail"]


def test_real_beacon_receiver_answers_and_a_missing_one_fails(site: dict[str, Path]) -> None:
    """The bundled beacon-serial driver against the beacon emulator's pty."""
    cfg = site["config"]
    with emulator("beacons") as info:
        ok(
            edgectl(
                "device",
                "add",
                "--config",
                cfg,
                "--name",
                "beacons",
                "--driver",
                "beacon-serial",
                "--option",
                f"port={info['path']}",
            )
        )
        ok(
            edgectl(
                "device",
                "add",
                "--config",
                cfg,
                "--name",
                "gone",
                "--driver",
                "beacon-serial",
                "--option",
                "port=/dev/edgesdk-no-such-tty",
            )
        )
        bad = edgectl(
            "device",
            "add",
            "--config",
            cfg,
            "--name",
            "x",
            "--driver",
            "beacon-serial",
            "--option",
            "port=/dev/x",
            "--option",
            "baudrate=-5",
        )
        result = edgectl("check", "--config", cfg, "--json", "--timeout", "2")
    assert bad.code == 2 and "devices.x.options.baudrate" in bad.err and "gateway.toml:" in bad.err
    by = rows(result)
    assert by["device beacons"]["status"] == "pass", by["device beacons"]
    assert by["device gone"]["status"] == "fail"
    assert "edgesdk-no-such-tty" in by["device gone"]["detail"]
