"""``edgectl``: the one command-line entry point.

Groups live beside the code they drive (``emulators.cli``, ``gateway.cli``,
``provisioning.cli``) and import their heavy dependencies inside the commands, so
``edgectl --help`` stays fast.
"""

from __future__ import annotations

import typer

from edgesdk import __version__

__all__ = ["app", "main"]

app = typer.Typer(
    name="edgectl",
    help="edgesdk: fire-safety edge gateway, device emulators, provisioning and verification.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"edgectl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """edgesdk command line."""


def _register() -> None:
    from edgesdk.cli.decode import decode
    from edgesdk.cli.verify import verify
    from emulators.cli import app as emulate_app
    from gateway.cli import app as gateway_app
    from gateway.demo.cli import demo
    from provisioning.cli import app as provision_app

    app.command("decode")(decode)
    app.command("verify")(verify)
    app.add_typer(emulate_app, name="emulate")
    app.add_typer(provision_app, name="provision")
    app.add_typer(gateway_app, name="gateway")
    app.command("demo")(demo)


_register()


def main() -> None:
    """Console-script entry point."""
    app()
