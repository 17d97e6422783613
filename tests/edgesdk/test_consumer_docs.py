"""docs/integrator-guide.md stays true: its example runs against a real gateway and TLS
broker, it fits in 15 lines, and its tables name every reject reason and exit code."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgesdk.cli.verify import EXIT_DUPLICATES, EXIT_FAILED, EXIT_NO_BROKER, EXIT_USAGE
from edgesdk.consumer import REJECT_REASONS
from tests.edgesdk.test_consumer_support import client_tls, fire, publish, running_gateway
from tests.pki import TestPKI
from tests.support import Mosquitto

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "integrator-guide.md"
TOPIC = "edge/v1/hq/gw1/telemetry"


def example() -> str:
    text = GUIDE.read_text()
    block = text.split("<!-- example:begin -->", 1)[1].split("<!-- example:end -->", 1)[0]
    match = re.search(r"```python\n(.*?)```", block, re.S)
    assert match is not None
    return match.group(1)


@pytest.fixture
def pki(tmp_path: Path) -> TestPKI:
    return TestPKI(tmp_path / "pki")


@pytest.fixture
def tls_broker(pki: TestPKI) -> Iterator[Mosquitto]:
    with Mosquitto(tls=pki.broker()) as broker:
        yield broker


def test_guide_tables_are_complete() -> None:
    text = GUIDE.read_text()
    assert len(example().strip().splitlines()) <= 15
    for reason in REJECT_REASONS:
        assert f"| `{reason}` |" in text, reason
    for code in (0, EXIT_FAILED, EXIT_USAGE, EXIT_NO_BROKER, EXIT_DUPLICATES):
        assert f"\n| {code} |" in text, code
    assert "](wire-format.md)" in text


async def test_guide_example_runs(tmp_path: Path, pki: TestPKI, tls_broker: Mosquitto) -> None:
    crt, key = pki.client("desk")
    code = (
        example()
        .replace("mqtts://broker:8883", tls_broker.url)
        .replace('"site-ca.pem"', repr(str(pki.ca)))
        .replace('"consumer.crt"', repr(str(crt)))
        .replace('"consumer.key"', repr(str(key)))
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []

    async def read(stream: asyncio.StreamReader) -> None:
        async for line in stream:
            lines.append(line.decode().strip())

    reader = asyncio.create_task(read(proc.stdout))
    intruder = client_tls(pki, "intruder")
    try:
        async with running_gateway(tmp_path, pki, tls_broker.port) as gw:
            async with asyncio.timeout(15):
                while not lines:  # garbage until the example shows it is subscribed
                    await publish(tls_broker.port, [(TOPIC, b"garbage")], tls=intruder)
                    await asyncio.sleep(0.2)
                gw.driver.emit(fire())
                while "gw1 fire fire active" not in lines:
                    await asyncio.sleep(0.02)
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        await reader
    assert lines[0].startswith("REJECTED malformed ")
    assert set(lines) - {lines[0]} == {"gw1 fire fire active"}
