"""``edgectl emulate beacons`` as a real process: one JSON line, frames on the pty, exit 0."""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import serial

from drivers.beacon_serial.codec import Frame, FrameDecoder, ReceiverStatus

EDGECTL = [sys.executable, "-c", "from edgesdk.cli import main; main()"]


def read_line(stream: IO[bytes], within: float = 20.0) -> bytes:
    """One line from a child's stdout, or fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        assert left > 0, f"no complete line within {within}s (got {line!r})"
        ready, _, _ = select.select([stream], [], [], left)
        if ready:
            chunk = stream.read1(4096)  # type: ignore[attr-defined]
            assert chunk, f"stdout closed before a line (got {line!r})"
            line += chunk
    return line


def test_cli_prints_one_json_line_serves_frames_and_exits_0_on_sigterm(tmp_path: Path) -> None:
    link = tmp_path / "rx"
    args = ["emulate", "beacons", "--seed", "9", "--time-scale", "20", "--crew", "3"]
    with subprocess.Popen(
        [*EDGECTL, *args, "--link", str(link), "--scenario", "distress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        try:
            assert proc.stdout is not None
            info: dict[str, Any] = json.loads(read_line(proc.stdout))
            assert info["path"] == info["link"] == str(link)
            assert info["device"].startswith("/dev/pts/")
            assert info["scenario"] == "distress"
            assert info["seed"] == 9
            assert info["baudrate"] == 115200
            assert len(info["beacons"]) == 3
            assert info["victim"] == info["beacons"][0]
            decoder = FrameDecoder()
            frames: list[Frame] = []
            with serial.Serial(info["path"], 115200, timeout=0.2) as port:
                deadline = time.monotonic() + 10.0
                # status every 10 simulated seconds: 0.5 s at this time scale
                while time.monotonic() < deadline and not any(
                    isinstance(f.message, ReceiverStatus) for f in frames
                ):
                    frames += decoder.feed(port.read(256))
            assert any(isinstance(f.message, ReceiverStatus) for f in frames)
            assert {f.beacon for f in frames} <= {0, *info["beacons"]}
            assert len(frames) >= 10
            assert decoder.bad_crc == decoder.truncated == 0
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    assert not link.is_symlink()  # removed on the way out


def test_cli_duration_ends_the_run() -> None:
    done = subprocess.run(
        [*EDGECTL, "emulate", "beacons", "--duration", "0.3", "--seed", "1"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode().splitlines()
    assert len(lines) == 1
    info = json.loads(lines[0])
    assert info["link"] is None
    assert info["path"] == info["device"]
    assert info["scenario"] == "patrol"
    assert info["victim"] is None


def test_cli_rejects_bad_options_clearly() -> None:
    for extra, needle in [
        (["--scenario", "picnic"], "unknown scenario 'picnic'"),
        (["--fault", "smoke=0.1"], "unknown fault 'smoke'"),
        (["--fault", "noise=2"], "must be in 0..1"),
        (["--time-scale", "0"], "time_scale"),
    ]:
        done = subprocess.run(
            [*EDGECTL, "emulate", "beacons", "--duration", "0.1", *extra],
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 2, (extra, done.stderr)
        assert needle in done.stderr.decode(), (extra, done.stderr)
        assert done.stdout == b""
