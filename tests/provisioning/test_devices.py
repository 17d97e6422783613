"""``provision device add|remove|list``: validated, atomic edits that keep the file's layout."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

from tests.provisioning.cli import edgectl, edgectl_with_test_driver, ok

HEADER = """\
# Site hq, gateway gw1: edited by hand after 'gateway create'.
[gateway]
site = "hq"  # the site
id = "gw1"
signing_key = "signing.key"
signing_cert = "signing.crt"

[uplink]
url = "mqtts://broker.example:8883"  # the site broker

# Devices below; keep panels first.
[devices]
"""
TRAILER = """
# Rules tuned for this building (do not lose this comment)
[rules]
lost_contact = 20.0  # longer: thick walls
"""


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(HEADER + TRAILER)
    path.chmod(0o640)
    return path


def test_add_list_remove_keeps_comments_layout_and_mode(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    ok(
        edgectl(
            "device",
            "add",
            "--config",
            cfg,
            "--name",
            "panel1",
            "--driver",
            "modbus-panel",
            "--option",
            "url=tcp://127.0.0.1:5020",
            "--option",
            "profile=notifier-gw",
            "--option",
            "unit=3",
            "--option",
            'label="1.0"',
            "--option",
            "serial.parity=E",
            "--no-validate",
        )
    )
    ok(
        edgectl(
            "device",
            "add",
            "--config",
            cfg,
            "--name",
            "cam1",
            "--driver",
            "camera-mqtt",
            "--option",
            "prefix=frigate",
            "--expected-interval",
            "30",
            "--no-validate",
        )
    )
    text = cfg.read_text()
    assert text.startswith(HEADER), text
    assert text.rstrip().endswith(TRAILER.rstrip()), text
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o640
    data = tomllib.loads(text)
    panel = data["devices"]["panel1"]
    assert panel["driver"] == "modbus-panel"
    assert panel["options"] == {
        "url": "tcp://127.0.0.1:5020",
        "profile": "notifier-gw",
        "unit": 3,
        "label": "1.0",
        "serial": {"parity": "E"},
    }
    assert data["devices"]["cam1"]["expected_interval"] == 30.0
    assert data["rules"]["lost_contact"] == 20.0

    listed = ok(edgectl("device", "list", "--config", cfg, "--json")).json()
    assert sorted(listed["devices"]) == ["cam1", "panel1"]
    human = ok(edgectl("device", "list", "--config", cfg))
    assert "panel1" in human.out and "modbus-panel" in human.out

    removed = ok(edgectl("device", "remove", "--config", cfg, "--name", "panel1", "--json"))
    assert removed.json()["removed"]["driver"] == "modbus-panel"
    ok(edgectl("device", "remove", "--config", cfg, "--name", "cam1"))
    assert cfg.read_text() == HEADER + TRAILER  # back to the very same bytes
    assert not list(tmp_path.glob(".gateway.toml.*"))  # no temp files left behind


def test_duplicates_unknown_and_bad_input_are_refused(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    args = ("device", "add", "--config", cfg, "--name", "p", "--driver", "x", "--no-validate")
    ok(edgectl(*args))
    before = cfg.read_bytes()
    dup = edgectl(*args)
    assert dup.code == 2 and "already exists" in dup.err and "device remove" in dup.err
    missing = edgectl("device", "remove", "--config", cfg, "--name", "nope")
    assert missing.code == 2 and "no device named 'nope'" in missing.err
    bad_name = edgectl(
        "device", "add", "--config", cfg, "--name", "a b", "--driver", "x", "--no-validate"
    )
    assert bad_name.code == 2
    bad_opt = edgectl(
        "device",
        "add",
        "--config",
        cfg,
        "--name",
        "q",
        "--driver",
        "x",
        "--option",
        "novalue",
        "--no-validate",
    )
    assert bad_opt.code == 2 and "KEY=VALUE" in bad_opt.err
    assert cfg.read_bytes() == before


def test_driver_unavailable_is_refused_unless_no_validate(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    result = edgectl(
        "device", "add", "--config", cfg, "--name", "p", "--driver", "no-such", "--option", "a=1"
    )
    assert result.code == 5
    assert "no driver named 'no-such'" in result.err and "--no-validate" in result.err
    assert "[devices.p]" not in cfg.read_text()
    as_json = edgectl(
        "device", "add", "--config", cfg, "--name", "p", "--driver", "no-such", "--json"
    )
    assert as_json.code == 5 and as_json.json()["kind"] == "DriverUnavailableError"


def test_driver_options_are_validated_by_the_driver(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    bad = edgectl_with_test_driver(
        "device",
        "add",
        "--config",
        cfg,
        "--name",
        "t",
        "--driver",
        "tcp-probe",
        "--option",
        "port=70000",
    )
    assert bad.code == 2
    assert "devices.t.options.port" in bad.err and "1-65535" in bad.err
    unknown = edgectl_with_test_driver(
        "device",
        "add",
        "--config",
        cfg,
        "--name",
        "t",
        "--driver",
        "tcp-probe",
        "--option",
        "port=1",
        "--option",
        "colour=red",
    )
    assert unknown.code == 2 and "colour" in unknown.err and "known keys" in unknown.err
    ok(
        edgectl_with_test_driver(
            "device",
            "add",
            "--config",
            cfg,
            "--name",
            "t",
            "--driver",
            "tcp-probe",
            "--option",
            "port=1502",
        )
    )
    assert tomllib.loads(cfg.read_text())["devices"]["t"]["options"] == {"port": 1502}
