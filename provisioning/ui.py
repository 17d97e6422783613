"""How provisioning commands talk: rich tables for people, one JSON object for scripts.

Results go to stdout; progress bars, prompts and error messages to stderr, so
``--json`` output stays parseable. Every error raised on purpose becomes one line that says
what went wrong and what to do, and a documented exit code (:mod:`provisioning.errors`).
Nothing here ever prints key material: commands hand over paths and fingerprints only.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edgesdk.errors import EdgeError
from provisioning.errors import ExitCode, exit_code_for

__all__ = ["Output", "command", "err", "out"]

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class Output:
    """The result side of one command run, in human or JSON form."""

    def __init__(self, name: str, as_json: bool) -> None:
        self.name = name
        self.as_json = as_json

    def emit(self, data: Mapping[str, Any], *, ok: bool = True) -> None:
        """Print the JSON object (``--json``) with ``ok`` and ``command`` added."""
        if self.as_json:
            payload = {"ok": ok, "command": self.name, **data}
            typer.echo(json.dumps(payload, indent=2, sort_keys=True, default=str))

    def written(
        self,
        title: str,
        files: Mapping[str, Path],
        facts: Mapping[str, str] | None = None,
        next_steps: list[str] | None = None,
    ) -> None:
        """Files written (with their modes) and facts, then what to do next."""
        if self.as_json:
            self.emit({"files": {k: str(v) for k, v in files.items()}, **(facts or {})})
            return
        out.print(f"[bold green]{escape(title)}[/]")
        table = Table(show_header=True, header_style="bold")
        table.add_column("file")
        table.add_column("path")
        table.add_column("mode")
        for what, path in files.items():
            table.add_row(what, escape(_shown(path)), _mode(path))
        out.print(table)
        for key, value in (facts or {}).items():
            out.print(f"  {key}: {escape(str(value))}", highlight=False)
        if next_steps:
            out.print("[bold]next:[/]")
            for step in next_steps:
                out.print(f"  {escape(step)}", highlight=False)

    def progress(self, *, enabled: bool = True) -> Progress:
        """A progress bar on stderr, off for ``--json`` and when stderr is not a terminal."""
        return Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
            disable=self.as_json or not enabled or not err.is_terminal,
        )


def _shown(path: Path) -> str:
    """A path relative to the working directory when it is below it (shorter to read)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def _mode(path: Path) -> str:
    try:
        return f"{stat.S_IMODE(os.stat(path).st_mode):04o}"
    except OSError:
        return "?"


@contextlib.contextmanager
def command(name: str, as_json: bool) -> Iterator[Output]:
    """Run a command body; turn our errors into a message and a documented exit code."""
    try:
        yield Output(name, as_json)
    except EdgeError as exc:
        code = exit_code_for(exc)
        _fail(name, as_json, str(exc), type(exc).__name__, code)
        raise typer.Exit(int(code)) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None


def _fail(name: str, as_json: bool, message: str, kind: str, code: ExitCode) -> None:
    if as_json:
        payload = {
            "ok": False,
            "command": name,
            "error": message,
            "kind": kind,
            "exit_code": int(code),
        }
        typer.echo(json.dumps(payload, indent=2, sort_keys=True))
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
