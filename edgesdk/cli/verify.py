"""``edgectl verify``: subscribe to gateways, verify every batch, print what they say.

One line per verified event or reading (JSON lines with ``--json``), rejections and
sequence anomalies as they happen, and a summary on exit (``--count``, ``--duration``,
Ctrl-C or SIGTERM). Exit codes (see ``docs/integrator-guide.md``):

* 0 — every message verified; no unexplained gap, conflict or broken chain;
* 1 — something failed: an invalid or unknown-key message, a refused birth certificate,
  an unexplained gap, a conflict, a broken chain or a boot regression;
* 2 — bad usage or configuration (unreadable CA, TLS files, broker URL);
* 3 — never connected to the broker;
* 4 — otherwise clean, but duplicates were seen (a replay, or a redelivery after a
  reconnect); ``--allow-duplicates`` turns this into 0.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from edgesdk.consumer import Consumer, Summary

__all__ = [
    "EXIT_DUPLICATES",
    "EXIT_FAILED",
    "EXIT_NO_BROKER",
    "EXIT_USAGE",
    "exit_code",
    "verdict",
    "verify",
]

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NO_BROKER = 3
EXIT_DUPLICATES = 4


def exit_code(summary: Summary, *, connected: bool, allow_duplicates: bool = False) -> int:
    """The documented exit code for a run that ended with ``summary``."""
    if not summary.integrity_ok:
        return EXIT_FAILED
    if not connected:
        return EXIT_NO_BROKER
    if summary.duplicates and not allow_duplicates:
        return EXIT_DUPLICATES
    return 0


def verdict(summary: Summary, code: int) -> str:
    """The last line: what made the run fail, in the summary's words."""
    if code == 0:
        return "OK"
    if code == EXIT_USAGE:
        return "FAILED: configuration error (see above)"
    if code == EXIT_NO_BROKER:
        return "FAILED: never connected to the broker"
    if code == EXIT_DUPLICATES:
        return f"DUPLICATES: {summary.duplicates} batches seen twice (replayed or redelivered)"
    causes = [
        (summary.invalid, "invalid"),
        (summary.unknown_key, "unknown key"),
        (summary.gaps_unexplained, "missing without notice (unexplained gaps)"),
        (summary.conflicts, "conflicts"),
        (summary.broken_chain, "broken chain"),
        (summary.boot_regressions, "boot regressions"),
    ]
    return "FAILED: " + ", ".join(f"{n} {what}" for n, what in causes if n)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"edgectl verify: {message}", err=True)
    return typer.Exit(EXIT_USAGE)


async def _run(
    consumer: Consumer, *, count: int | None, duration: float | None, as_json: bool
) -> None:
    from edgesdk.consumer.render import outcome_lines, outcome_records

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, consumer.stop)
    timer = loop.call_later(duration, consumer.stop) if duration is not None else None
    out = sys.stdout
    try:
        async with consumer:
            async for outcome in consumer:
                if as_json:
                    lines = [json.dumps(r) for r in outcome_records(outcome)]
                else:
                    lines = outcome_lines(outcome)
                out.write("".join(f"{line}\n" for line in lines))
                out.flush()
                if count is not None and consumer.messages >= count:
                    consumer.stop()
    finally:
        if timer is not None:
            timer.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


_CA = typer.Option(
    None, "--ca", help="Site CA certificate (PEM/DER): learn keys from births. Repeatable."
)
_CERTS = typer.Option(
    None, "--certs", help="Directory of signing certificates to trust as they are (pinned)."
)
_TLS_CA = typer.Option(
    None, "--tls-ca", help="CA of the broker's TLS certificate (default: the first --ca)."
)
_TLS_CERT = typer.Option(None, "--tls-cert", help="Client certificate (PEM).")
_TLS_KEY = typer.Option(None, "--tls-key", help="Client private key (PEM).")
_TOPIC = typer.Option(None, "--topic", help="Topic filter (default edge/v1/#). Repeatable.")


def verify(
    broker: str = typer.Option(..., "--broker", help="Broker URL: mqtts://host:8883."),
    ca: list[Path] | None = _CA,
    certs: Path | None = _CERTS,
    tls_ca: Path | None = _TLS_CA,
    tls_cert: Path | None = _TLS_CERT,
    tls_key: Path | None = _TLS_KEY,
    topic: list[str] | None = _TOPIC,
    share: str | None = typer.Option(
        None, "--share", help="Join the shared subscription $share/GROUP/... (no gap tracking)."
    ),
    client_id: str | None = typer.Option(
        None, "--client-id", help="Stable MQTT client id: a persistent session (QoS 1)."
    ),
    mqtt: str = typer.Option("5", "--mqtt", help="MQTT version: 5 or 3.1.1."),
    count: int | None = typer.Option(None, "--count", min=1, help="Stop after N messages."),
    duration: float | None = typer.Option(
        None, "--duration", min=0.0, help="Stop after S seconds."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines."),
    allow_duplicates: bool = typer.Option(
        False, "--allow-duplicates", help="Exit 0 even if batches were seen twice."
    ),
    unknown_key_grace: float = typer.Option(
        2.0, "--unknown-key-grace", min=0.0, help="Seconds a batch may wait for its key's birth."
    ),
) -> None:
    """Verify signed batches live from the broker; exit 0 only if all is well."""
    from edgesdk.consumer import Consumer, SiteTrust, parse_broker, render, tls_context
    from edgesdk.errors import ConfigError, EdgeError

    if mqtt not in ("5", "3.1.1"):
        raise _fail(f"--mqtt must be 5 or 3.1.1, not {mqtt!r}")
    try:
        trust = SiteTrust.from_files(ca or [], certs_dir=certs)
        _, _, use_tls = parse_broker(broker)
        tls = None
        if use_tls:
            tls = tls_context(tls_ca or (ca[0] if ca else None), tls_cert, tls_key)
        consumer = Consumer(
            broker,
            trust=trust,
            topics=topic or ["edge/v1/#"],
            share=share,
            client_id=client_id,
            protocol="5" if mqtt == "5" else "3.1.1",
            tls=tls,
            unknown_key_grace=unknown_key_grace,
        )
    except ConfigError as exc:
        raise _fail(str(exc)) from None

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("edgectl verify: %(message)s"))
    logger = logging.getLogger("edgesdk.consumer")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    fatal: EdgeError | None = None
    try:
        asyncio.run(_run(consumer, count=count, duration=duration, as_json=as_json))
    except EdgeError as exc:  # e.g. the broker refused the subscription
        fatal = exc
    finally:
        logger.removeHandler(handler)
    summary = consumer.summary()
    connected = consumer.stats.connects > 0
    code = exit_code(summary, connected=connected, allow_duplicates=allow_duplicates)
    if fatal is not None:
        typer.echo(f"edgectl verify: {fatal}", err=True)
        code = EXIT_USAGE
    if as_json:
        record = {"type": "summary", **summary.as_dict(), "connected": connected, "exit": code}
        typer.echo(json.dumps(record))
    else:
        for line in render.summary_lines(summary):
            typer.echo(line)
        if not connected:
            typer.echo(f"  broker               never connected: {consumer.stats.last_error}")
        typer.echo(f"result: {verdict(summary, code)} (exit {code})")
    raise typer.Exit(code)
