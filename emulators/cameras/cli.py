"""``edgectl emulate cameras``: placeholder, replaced by the cameras emulator."""

from __future__ import annotations

import typer


def cameras() -> None:
    """Not available yet."""
    typer.echo("not available yet", err=True)
    raise typer.Exit(2)
