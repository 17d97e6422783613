"""Run ``edgectl provision ...`` the way an installer does: a subprocess, with a timeout.

Every run is checked for private key material in its output (``PRIVATE KEY`` never
appears in stdout or stderr, whatever the command or its failure).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EDGECTL = Path(sys.executable).parent / "edgectl"
CA_PASS = "correct horse battery staple"
BUNDLE_PASS = "bundle passphrase for tests"
ENV = {"EDGE_CA_PASS": CA_PASS, "EDGE_BUNDLE_PASS": BUNDLE_PASS}


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err

    def json(self) -> Any:
        return json.loads(self.out)


def run(
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60,
) -> Result:
    full_env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **ENV, **(env or {})}
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=cwd or ROOT,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    result = Result(proc.returncode, proc.stdout, proc.stderr)
    assert "PRIVATE KEY" not in result.text, f"key material in output of {argv}"
    return result


def edgectl(*args: object, **kw: Any) -> Result:
    """``.venv/bin/edgectl provision <args>``."""
    return run([str(EDGECTL), "provision", *map(str, args)], **kw)


def edgectl_with_test_driver(*args: object, **kw: Any) -> Result:
    """The same CLI with the ``tcp-probe`` test driver registered in-process."""
    return run(
        [sys.executable, "-m", "tests.provisioning.launcher", "provision", *map(str, args)], **kw
    )


def ok(result: Result) -> Result:
    assert result.code == 0, f"exit {result.code}\nstdout:\n{result.out}\nstderr:\n{result.err}"
    return result


def make_site(base: Path, site: str = "hq", gw: str = "gw1", broker: str = "") -> dict[str, Path]:
    """CA + gateway through the CLI; returns the paths tests use."""
    ca, gwdir = base / f"ca-{site}", base / f"{site}-{gw}"
    ok(edgectl("ca", "init", "--site", site, "--out", ca, "--passphrase-env", "EDGE_CA_PASS"))
    extra = ["--broker", broker] if broker else []
    ok(
        edgectl(
            "gateway",
            "create",
            "--ca",
            ca,
            "--site",
            site,
            "--id",
            gw,
            "--out",
            gwdir,
            "--passphrase-env",
            "EDGE_CA_PASS",
            *extra,
        )
    )
    return {"ca": ca, "gw": gwdir, "config": gwdir / "gateway.toml"}


def rows(result: Result) -> dict[str, dict[str, str]]:
    """``provision check --json`` rows by check name."""
    return {r["check"]: r for r in result.json()["checks"]}


@contextmanager
def emulator(*args: str) -> Iterator[dict[str, Any]]:
    """Run ``edgectl emulate <args>`` and yield its JSON line; stop it afterwards."""
    with subprocess.Popen(
        [str(EDGECTL), "emulate", *args, "--duration", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], 20)
            assert ready, "emulator printed nothing within 20 s"
            yield json.loads(proc.stdout.readline())
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
