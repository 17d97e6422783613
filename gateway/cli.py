"""``edgectl gateway run|status``."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import typer

from gateway.logs import LEVELS

__all__ = ["app"]

app = typer.Typer(help="Run the gateway, or ask a running one how it is.", no_args_is_help=True)

CONFIG = typer.Option(..., "--config", "-c", help="gateway.toml", exists=False)


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
    if log_level.lower() not in LEVELS:
        raise _fail(ValueError(f"--log-level {log_level!r}: use one of {', '.join(LEVELS)}"))
    if log_format not in ("text", "json"):
        raise _fail(ValueError(f"--log-format {log_format!r}: use text or json"))
    # Become the lean resident process (gateway.daemon): same PID, without this CLI's
    # libraries in memory for the months it runs. It loads and checks the config itself.
    argv = [*_interpreter_options(), "-m", "gateway", "--config", str(config)]
    argv += ["--log-level", log_level.lower(), "--log-format", log_format]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *argv])  # noqa: S606 (this Python, fixed argv)


def _interpreter_options(orig_argv: list[str] | None = None) -> list[str]:
    """The options this Python was started with (``-X dev``, ``-W error``, ``-u``...), so
    the exec'd gateway runs under the same ones."""
    out: list[str] = []
    args = iter((sys.orig_argv if orig_argv is None else orig_argv)[1:])
    for arg in args:
        if not arg.startswith("-") or arg in ("-", "-m", "-c") or arg.startswith("--"):
            break
        out.append(arg)
        if arg in ("-X", "-W"):  # the value is the next word
            out.append(next(args, ""))
    return out


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
