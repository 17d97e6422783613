"""Options shared by the provisioning commands, declared once so they read the same."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = [
    "CaDir",
    "Days",
    "JsonFlag",
    "PassEnv",
    "PassFile",
]

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print one JSON object on stdout, for scripts.")
]
CaDir = Annotated[
    Path,
    typer.Option(
        "--ca",
        help="Site CA directory (made by 'provision ca init').",
        file_okay=False,
    ),
]
PassFile = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help="File whose first line is the CA key passphrase (keep it 0600).",
        dir_okay=False,
    ),
]
PassEnv = Annotated[
    str | None,
    typer.Option(
        "--passphrase-env",
        help="Environment variable holding the CA key passphrase.",
        metavar="VAR",
    ),
]
Days = Annotated[
    int | None,
    typer.Option("--days", min=1, max=36500, help="Certificate lifetime in days."),
]
