"""``edgectl decode``: filled in with the signed-batch format (edgesdk.batch)."""

from __future__ import annotations

import typer


def decode(file: str = typer.Argument(..., help="A signed batch file, or - for stdin.")) -> None:
    """Print a signed batch as JSON (placeholder until edgesdk.batch lands)."""
    typer.echo("edgectl decode: not available yet", err=True)
    raise typer.Exit(2)
