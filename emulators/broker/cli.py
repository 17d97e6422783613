"""``edgectl emulate broker``: placeholder, replaced by the broker emulator."""

from __future__ import annotations

import typer


def broker() -> None:
    """Not available yet."""
    typer.echo("not available yet", err=True)
    raise typer.Exit(2)
