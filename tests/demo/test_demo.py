"""``edgectl demo`` as a new user runs it: to completion, exit 0, every expected alarm
verified (fire, man-down prealarm and alarm, camera smoke)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_to_completion_and_every_alarm_is_verified(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgesdk",
            "demo",
            "--json",
            "--duration",
            "75",
            "--stop-when-done",
            "--workdir",
            str(tmp_path / "demo"),
        ],
        cwd=ROOT,
        capture_output=True,
        timeout=150,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-3000:] + proc.stdout.decode()[-2000:]
    summary = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    assert summary["ok"] is True
    assert summary["missing"] == []
    for key in ("fire/fire", "man-down/prealarm", "man-down/alarm", "camera-smoke/prealarm"):
        assert key in summary["first_seen_s"]
    # PASS timings: pre-alert 20 s and alarm 30 s after the firefighter stops (at ~6 s)
    pre, alarm = (
        summary["first_seen_s"]["man-down/prealarm"],
        summary["first_seen_s"]["man-down/alarm"],
    )
    assert 9.0 < alarm - pre < 11.0
    assert summary["rejected"] == {}
    assert summary["batches_verified"] > 10 and summary["keys_learned"] >= 1
    # the gateway's key never left the work dir, and is private
    key = tmp_path / "demo" / "gateway" / "signing.key"
    assert key.stat().st_mode & 0o077 == 0
