"""``edgectl verify`` as a real subprocess against a real gateway and a TLS mosquitto that
requires client certificates: clean runs exit 0; forged, replayed, corrupted and
wrong-gateway batches injected on the broker make it exit non-zero, naming them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.edgesdk.test_consumer_support import (
    Chain,
    RunningGateway,
    client_tls,
    fire,
    publish,
    running_gateway,
)
from tests.pki import TestPKI
from tests.support import Mosquitto, free_port

ROOT = Path(__file__).resolve().parents[2]
TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


@pytest.fixture
def pki(tmp_path: Path) -> TestPKI:
    return TestPKI(tmp_path / "pki")


@pytest.fixture
def tls_broker(pki: TestPKI) -> Iterator[Mosquitto]:
    with Mosquitto(tls=pki.broker()) as broker:
        yield broker


@dataclass
class Verify:
    """One ``python -m edgesdk verify`` process; its output lines are collected as they come."""

    proc: asyncio.subprocess.Process
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)
    readers: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def start(cls, *args: str | Path) -> Verify:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "edgesdk", "verify", *map(str, args),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
        )  # fmt: skip
        v = cls(proc)
        assert proc.stdout is not None and proc.stderr is not None
        v.readers = [
            asyncio.create_task(v._read(proc.stdout, v.out)),
            asyncio.create_task(v._read(proc.stderr, v.err)),
        ]
        return v

    @staticmethod
    async def _read(stream: asyncio.StreamReader, into: list[str]) -> None:
        async for line in stream:
            into.append(line.decode().rstrip("\n"))

    async def wait_line(
        self, pred: Callable[[str], bool], *, err: bool = False, timeout: float = 15.0
    ) -> str:
        lines = self.err if err else self.out
        try:
            async with asyncio.timeout(timeout):
                while True:
                    for line in lines:
                        if pred(line):
                            return line
                    if self.proc.returncode is not None:
                        raise AssertionError(f"verify exited {self.proc.returncode}")
                    await asyncio.sleep(0.02)
        except TimeoutError:
            raise AssertionError(
                f"no such line; stdout {self.out[-5:]}, stderr {self.err}"
            ) from None

    async def finish(self, *, sig: signal.Signals | None = None, timeout: float = 20.0) -> int:
        if sig is not None:
            self.proc.send_signal(sig)
        try:
            async with asyncio.timeout(timeout):
                code = await self.proc.wait()
                await asyncio.gather(*self.readers)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise
        return code

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        for t in self.readers:
            t.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)


def tls_args(pki: TestPKI, broker: Mosquitto) -> list[str | Path]:
    crt, key = pki.client("verify")
    return ["--broker", broker.url, "--ca", pki.ca, "--tls-cert", crt, "--tls-key", key]


@contextlib.asynccontextmanager
async def verify(*args: str | Path) -> Any:
    v = await Verify.start(*args)
    try:
        await v.wait_line(lambda s: "subscribed to" in s, err=True)
        yield v
    finally:
        await v.kill()


async def test_clean_run_prints_verified_items_and_exits_0(
    tmp_path: Path, pki: TestPKI, tls_broker: Mosquitto
) -> None:
    async with (
        running_gateway(tmp_path, pki, tls_broker.port) as gw,
        verify(*tls_args(pki, tls_broker), "--count", "12") as v,
    ):
        gw.driver.emit(fire())
        code = await v.finish()
    text = "\n".join(v.out)
    assert code == 0, text
    assert re.search(
        rf"^{TIME} hq/gw1 alarm#1 FIRE active panel1 fire \{{zone: 2, point: 5\}}$", text, re.M
    )
    assert re.search(rf"^{TIME} hq/gw1 telemetry#\d+ panel1 p\d+/value = [\d.]+ Cel$", text, re.M)
    assert re.search(
        rf"^{TIME} hq/gw1 state#\d+ BIRTH version \S+ boot 1 devices panel1", text, re.M
    )
    assert re.search(rf"^{TIME} hq/gw1 KEY learned key {gw.gateway.identity.kid.hex()}", text, re.M)
    assert "  messages             12" in text and "  batches verified     12" in text
    assert "  invalid              0" in text and "  gaps unexplained     0 batches" in text
    assert v.out[-1] == "result: OK (exit 0)"


async def _telemetry_seen(v: Verify, gw: RunningGateway) -> bytes:
    """A telemetry batch verify has printed, as the gateway sent it."""
    line = await v.wait_line(lambda s: " telemetry#" in s or '"stream": "telemetry"' in s)
    m = re.search(r'telemetry#(\d+)|"seq": (\d+)', line)
    assert m is not None
    seq = int(m.group(1) or m.group(2))
    async with asyncio.timeout(5):
        while True:
            for s in gw.delivered:
                if (s.stream, s.seq) == ("telemetry", seq):
                    return s.message
            await asyncio.sleep(0.02)


def _forged(pki: TestPKI, original: bytes) -> tuple[str, bytes]:
    rogue = ed25519.Ed25519PrivateKey.generate()
    return "edge/v1/hq/gw1/alarm", Chain(rogue, stream="alarm", seq=500, prev=original[:32]).next()


def _corrupted(pki: TestPKI, original: bytes) -> tuple[str, bytes]:
    return "edge/v1/hq/gw1/telemetry", original[:-1] + bytes([original[-1] ^ 0x01])


def _signed_for_gw2(pki: TestPKI, original: bytes) -> tuple[str, bytes]:
    key = serialization.load_pem_private_key((pki.dir / "gw1-sign.key").read_bytes(), None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return "edge/v1/hq/gw2/alarm", Chain(key, gw="gw2", stream="alarm").next(events=[fire()])


INJECTIONS = {
    # name: (make (topic, bytes), the line reporting it, summary line, verdict, exit code)
    "forged": (
        _forged,
        "REJECTED unknown-key edge/v1/hq/gw1/alarm",
        "  unknown key          1",
        "FAILED: 1 unknown key",
        1,
    ),
    "replayed": (
        lambda pki, m: ("edge/v1/hq/gw1/telemetry", m),
        "DUPLICATE seq",
        "  duplicates           1 (replayed or redelivered)",
        "DUPLICATES: 1 batches seen twice (replayed or redelivered)",
        4,
    ),
    "corrupted": (
        _corrupted,
        "REJECTED bad-signature edge/v1/hq/gw1/telemetry",
        "  invalid              1 (bad-signature 1)",
        "FAILED: 1 invalid",
        1,
    ),
    "republished-on-gw2": (
        lambda pki, m: ("edge/v1/hq/gw2/telemetry", m),
        "REJECTED wrong-topic edge/v1/hq/gw2/telemetry: the payload is for hq/gw1/telemetry",
        "  invalid              1 (wrong-topic 1)",
        "FAILED: 1 invalid",
        1,
    ),
    "gw1-key-claims-gw2": (
        _signed_for_gw2,
        "REJECTED wrong-gateway edge/v1/hq/gw2/alarm",
        "  invalid              1 (wrong-gateway 1)",
        "FAILED: 1 invalid",
        1,
    ),
}


@pytest.mark.parametrize("case", INJECTIONS)
async def test_injected_bad_batch_makes_verify_fail(
    tmp_path: Path, pki: TestPKI, tls_broker: Mosquitto, case: str
) -> None:
    make, report, summary, verdict, expected = INJECTIONS[case]
    args = [*tls_args(pki, tls_broker), "--unknown-key-grace", "0.3"]
    async with (
        running_gateway(tmp_path, pki, tls_broker.port) as gw,
        verify(*args) as v,
    ):
        original = await _telemetry_seen(v, gw)
        topic, message = make(pki, original)
        await publish(tls_broker.port, [(topic, message)], tls=client_tls(pki, "intruder"))
        await v.wait_line(lambda s: report in s)
        code = await v.finish(sig=signal.SIGTERM)
    assert summary in v.out, "\n".join(v.out[-20:])
    assert code == expected and v.out[-1] == f"result: {verdict} (exit {expected})"
    assert "  gaps unexplained     0 batches" in v.out  # nothing else went wrong


async def test_json_lines_and_summary(tmp_path: Path, pki: TestPKI, tls_broker: Mosquitto) -> None:
    async with (
        running_gateway(tmp_path, pki, tls_broker.port) as gw,
        verify(*tls_args(pki, tls_broker), "--json", "--mqtt", "3.1.1") as v,
    ):
        gw.driver.emit(fire())
        await v.wait_line(lambda s: '"type": "event"' in s)
        original = await _telemetry_seen(v, gw)
        await publish(
            tls_broker.port, [("edge/v1/hq/gw1/telemetry", original)], tls=client_tls(pki, "x")
        )
        await v.wait_line(lambda s: '"kind": "duplicate"' in s)
        code = await v.finish(sig=signal.SIGINT)  # Ctrl-C: the summary still comes
    records = [json.loads(line) for line in v.out]
    (event,) = [r for r in records if r["type"] == "event"]
    assert (event["stream"], event["severity"], event["data"]) == (
        "alarm",
        "fire",
        {"zone": 2, "point": 5},
    )
    assert any(r["type"] == "reading" and r["unit"] == "Cel" for r in records)
    assert any(r["type"] == "state" and r["kind"] == "birth" for r in records)
    summary = records[-1]
    assert summary["type"] == "summary" and summary["duplicates"] == 1 and summary["exit"] == 4
    assert summary["invalid"] == 0 and summary["unknown_key"] == 0 and code == 4


async def test_usage_errors_and_no_broker(tmp_path: Path, pki: TestPKI) -> None:
    v = await Verify.start("--broker", "mqtt://127.0.0.1:1883")
    assert await v.finish() == 2 and "no trust anchors" in "\n".join(v.err)
    v = await Verify.start("--broker", "http://x", "--ca", pki.ca)
    assert await v.finish() == 2 and "broker URL" in "\n".join(v.err)
    port = free_port()
    v = await Verify.start(
        "--broker", f"mqtt://127.0.0.1:{port}", "--ca", pki.ca, "--duration", "0.5"
    )
    assert await v.finish() == 3
    assert v.out[-1] == "result: FAILED: never connected to the broker (exit 3)"
