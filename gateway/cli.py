"""``edgectl gateway run|status``."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import typer

__all__ = ["app"]

app = typer.Typer(help="Run the gateway, or ask a running one how it is.", no_args_is_help=True)

CONFIG = typer.Option(..., "--config", "-c", help="gateway.toml", exists=False)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and exception text)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "t": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("pymodbus", "aiomqtt", "amqtt", "transitions"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def _fail(exc: BaseException, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(code)


@app.command()
def run(
    config: Path = CONFIG,
    log_level: str = typer.Option("info", help="debug, info, warning, error"),
    log_format: str = typer.Option("text", help="text or json (one object per line)"),
) -> None:
    """Run the gateway until SIGTERM/SIGINT (exit 0), sealing and committing on the way out."""
    from edgesdk.errors import EdgeError
    from gateway import config as gwconfig
    from gateway.app import Gateway

    setup_logging(log_level, log_format)
    try:
        cfg = gwconfig.load(config)
    except EdgeError as exc:
        raise _fail(exc) from None

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        gw = Gateway(cfg)
        await gw.run(stop)

    try:
        asyncio.run(main())
    except EdgeError as exc:
        raise _fail(exc) from None


@app.command()
def status(
    config: Path = CONFIG,
    as_json: bool = typer.Option(False, "--json", help="print the raw status as JSON"),
    wait: float = typer.Option(3.0, "--timeout", help="seconds to wait for the gateway"),
) -> None:
    """Ask a running gateway for its health (exit 0 healthy, 1 unhealthy, 2 unreachable)."""
    from edgesdk.errors import EdgeError
    from gateway import config as gwconfig

    try:
        cfg = gwconfig.load(config)
    except EdgeError as exc:
        raise _fail(exc) from None
    if not cfg.health.listen:
        raise _fail(Exception("health.listen is not set in the config; nothing to ask"))
    url = f"http://{cfg.health.listen}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=wait) as resp:  # loopback only
            body = resp.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()
    except OSError as exc:
        raise _fail(Exception(f"gateway not reachable at {url}: {exc}")) from None
    st = json.loads(body)
    if as_json:
        typer.echo(json.dumps(st, indent=2, sort_keys=True))
    else:
        _print_status(st)
    raise typer.Exit(0 if st.get("healthy") else 1)


def _print_status(st: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    g, up = st["gateway"], st["uplink"]
    console.print(
        f"[bold]{g['site']}/{g['id']}[/] v{g['version']} boot {g['boot']} "
        f"uptime {g['uptime']:.0f}s kid {g['kid'][:12]}…  "
        + ("[green]healthy[/]" if st["healthy"] else "[red]UNHEALTHY[/]")
    )
    t = Table(title="drivers")
    for col in ("device", "driver", "state", "items", "errors", "last error"):
        t.add_column(col)
    for name, d in sorted(st["drivers"].items()):
        t.add_row(
            name,
            d["driver"],
            d["state"],
            str(d["counters"].get("items", 0)),
            str(d["counters"].get("errors", 0)),
            d["last_error"] or "",
        )
    console.print(t)
    t = Table(title="lanes")
    for col in ("lane", "waiting", "bytes", "oldest unsent"):
        t.add_column(col)
    for lane, v in st["lanes"].items():
        age = f"{v['oldest_age']:.1f}s" if v["oldest_age"] is not None else "-"
        t.add_row(lane, str(v["batches"]), str(v["bytes"]), age)
    console.print(t)
    console.print(
        f"uplink {up['url']}: "
        + ("[green]connected[/]" if up["connected"] else "[red]down[/]")
        + f", published {up['published']}, {up['rate']:.1f}/s, errors {up['publish_errors']}"
        + (f", last error: {up['last_error']}" if up["last_error"] else "")
    )
    console.print(
        f"signatures {g['signatures']}, readings {g['readings_in']}, "
        f"shed {g['shed_batches']} batches, last error: {g['last_error'] or '-'}"
    )
    if st["active"]:
        t = Table(title="active rule events")
        for col in ("kind", "severity", "source", "id"):
            t.add_column(col)
        for e in st["active"]:
            t.add_row(e["kind"], e["sev"], e["src"], e["id"][:12])
        console.print(t)
