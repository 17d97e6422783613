"""``edgectl decode``: print a signed batch (``docs/wire-format.md``) as JSON.

Without ``--cert`` the batch is decoded but **not trusted**, and the JSON says so
(``"verified": false``). With ``--cert`` the signature and the certificate's site/gateway
binding are checked first. Exit codes: 0 printed; 1 signature or key check failed;
2 unreadable or malformed input (the batch file or a certificate).
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer

__all__ = ["decode", "to_json"]

_HEX_RE = re.compile(rb"^[0-9A-Fa-f\s]+$")


def _plain(value: Any) -> Any:
    """JSON-friendly: bytes as hex, tuples as lists, non-finite floats as text."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def to_json(batch: Any, *, verified: bool, key: str | None = None) -> dict[str, Any]:
    """The JSON document ``edgectl decode`` prints for a :class:`~edgesdk.batch.Batch`."""
    doc: dict[str, Any] = {"verified": verified}
    if key is not None:
        doc["key"] = key
    doc.update(
        kid=batch.kid.hex(),
        alg=batch.alg,
        digest=batch.digest.hex(),
        size=len(batch.raw),
        site=batch.site,
        gw=batch.gw,
        stream=batch.stream,
        seq=batch.seq,
        prev=batch.prev.hex(),
        boot=batch.boot,
        t=batch.t,
        readings=[
            {"device": r.device, "name": r.name, "value": r.value, "unit": r.unit, "time": r.time}
            for r in batch.readings
        ],
        events=[
            {
                "id": e.id,
                "kind": e.kind,
                "severity": e.severity.value,
                "state": e.state.value,
                "source": e.source,
                "time": e.time,
                "data": e.data,
            }
            for e in batch.events
        ],
        lost=[
            {"stream": x.stream, "first": x.first, "last": x.last, "reason": x.reason}
            for x in batch.lost
        ],
        extra=batch.extra,
    )
    return {k: _plain(v) for k, v in doc.items()}


def _fail(code: int, message: str) -> typer.Exit:
    typer.echo(f"edgectl decode: {message}", err=True)
    return typer.Exit(code)


def _read(file: str) -> bytes:
    try:
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        raise _fail(2, f"cannot read {file}: {exc.strerror or exc}") from None
    # A raw message starts with 0xd2 or 0x84, never with an ASCII hex digit: hex text
    # (as printed in docs/wire-format.md) is unambiguous.
    if data and _HEX_RE.match(data):
        try:
            return bytes.fromhex(data.decode("ascii"))
        except ValueError:
            raise _fail(2, f"{file}: looks like hex but is not valid hex") from None
    return data


_CERT_OPTION = typer.Option(
    None, "--cert", help="Verify with this certificate (PEM or DER) first; may be repeated."
)


def decode(
    file: str = typer.Argument(..., help="A signed batch file (raw bytes or hex text), or -."),
    cert: list[Path] | None = _CERT_OPTION,
) -> None:
    """Print a signed batch as JSON (decoded; verified only with --cert)."""
    from edgesdk.batch import decode as decode_batch
    from edgesdk.errors import ConfigError, ProtocolError, SignatureError
    from edgesdk.verify import Verifier

    data = _read(file)
    try:
        batch = decode_batch(data)
    except ProtocolError as exc:
        raise _fail(2, f"{file}: malformed signed batch: {exc}") from None
    key: str | None = None
    if cert:
        try:
            verifier = Verifier.from_cert_files(cert)
        except ConfigError as exc:
            raise _fail(2, f"certificate: {exc}") from None
        try:
            batch = verifier.verify(data)
        except SignatureError as exc:
            raise _fail(1, f"{file}: NOT VERIFIED: {exc}") from None
        except ProtocolError as exc:
            raise _fail(2, f"{file}: malformed signed batch: {exc}") from None
        key = verifier.keys[batch.kid].source
    typer.echo(json.dumps(to_json(batch, verified=key is not None, key=key), indent=2))
