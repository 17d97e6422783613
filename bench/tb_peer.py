"""Their side of ``vs-thingsboard``: the peer harness in ``../shared/peers/thingsboard/``.

ThingsBoard IoT Gateway 3.8.5 runs in its own virtualenv, created once by the harness's
``setup.sh`` under ``$PEER_TB_ROOT`` (default ``.cache/peer-tb`` in this checkout, which git
ignores); its ``bench.py steady`` / ``bench.py outage`` run one configuration each (its own
mosquitto, the same emulator as our side, its counter) and print one JSON line, which is
returned as is. Nothing of the peer is copied here: it is run where it lies.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT
from bench.tb_ours import PEER_DIR, log

__all__ = ["PEER_ROOT", "ensure_setup", "peer_ready", "run_peer", "setup_command"]

PEER_ROOT = Path(os.environ.get("PEER_TB_ROOT", ROOT / ".cache" / "peer-tb"))


def _env() -> dict[str, str]:
    return dict(os.environ, PEER_TB_ROOT=str(PEER_ROOT), PEER_TB_RUN=str(PEER_ROOT / "run"))


def setup_command() -> str:
    return f"PEER_TB_ROOT={PEER_ROOT} bash {PEER_DIR / 'setup.sh'}"


def peer_ready() -> bool:
    """Both of the harness's virtualenvs exist (what ``setup.sh`` checks, without pip)."""
    return (PEER_ROOT / "venv" / "bin" / "thingsboard-gateway").exists() and (
        PEER_ROOT / "emu-venv" / "bin" / "python"
    ).exists()


def ensure_setup(limit: float = 240.0) -> dict[str, Any]:
    """Run the harness's idempotent ``setup.sh`` if a virtualenv is missing."""
    if not PEER_DIR.exists():
        return {"ok": False, "error": f"peer harness not found at {PEER_DIR}"}
    if peer_ready():
        return {"ok": True, "setup_s": 0.0}
    log(f"peer setup: {setup_command()}")
    t0 = time.time()
    try:
        proc = subprocess.run(
            ["bash", str(PEER_DIR / "setup.sh")],
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=limit,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"setup.sh ran over {limit:.0f} s", "setup_s": limit}
    took = round(time.time() - t0, 1)
    if proc.returncode != 0 or not peer_ready():
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
        return {"ok": False, "error": f"setup.sh exit {proc.returncode}: {tail}", "setup_s": took}
    return {"ok": True, "setup_s": took}


def run_peer(cmd: str, *args: str, limit: float) -> dict[str, Any]:
    """``bench.py <cmd> <args>`` of the harness; its JSON result (or ``{"error": ...}``)."""
    py = PEER_ROOT / "emu-venv" / "bin" / "python"
    proc = subprocess.Popen(
        [str(py), str(PEER_DIR / "bench.py"), cmd, *args],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=None,  # its progress lines go to our stderr
    )
    try:
        stdout = proc.communicate(timeout=limit)[0]
    except subprocess.TimeoutExpired:
        proc.terminate()  # SIGTERM: its handler stops every process it started, by PID
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        return {"error": f"peer bench.py {cmd} ran over {limit:.0f} s"}
    lines = stdout.decode(errors="replace").strip().splitlines()
    try:
        out: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, ValueError):
        return {"error": f"peer bench.py {cmd} exit {proc.returncode}, no JSON result"}
    return out
