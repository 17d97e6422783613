"""``edgectl emulate panel`` as a real process: the JSON line, Modbus over TCP and the pty,
JSON control lines, and a clean exit (code 0) on SIGTERM."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from pymodbus.client import ModbusSerialClient, ModbusTcpClient

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
            chunk = os.read(stream.fileno(), 1)  # byte by byte: never read past the line
            assert chunk, f"stdout closed before a line (got {line!r})"
            line += chunk
    return line


def stop(proc: subprocess.Popen[bytes]) -> float:
    """SIGTERM, then how long the process took to exit (it must exit 0)."""
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    return time.monotonic() - start


def test_cli_prints_where_to_connect_serves_modbus_and_exits_0_on_sigterm(
    tmp_path: Path,
) -> None:
    link = tmp_path / "panel"
    args = ["emulate", "panel", "--units", "2", "--seed", "3", "--link", str(link)]
    with subprocess.Popen(
        [*EDGECTL, *args, "--scenario", "fault-storm", "--time-scale", "50"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        try:
            assert proc.stdout is not None
            info: dict[str, Any] = json.loads(read_line(proc.stdout))
            assert info["tcp"]["host"] == "127.0.0.1"
            assert info["tcp"]["port"] > 0
            assert info["rtu"] == str(link)
            assert info["units"] == [1, 2]
            assert info["profile"] == "notifier-gw"
            assert info["scenario"] == "fault-storm"
            assert info["seed"] == 3
            tcp = ModbusTcpClient("127.0.0.1", port=info["tcp"]["port"], timeout=2, retries=0)
            try:
                assert tcp.connect()
                deadline = time.monotonic() + 10.0
                status = 0
                while not status >> 4 & 1 and time.monotonic() < deadline:  # mains fail
                    rr = tcp.read_holding_registers(49500 - 40001, count=2, device_id=2)
                    assert not rr.isError()
                    status = rr.registers[0]
                    time.sleep(0.05)
                assert status >> 4 & 1
            finally:
                tcp.close()
            rtu = ModbusSerialClient(info["rtu"], baudrate=115200, timeout=2, retries=0)
            try:
                assert rtu.connect()
                rr = rtu.read_holding_registers(0, count=20, device_id=1)
                assert not rr.isError()
                assert len(rr.registers) == 20
            finally:
                rtu.close()
            assert stop(proc) < 3.0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    assert not link.is_symlink()  # removed on the way out


def test_cli_control_lines() -> None:
    with subprocess.Popen(
        [*EDGECTL, "emulate", "panel", "--no-rtu", "--time-scale", "0", "--control"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        try:
            assert proc.stdin is not None
            assert proc.stdout is not None
            info = json.loads(read_line(proc.stdout))
            assert info["rtu"] is None

            def control(msg: dict[str, Any] | str) -> dict[str, Any]:
                assert proc.stdin is not None
                assert proc.stdout is not None
                text = msg if isinstance(msg, str) else json.dumps(msg)
                proc.stdin.write(text.encode() + b"\n")
                proc.stdin.flush()
                reply: dict[str, Any] = json.loads(read_line(proc.stdout))
                return reply

            reply = control({"cmd": "set_point", "loop": 1, "point": 3, "alarm": "fire"})
            assert reply == {"ok": True, "cmd": "set_point"}
            tcp = ModbusTcpClient("127.0.0.1", port=info["tcp"]["port"], timeout=2, retries=0)
            try:
                assert tcp.connect()
                assert tcp.read_holding_registers(2, count=1).registers[0] & 0xFF == 0x10
                assert control({"cmd": "fault", "kind": "exception", "code": 6})["ok"]
                rr = tcp.read_holding_registers(2, count=1)
                assert rr.isError()
                assert rr.exception_code == 6
            finally:
                tcp.close()
            state = control({"cmd": "state"})["state"]
            assert state["points"]["L1D003"]["alarm"] == "fire"
            assert state["panel"]["fire"] is True
            counters = control({"cmd": "counters"})["counters"]
            assert counters["units"]["1"]["injected"] == {"exception": 1}
            bad = control({"cmd": "set_point", "loop": 1, "point": 999})
            assert bad["ok"] is False
            assert "L1D999" in bad["error"]
            assert control("not json")["ok"] is False
            assert control({"cmd": "explode"})["ok"] is False
            stop(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


def test_cli_duration_and_bad_options() -> None:
    done = subprocess.run(
        [*EDGECTL, "emulate", "panel", "--no-rtu", "--duration", "0.3", "--profile", "gst-compact"],
        capture_output=True,
        timeout=30,
    )
    assert done.returncode == 0
    assert json.loads(done.stdout.splitlines()[0])["profile"] == "gst-compact"
    bad = subprocess.run(
        [*EDGECTL, "emulate", "panel", "--profile", "nope"], capture_output=True, timeout=30
    )
    assert bad.returncode == 2
    assert b"profile" in bad.stderr
    assert b"notifier-gw" in bad.stderr
    bad = subprocess.run(
        [*EDGECTL, "emulate", "panel", "--detectors", "500"], capture_output=True, timeout=30
    )
    assert bad.returncode == 2
    assert b"detectors" in bad.stderr
