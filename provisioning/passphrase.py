"""Where a passphrase comes from: a file, an environment variable, or the terminal.

Passphrases protect the site CA key and the private keys inside offline bundles. They are
never taken on the command line (it would land in shell history and ``ps``), never echoed
and never logged. A command that needs one and is not on a terminal fails at once instead
of waiting for input that will never come.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import typer

from edgesdk.errors import ConfigError
from provisioning.errors import FileAccessError

__all__ = ["MIN_LENGTH", "PassphraseSource"]

MIN_LENGTH = 8
"""Shortest passphrase accepted for new keys and bundles."""


@dataclass(frozen=True, slots=True)
class PassphraseSource:
    """One of ``--...-file``, ``--...-env`` or an interactive prompt (neither given)."""

    file: Path | None = None
    env: str | None = None
    what: str = "CA key"
    option: str = "--passphrase"

    def __post_init__(self) -> None:
        if self.file is not None and self.env is not None:
            raise ConfigError(
                f"give either {self.option}-file or {self.option}-env, not both",
                fix=f"drop one of {self.option}-file / {self.option}-env",
            )

    def read(self, *, new: bool = False) -> bytes:
        """The passphrase bytes; ``new`` asks twice and enforces :data:`MIN_LENGTH`."""
        value = self._read(new=new)
        if not value:
            raise ConfigError(
                f"the {self.what} passphrase is empty",
                fix=f"put the passphrase in the file or variable given to {self.option}-...",
            )
        if new and len(value) < MIN_LENGTH:
            raise ConfigError(
                f"the {self.what} passphrase is shorter than {MIN_LENGTH} characters",
                fix="choose a longer passphrase (a few random words work well)",
            )
        return value

    def _read(self, *, new: bool) -> bytes:
        if self.file is not None:
            try:
                data = self.file.read_bytes()
            except OSError as exc:
                raise FileAccessError(
                    f"cannot read the {self.what} passphrase file {self.file}: {exc.strerror}"
                ) from exc
            lines = data.splitlines()
            return lines[0] if lines else b""
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise ConfigError(
                    f"environment variable {self.env} is not set",
                    fix=f"export {self.env}=... or use {self.option}-file",
                )
            return value.encode()
        if not sys.stdin.isatty():
            raise ConfigError(
                f"the {self.what} passphrase is needed and there is no terminal to ask on",
                fix=f"give {self.option}-file FILE or {self.option}-env VAR",
            )
        text: str = typer.prompt(
            f"{self.what} passphrase", hide_input=True, confirmation_prompt=new, err=True
        )
        return text.encode()
