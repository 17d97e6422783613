"""``edgectl emulate cameras`` as a subprocess: one JSON line, real traffic, exit 0."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys

from tests.emulators.test_camera_spy import Spy, broker_port
from tests.support import Mosquitto, free_port

__all__ = ["broker_port"]  # the fixture, imported for pytest

EDGECTL = [sys.executable, "-c", "from edgesdk.cli import main; main()"]


async def test_cli_publishes_and_exits_0_on_sigterm(broker_port: int) -> None:
    url = f"mqtt://127.0.0.1:{broker_port}"
    async with Spy(broker_port, "frigate/#") as spy:
        proc = await asyncio.create_subprocess_exec(
            *EDGECTL, "emulate", "cameras", "--broker", url, "--scenario", "smoke-in-lobby",
            "--seed", "3", "--time-scale", "20",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            info = json.loads(line)
            await spy.wait_for(lambda m: len(m) >= 4, topic="frigate/events", within=15)
            proc.send_signal(signal.SIGTERM)
            rc = await asyncio.wait_for(proc.wait(), 15)
            _out, err = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await spy.wait_for(lambda m: m[-1].payload == b"offline", topic="frigate/available")
    assert rc == 0, err
    assert b"Traceback" not in err
    assert info["broker"] == url
    assert info["seed"] == 3
    assert info["scenario"] == "smoke-in-lobby"
    assert {"frigate/events", "frigate/available", "cameras/plant_room/event"} <= set(
        info["topics"]
    )
    kinds = {c["id"]: c["kind"] for c in info["cameras"]}
    assert kinds == {
        "lobby": "frigate",
        "stairwell_b": "frigate",
        "loading_dock": "axis",
        "plant_room": "generic",
    }
    labels = {g.json()["after"]["label"] for g in spy.messages("frigate/events")}
    assert labels <= {"smoke", "fire"}
    assert "smoke" in labels


async def test_cli_duration_and_faults() -> None:
    with Mosquitto() as m:
        async with Spy(m.port, "#") as spy:
            proc = await asyncio.create_subprocess_exec(
                *EDGECTL, "emulate", "cameras", "--broker", m.url, "--scenario", "idle",
                "--fault", "oversize", "--time-scale", "20", "--duration", "1",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            try:
                out, err = await asyncio.wait_for(proc.communicate(), 30)
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
    assert proc.returncode == 0, err
    assert json.loads(out.splitlines()[0])["scenario"] == "idle"
    big = [g for g in spy.messages() if len(g.payload) > 256 * 1024]
    assert len(big) >= 1  # every 5 scenario seconds = 0.25 s here


def test_cli_errors_exit_2_with_a_message() -> None:
    cases = [
        (["--broker", "http://127.0.0.1:1"], "broker"),
        (["--scenario", "earthquake"], "scenario"),
        (["--fault", "gremlins"], "--fault"),
        (["--broker", f"mqtt://127.0.0.1:{free_port()}"], "cannot connect"),
    ]
    for args, needle in cases:
        out = subprocess.run(
            [*EDGECTL, "emulate", "cameras", *args], capture_output=True, text=True, timeout=30
        )
        assert out.returncode == 2, (args, out.stderr)
        assert needle in out.stderr, (args, out.stderr)
        assert "Traceback" not in out.stderr
