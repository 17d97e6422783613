"""Independent cross-checks of the wire format, and the worked example in docs/wire-format.md.

* pycose (its own virtual environment, so it cannot lean on our code) verifies our batches;
* a verifier written here from docs/wire-format.md alone (cbor2 + cryptography, no
  ``edgesdk.cose``) verifies and decodes them;
* the doc's example section is regenerated and compared, and its hex is verified.

Run ``python -m tests.edgesdk.test_verify_interop --write`` to rewrite the doc's example.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from edgesdk import batch
from edgesdk.batch import ZERO_DIGEST, BatchHeader, LostRange
from edgesdk.model import Event, EventState, Reading, Severity
from edgesdk.verify import Verifier

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "wire-format.md"
CACHE = Path(os.environ.get("EDGESDK_CACHE", ROOT / ".cache"))
PYCOSE_VENV = CACHE / "pycose-venv"
# pycose 1.1 cannot read cbor2 6 output: cbor2 6 decodes a tag's array as a tuple and
# pycose then says "Bytes cannot be decoded as COSE message". Its venv keeps cbor2 5.
PYCOSE_REQUIREMENTS = ("pycose", "cbor2<6")

# --- the worked example -------------------------------------------------------------------

# RFC 8032 section 7.1 TEST 1: a published key, for examples only.
EXAMPLE_D = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
EXAMPLE_T = 1767225600.5  # 2026-01-01T00:00:00.5Z
EXAMPLE_READINGS = (
    Reading("panel1", "zone3/smoke", 0.25, "%/m", 1767225600.0),
    Reading("panel1", "zone3/temp", 58.5, "Cel", 1767225600.25),
)
EXAMPLE_EVENT = Event(
    kind="fire",
    severity=Severity.FIRE,
    state=EventState.ACTIVE,
    source="panel1",
    time=1767225600.25,
    data={"zone": 3, "point": "L1D12"},
    id="5f0c8e1a9b2d4c6e8f0a1b2c3d4e5f60",
)
EXAMPLE_HEADER = BatchHeader("site1", "gw1", "alarm", 1, ZERO_DIGEST, 3, EXAMPLE_T)


def example_message() -> bytes:
    key = ed25519.Ed25519PrivateKey.from_private_bytes(EXAMPLE_D)
    return batch.seal(EXAMPLE_HEADER, key=key, readings=EXAMPLE_READINGS, events=(EXAMPLE_EVENT,))


def _diag(value: Any, indent: int = 0) -> str:
    """CBOR diagnostic notation (RFC 8949 section 8), one map entry per line."""
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{pad}  {_diag(k)}: {_diag(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list):
        return "[" + ", ".join(_diag(v, indent) for v in value) + "]"
    if isinstance(value, bytes):
        return f"h'{value.hex()}'"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _inline(value: dict[Any, Any]) -> str:
    return "{" + ", ".join(f"{_diag(k)}: {_diag(v)}" for k, v in value.items()) + "}"


def _hex_block(data: bytes) -> str:
    return "```\n" + "\n".join(textwrap.wrap(data.hex(), 64)) + "\n```"


def render_example() -> str:
    """The generated section of docs/wire-format.md (between the example markers)."""
    key = ed25519.Ed25519PrivateKey.from_private_bytes(EXAMPLE_D)
    public = key.public_key()
    spki = public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    message = example_message()
    outer = cbor2.loads(message)
    protected_bytes, _, payload, signature = outer.value
    tbs = cbor2.dumps(["Signature1", protected_bytes, b"", payload])
    senml = ", ".join(f"{r.device}/{r.name} = {r.value} {r.unit}" for r in EXAMPLE_READINGS)
    return "\n".join(
        [
            "Signing key (Ed25519; RFC 8032 section 7.1 TEST 1, a published key: never deploy it):",
            "",
            f"- private key `d`: `{EXAMPLE_D.hex()}`",
            f"- public key `x`: `{public.public_bytes_raw().hex()}`",
            f"- SubjectPublicKeyInfo DER: `{spki.hex()}`",
            f"- `kid` = SHA-256(SPKI)[:16] = `{batch.kid_for(public).hex()}`",
            "",
            f"Readings: {senml}; one `fire` event.",
            "",
            "Payload in diagnostic notation (keys in deterministic order):",
            "",
            "```",
            _diag(cbor2.loads(payload)),
            "```",
            "",
            f"Payload ({len(payload)} bytes):",
            "",
            _hex_block(payload),
            "",
            f"Protected header `{_inline(cbor2.loads(protected_bytes))}`"
            f" ({len(protected_bytes)} bytes):",
            "",
            _hex_block(protected_bytes),
            "",
            f"Sig_structure, the signed bytes ({len(tbs)} bytes):",
            "",
            _hex_block(tbs),
            "",
            f"Signature ({len(signature)} bytes):",
            "",
            _hex_block(signature),
            "",
            f"Complete message ({len(message)} bytes):",
            "",
            _hex_block(message),
            "",
            f"`digest` = SHA-256(message) = `{hashlib.sha256(message).hexdigest()}`: the",
            "`prev` of this stream's batch 2.",
        ]
    )


_SECTION_RE = re.compile(r"(<!-- example:begin -->\n)(.*?)(<!-- example:end -->)", re.S)


def _doc_section() -> str:
    match = _SECTION_RE.search(DOC.read_text())
    assert match is not None, "docs/wire-format.md lost its example markers"
    return match.group(2)


def write_example() -> None:
    text = DOC.read_text()
    new = _SECTION_RE.sub(lambda m: m.group(1) + render_example() + "\n" + m.group(3), text)
    DOC.write_text(new)


# --- a verifier written from docs/wire-format.md only -----------------------------------


class RejectedError(Exception):
    pass


def _strict(data: bytes) -> Any:
    try:
        return cbor2.loads(data, allow_duplicate_keys=False)
    except cbor2.CBORDecodeError as exc:
        raise RejectedError(str(exc)) from exc


def doc_verify(message: bytes, public_key: Any) -> dict[str, Any]:
    """Sections 1-3 of the doc, followed literally; returns the decoded payload fields."""
    item = _strict(message)
    if isinstance(item, cbor2.CBORTag):
        if item.tag != 18:
            raise RejectedError("tag")
        item = item.value
    # cbor2 6 decodes the contents of a tag immutably: an array is a tuple, a map a frozendict
    if not isinstance(item, list | tuple) or len(item) != 4:
        raise RejectedError("shape")
    protected_bytes, unprotected, payload, signature = item
    if not (isinstance(protected_bytes, bytes) and isinstance(unprotected, Mapping)):
        raise RejectedError("header types")
    if not (isinstance(payload, bytes) and isinstance(signature, bytes)):
        raise RejectedError("payload/signature types")
    protected = _strict(protected_bytes)
    if not isinstance(protected, dict) or protected.keys() & unprotected.keys():
        raise RejectedError("buckets")
    spki = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    if protected.get(4) != hashlib.sha256(spki).digest()[:16]:
        raise RejectedError("kid")
    if protected.get(3) != "application/vnd.edgesdk.batch+cbor":
        raise RejectedError("content type")
    tbs = cbor2.dumps(["Signature1", protected_bytes, b"", payload])
    alg = protected.get(1)
    try:
        if alg in (-8, -19) and isinstance(public_key, ed25519.Ed25519PublicKey):
            if len(signature) != 64:
                raise RejectedError("length")
            public_key.verify(signature, tbs)
        elif alg in (-7, -9) and isinstance(public_key, ec.EllipticCurvePublicKey):
            if len(signature) != 64:
                raise RejectedError("length")
            r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            public_key.verify(encode_dss_signature(r, s), tbs, ec.ECDSA(hashes.SHA256()))
        else:
            raise RejectedError("alg")
    except InvalidSignature as exc:
        raise RejectedError("signature") from exc
    body = _strict(payload)
    if body["v"] != 1 or not isinstance(body["t"], float) or len(body["prev"]) != 32:
        raise RejectedError("payload fields")
    if (body["seq"] == 1) != (body["prev"] == bytes(32)):
        raise RejectedError("prev")
    body["readings"] = _doc_senml(body["senml"])
    return body


def _doc_senml(pack: list[dict[int, Any]]) -> list[tuple[str, str, Any, str | None, float]]:
    """RFC 8428 resolution as section 3 of the doc describes it."""
    out = []
    bn, bt, bu = "", 0.0, None
    for rec in pack:
        bn = rec.get(-2, bn)
        bt = rec.get(-3, bt)
        bu = rec.get(-4, bu)
        name = bn + rec[0]
        value = next(rec[k] for k in (2, 3, 4, 8) if k in rec)
        device, _, reading = name.partition("/")
        out.append((device, reading, value, rec.get(1, bu), bt + rec.get(6, 0)))
    return out


def _expected_readings(readings: tuple[Reading, ...]) -> list[tuple[Any, ...]]:
    return [(r.device, r.name, r.value, r.unit, r.time) for r in readings]


# --- pycose in its own virtual environment ---------------------------------------------

_PYCOSE_SCRIPT = """
import json, sys
from pycose.keys import EC2Key, OKPKey
from pycose.messages import CoseMessage
job = json.load(sys.stdin)
if job["kty"] == "OKP":
    key = OKPKey(crv="Ed25519", x=bytes.fromhex(job["x"]))
