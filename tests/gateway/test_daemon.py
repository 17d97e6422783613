"""``edgectl gateway run`` becomes the lean resident process ``python -m gateway`` (exec, same
PID), which carries none of the command line's libraries and reports config errors itself."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from gateway.cli import _interpreter_options
from tests.gateway.gwkit import write_config
from tests.pki import TestPKI
from tests.support import Mosquitto

ROOT = Path(__file__).resolve().parents[2]


def _cmdline(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    return [a.decode() for a in raw.split(b"\0") if a]


def _healthz(url: str, deadline: float) -> dict[str, object]:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1.0) as resp:  # loopback only
                return dict(json.loads(resp.read()))
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_run_execs_the_daemon_in_the_same_process_with_the_same_interpreter_options(
    tmp_path: Path, pki: TestPKI, tls_broker: Mosquitto
) -> None:
    cfg = write_config(tmp_path, pki, tls_broker.port)
    listen = cfg.read_text().split('listen = "')[1].split('"')[0]
    log = (tmp_path / "gw.log").open("wb")
    proc = subprocess.Popen(
        [
            *(sys.executable, "-X", "utf8", "-m", "edgesdk", "gateway", "run"),
            *("--config", str(cfg), "--log-level", "WARNING", "--log-format", "json"),
        ],
        stdout=log,
        stderr=log,
        cwd=ROOT,
    )
    log.close()
    try:
        status = _healthz(f"http://{listen}/healthz", time.monotonic() + 30)
        assert status["gateway"]["id"] == "gw1"  # type: ignore[index]
        # the process the CLI started is now the daemon: same PID, new command line
        assert _cmdline(proc.pid) == [
            sys.executable,
            *("-X", "utf8", "-m", "gateway", "--config", str(cfg)),
            *("--log-level", "warning", "--log-format", "json"),
        ]
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=15)
    assert code == 0, (tmp_path / "gw.log").read_text()


def test_the_resident_process_imports_no_command_line_library() -> None:
    # what `python -m gateway` imports to run a site with every bundled driver: no CLI
    # library, no X.509 layer (OpenSSL checks the certificates), no prometheus-client
    # until /metrics is scraped (docs/performance.md has what each costs)
    code = (
        "import sys, gateway.daemon, gateway.app, gateway.config, drivers.modbus_panel, "
        "drivers.beacon_serial, drivers.camera_mqtt; "
        "print(sorted(({m.split('.')[0] for m in sys.modules} | set(sys.modules)) & {'typer', "
        "'click', 'rich', 'provisioning', 'emulators', 'shellingham', 'cryptography.x509', "
        "'prometheus_client'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_broken_config_is_reported_by_the_daemon_naming_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "gateway.toml"
    cfg.write_text('[gateway]\nsite = "s1"\nid = "gw1"\nbogus = 1\n')
    out = subprocess.run(
        [sys.executable, "-m", "edgesdk", "gateway", "run", "--config", str(cfg)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stderr.startswith("error: ")
    assert str(cfg) in out.stderr and "bogus" in out.stderr


@pytest.mark.parametrize(("option", "value"), [("--log-level", "verbose"), ("--log-format", "xml")])
def test_a_bad_option_is_refused_before_the_exec(option: str, value: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "edgesdk", "gateway", "run", "--config", "x.toml", option, value],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert f"{option} {value!r}" in out.stderr


@pytest.mark.parametrize(
    ("orig_argv", "expected"),
    [
        (["python", "-m", "edgesdk", "gateway", "run"], []),
        (["/venv/bin/python", "/venv/bin/edgectl", "gateway", "run"], []),
        (["python", "-X", "dev", "-Wd", "-u", "-m", "edgesdk"], ["-X", "dev", "-Wd", "-u"]),
        (["python", "-W", "error", "-Xutf8", "script.py"], ["-W", "error", "-Xutf8"]),
        (["python", "-c", "code", "-X", "dev"], []),
    ],
)
def test_interpreter_options_are_those_before_the_program(
    orig_argv: list[str], expected: list[str]
) -> None:
    assert _interpreter_options(orig_argv) == expected
