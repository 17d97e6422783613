"""``edgectl decode`` run as a real subprocess: JSON output, verification, exit codes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from edgesdk import batch
from edgesdk.batch import BatchHeader, LostRange
from edgesdk.model import Event, Reading
from tests.edgesdk.test_verify import make_cert

ROOT = Path(__file__).resolve().parents[2]
EDGECTL = ROOT / ".venv" / "bin" / "edgectl"
KEY = ed25519.Ed25519PrivateKey.generate()
T0 = 1767225600.0
PREV = bytes(range(32))


def _message(**kw: Any) -> bytes:
    header = BatchHeader(kw.pop("site", "site1"), kw.pop("gw", "gw1"), "alarm", 9, PREV, 2, T0)
    return batch.seal(
        header,
        key=kw.pop("key", KEY),
        readings=[
            Reading("panel1", "zone1/smoke", 0.5, "%/m", T0),
            Reading("cam1", "snapshot", b"\x01\xab", None, T0),
        ],
        events=[
            Event("fire", "fire", "active", "panel1", T0, {"zone": 1, "raw": b"\xff"}, id="e1")
        ],
        lost=[LostRange("telemetry", 4, 6, "store-full")],
        extra={"x-note": "hello"},
    )


def run(*args: str | Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(EDGECTL), "decode", *map(str, args)],
        input=stdin,
        capture_output=True,
        timeout=60,
        cwd=ROOT,
    )


def _pem(path: Path, key: ed25519.Ed25519PrivateKey, uri: str = "urn:edge:site1:gw1") -> Path:
    path.write_bytes(make_cert(key, uris=(uri,)).public_bytes(serialization.Encoding.PEM))
    return path


def test_decode_file_prints_unverified_json(tmp_path: Path) -> None:
    message = _message()
    path = tmp_path / "batch.cose"
    path.write_bytes(message)
    done = run(path)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["verified"] is False
    assert "key" not in doc
    assert doc["kid"] == batch.kid_for(KEY.public_key()).hex()
    assert doc["digest"] == batch.digest(message).hex()
    assert (doc["site"], doc["gw"], doc["stream"], doc["seq"], doc["boot"], doc["t"]) == (
        "site1",
        "gw1",
        "alarm",
        9,
        2,
        T0,
    )
    assert doc["prev"] == PREV.hex()
    assert doc["alg"] == -8
    assert doc["size"] == len(message)
    assert doc["readings"] == [
        {"device": "panel1", "name": "zone1/smoke", "value": 0.5, "unit": "%/m", "time": T0},
        {"device": "cam1", "name": "snapshot", "value": "01ab", "unit": None, "time": T0},
    ]
    assert doc["events"] == [
        {
            "id": "e1",
            "kind": "fire",
            "severity": "fire",
            "state": "active",
            "source": "panel1",
            "time": T0,
            "data": {"zone": 1, "raw": "ff"},
        }
    ]
    assert doc["lost"] == [{"stream": "telemetry", "first": 4, "last": 6, "reason": "store-full"}]
    assert doc["extra"] == {"x-note": "hello"}


def test_decode_stdin_hex_and_verify_with_cert(tmp_path: Path) -> None:
    cert = _pem(tmp_path / "gw1.pem", KEY)
    done = run("-", "--cert", cert, stdin=_message().hex().encode() + b"\n")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["verified"] is True
    assert doc["key"] == str(cert)
    assert doc["seq"] == 9


def test_decode_refuses_a_cert_for_another_key_or_gateway(tmp_path: Path) -> None:
    path = tmp_path / "batch.cose"
    path.write_bytes(_message())
    other = _pem(tmp_path / "other.pem", ed25519.Ed25519PrivateKey.generate())
    done = run(path, "--cert", other)
    assert done.returncode == 1
    assert done.stdout == b""
    assert b"NOT VERIFIED" in done.stderr
    assert b"not trusted" in done.stderr
    gw2 = _pem(tmp_path / "gw2.pem", KEY, "urn:edge:site1:gw2")
    done = run(path, "--cert", gw2)
    assert done.returncode == 1
    assert b"bound to gateway 'gw2'" in done.stderr


def test_decode_refuses_a_tampered_batch(tmp_path: Path) -> None:
    tampered = _message().replace(b"zone1/smoke", b"zone2/smoke")
    path = tmp_path / "tampered.cose"
    path.write_bytes(tampered)
    done = run(path, "--cert", _pem(tmp_path / "gw1.pem", KEY))
    assert done.returncode == 1
    assert b"bad signature" in done.stderr
    # without --cert it decodes, and says it is not verified
    done = run(path)
    assert done.returncode == 0
    assert json.loads(done.stdout)["verified"] is False


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", b"malformed"),
        (b"\xd2\x84\x40\xa0\x40", b"malformed"),
        (b"hello world", b"malformed"),
        (b"abc", b"not valid hex"),
    ],
)
def test_decode_malformed_input_exits_2(tmp_path: Path, content: bytes, message: bytes) -> None:
    path = tmp_path / "bad.bin"
    path.write_bytes(content)
    done = run(path)
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stdout == b""


def test_decode_unreadable_inputs_exit_2(tmp_path: Path) -> None:
    done = run(tmp_path / "missing.cose")
    assert done.returncode == 2
    assert b"cannot read" in done.stderr
    path = tmp_path / "batch.cose"
    path.write_bytes(_message())
    bad_cert = tmp_path / "bad.pem"
    bad_cert.write_text("not a certificate")
    done = run(path, "--cert", bad_cert)
    assert done.returncode == 2
    assert b"certificate" in done.stderr
