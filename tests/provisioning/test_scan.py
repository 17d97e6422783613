"""``provision scan``: panels on Modbus TCP and RTU (pty), beacon receivers on serial ptys.

The devices are the project's emulators, started as an installer would start them
(``edgectl emulate ...``) in a subprocess that prints where to connect.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.provisioning.cli import edgectl, emulator, ok, rows
from tests.support import free_port


@pytest.mark.parametrize("profile", ["notifier-gw", "gst-compact"])
def test_scan_modbus_tcp_identifies_profile_adds_and_checks(
    profile: str, site: dict[str, Path]
) -> None:
    """Scan, add what was found (validated by the real modbus-panel driver), then probe it."""
    cfg = site["config"]
    with emulator("panel", "--units", "2", "--profile", profile, "--no-rtu") as info:
        url = f"tcp://127.0.0.1:{info['tcp']['port']}"
        result = ok(
            edgectl(
                "scan", "modbus", "--url", url, "--units", "1-6", "--json", "--add", "--config", cfg
            )
        )
        # a quiet gst-compact panel yields no item for over 10 s: probe() cannot show it
        checked = (
            edgectl("check", "--config", cfg, "--json", "--timeout", "3")
            if profile == "notifier-gw"
            else None
        )
    data = result.json()
    assert [(f["unit"], f["profile"]) for f in data["found"]] == [(1, profile), (2, profile)]
    assert all(f["method"] == "signature" for f in data["found"])
    assert data["added"] == [
        {
            "device": "panel1",
            "units": [1, 2],
            "added": True,
            "options": {"url": url, "profile": profile, "units": [1, 2]},
        }
    ]
    panel = tomllib.loads(cfg.read_text())["devices"]["panel1"]
    assert panel["driver"] == "modbus-panel"
    assert panel["options"] == {"url": url, "profile": profile, "units": [1, 2]}
    if checked is not None:
        device = rows(checked)["device panel1"]
        assert device["status"] == "pass", device
        # the emulator is gone now: the same device no longer answers
        gone = rows(edgectl("check", "--config", cfg, "--json", "--timeout", "1"))
        assert gone["device panel1"]["status"] == "fail" and gone["device panel1"]["fix"]


def test_scan_modbus_rtu_on_a_pty() -> None:
    with emulator("panel", "--units", "1", "--profile", "notifier-gw", "--no-tcp") as info:
        url = f"rtu://{info['rtu']}?baudrate=19200&parity=N"  # a pty takes no parity
        result = ok(edgectl("scan", "modbus", "--url", url, "--units", "1-2", "--timeout", "0.3"))
        even = edgectl(
            "scan", "modbus", "--url", url.replace("parity=N", "parity=E"), "--units", "1"
        )
    assert "notifier-gw" in result.out
    assert "1 of 2 unit ids answered" in result.out
    # the driver's default 8E1 cannot be set on a pty: a clear error, not a traceback
    assert even.code == 1 and "cannot open" in even.err and "Traceback" not in even.err


def test_scan_modbus_failures() -> None:
    dead = edgectl("scan", "modbus", "--url", f"tcp://127.0.0.1:{free_port()}", "--units", "1")
    assert dead.code == 1 and "cannot connect" in dead.err
    bad_url = edgectl("scan", "modbus", "--url", "udp://x", "--units", "1")
    assert bad_url.code == 2 and "tcp://HOST:PORT" in bad_url.err
    bad_units = edgectl("scan", "modbus", "--url", "tcp://127.0.0.1:1", "--units", "0-300")
    assert bad_units.code == 2 and "outside 1-247" in bad_units.err
    no_config = edgectl("scan", "modbus", "--url", "tcp://127.0.0.1:1", "--add")
    assert no_config.code == 2 and "--config" in no_config.err


def test_scan_serial_finds_the_beacon_receiver(tmp_path: Path) -> None:
    silent = tmp_path / "silent"  # a regular file: opens, but no receiver speaks there
    silent.write_bytes(b"")
    with emulator("beacons") as info:
        result = ok(
            edgectl(
                "scan",
                "serial",
                "--port",
                info["path"],
                "--port",
                silent,
                "--seconds",
                "1.5",
                "--json",
            )
        )
    ports = {p["port"]: p for p in result.json()["ports"]}
    found = ports[info["path"]]
    assert found["beacon_receiver"] is True
    assert sum(found["frames"].values()) > 0 and found["beacons"]
    assert ports[str(silent)]["beacon_receiver"] is False
    missing = edgectl(
        "scan", "serial", "--port", str(tmp_path / "nope"), "--seconds", "0.2", "--json"
    )
    by_port = {p["port"]: p for p in missing.json()["ports"]}
    assert by_port[str(tmp_path / "nope")]["opened"] is False
