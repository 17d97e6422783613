"""``edgectl emulate panel``: placeholder, replaced by the panel emulator."""

from __future__ import annotations

import typer


def panel() -> None:
    """Not available yet."""
    typer.echo("not available yet", err=True)
    raise typer.Exit(2)
