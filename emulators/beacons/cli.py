"""``edgectl emulate beacons``: placeholder, replaced by the beacons emulator."""

from __future__ import annotations

import typer


def beacons() -> None:
    """Not available yet."""
    typer.echo("not available yet", err=True)
    raise typer.Exit(2)