else:
    key = EC2Key(crv="P_256", x=bytes.fromhex(job["x"]), y=bytes.fromhex(job["y"]))
msg = CoseMessage.decode(bytes.fromhex(job["message"]))
msg.key = key
print(json.dumps({"ok": bool(msg.verify_signature()), "payload": msg.payload.hex(),
                  "type": type(msg).__name__}))
"""


@pytest.fixture(scope="session")
def pycose_python() -> Path:
    """A venv with pycose from the package index, made once and cached under .cache/."""
    python = PYCOSE_VENV / "bin" / "python"
    marker = PYCOSE_VENV / ".installed"
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / "pycose-venv.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test runs share one venv
        if not marker.exists() or marker.read_text() != " ".join(PYCOSE_REQUIREMENTS):
            steps = [
                [sys.executable, "-m", "venv", "--clear", str(PYCOSE_VENV)],
                [str(python), "-m", "pip", "install", "--quiet", *PYCOSE_REQUIREMENTS],
            ]
            for cmd in steps:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
                if done.returncode != 0:
                    pytest.fail(
                        f"cannot build the pycose venv: {' '.join(cmd)} exited "
                        f"{done.returncode}:\n{done.stdout}\n{done.stderr}"
                    )
            marker.write_text(" ".join(PYCOSE_REQUIREMENTS))
    return python


def _pycose_verify(python: Path, message: bytes, public_key: Any) -> dict[str, Any]:
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        job = {"kty": "OKP", "x": public_key.public_bytes_raw().hex()}
    else:
        numbers = public_key.public_numbers()
        job = {
            "kty": "EC2",
            "x": numbers.x.to_bytes(32, "big").hex(),
            "y": numbers.y.to_bytes(32, "big").hex(),
        }
    job["message"] = message.hex()
    done = subprocess.run(
        [str(python), "-c", _PYCOSE_SCRIPT],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


KEYS = {
    "ed25519": ed25519.Ed25519PrivateKey.generate(),
    "p256": ec.generate_private_key(ec.SECP256R1()),
}
READINGS = (
    Reading("panel1", "zone1/smoke", 0.1, "%/m", 1767225600.125),
    Reading("beacon4", "air", 231, "Pa", 1767225601.0),
    Reading("beacon4", "motion", False, None, 1767225601.0),
    Reading("cam1", "label", "person", None, 1767225602.0),
)
EVENTS = (Event("man-down", "alarm", "active", "beacon4", 1767225601.0, {"firefighter": "FF-12"}),)


def _sealed(key: Any) -> bytes:
    header = BatchHeader("site1", "gw1", "alarm", 7, b"\x42" * 32, 2, 1767225603.0)
    lost = (LostRange("telemetry", 3, 5, "store-full"),)
    return batch.seal(header, key=key, readings=READINGS, events=EVENTS, lost=lost)


@pytest.mark.parametrize("name", sorted(KEYS))
def test_pycose_verifies_our_batches(pycose_python: Path, name: str) -> None:
    key = KEYS[name]
    message = _sealed(key)
    result = _pycose_verify(pycose_python, message, key.public_key())
    assert result == {
        "ok": True,
        "payload": cbor2.loads(message).value[2].hex(),
        "type": "Sign1Message",
    }
    # pycose sees a tampered batch as invalid, so the check above can fail
    tampered = message.replace(b"site1", b"site2")
    assert _pycose_verify(pycose_python, tampered, key.public_key())["ok"] is False


@pytest.mark.parametrize("name", sorted(KEYS))
def test_doc_verifier_decodes_every_field(name: str) -> None:
    key = KEYS[name]
    message = _sealed(key)
    body = doc_verify(message, key.public_key())
    assert (body["site"], body["gw"], body["stream"], body["seq"]) == ("site1", "gw1", "alarm", 7)
    assert (body["prev"], body["boot"], body["t"]) == (b"\x42" * 32, 2, 1767225603.0)
    assert body["readings"] == _expected_readings(READINGS)
    (event,) = body["events"]
    e = EVENTS[0]
    assert event == {
        "id": e.id,
        "kind": "man-down",
        "sev": "alarm",
        "state": "active",
        "src": "beacon4",
        "t": 1767225601.0,
        "data": {"firefighter": "FF-12"},
    }
    assert body["lost"] == [{"stream": "telemetry", "first": 3, "last": 5, "reason": "store-full"}]
    # it rejects what the doc says to reject
    other = {"ed25519": ed25519.Ed25519PrivateKey.generate, "p256": _p256}[name]()
    with pytest.raises(RejectedError, match="kid"):
        doc_verify(message, other.public_key())
    with pytest.raises(RejectedError, match="signature"):
        doc_verify(message.replace(b"beacon4", b"beacon5"), key.public_key())


def _p256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def test_doc_example_section_is_current() -> None:
    assert _doc_section().strip() == render_example().strip(), (
        "docs/wire-format.md example is stale: run "
        "`.venv/bin/python -m tests.edgesdk.test_verify_interop --write`"
    )


def test_doc_example_hex_verifies() -> None:
    """Read the key and message from the doc text itself, then verify and decode."""
    section = _doc_section()
    x = re.search(r"public key `x`: `([0-9a-f]{64})`", section)
    blocks = re.findall(r"Complete message \((\d+) bytes\):\n\n```\n([0-9a-f\n]+)```", section)
    assert x is not None
    assert len(blocks) == 1
    size, hex_text = blocks[0]
    message = bytes.fromhex(hex_text.replace("\n", ""))
    assert len(message) == int(size)
    public = ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(x.group(1)))
    body = doc_verify(message, public)
    assert body["readings"] == _expected_readings(EXAMPLE_READINGS)
    assert len(body["events"]) == 1
    verifier = Verifier()
    verifier.add_key(public, site="site1", gw="gw1")
    got = verifier.verify(message)
    assert got.readings == EXAMPLE_READINGS
    assert got.events == (EXAMPLE_EVENT,)
    assert (got.stream, got.seq, got.boot, got.t) == ("alarm", 1, 3, EXAMPLE_T)
    assert not math.isnan(got.t)
    digest = re.search(r"SHA-256\(message\) = `([0-9a-f]{64})`", section)
    assert digest is not None
    assert bytes.fromhex(digest.group(1)) == got.digest


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write_example()
        print(f"rewrote the example in {DOC}")
    else:
        print(render_example())
