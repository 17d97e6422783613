"""``edgectl``: the one command-line entry point.

Groups live beside the code they drive (``emulators.cli``, ``gateway.cli``,
``provisioning.cli``) and import their heavy dependencies inside the commands, so
``edgectl --help`` stays fast.
"""

from __future__ import annotations

import sys

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


def _decode() -> None:
    from edgesdk.cli.decode import decode

    app.command("decode")(decode)


def _verify() -> None:
    from edgesdk.cli.verify import verify

    app.command("verify")(verify)


def _emulate() -> None:
    from emulators.cli import app as emulate_app

    app.add_typer(emulate_app, name="emulate")


def _provision() -> None:
    from provisioning.cli import app as provision_app

    app.add_typer(provision_app, name="provision")


def _gateway() -> None:
    from gateway.cli import app as gateway_app

    app.add_typer(gateway_app, name="gateway")


def _demo() -> None:
    from gateway.demo.cli import demo

    app.command("demo")(demo)


# Each group is imported only when its command runs: the gateway process on a small box
# (``edgectl gateway run``) then does not carry the emulators, the provisioning CLI or the
# consumer in memory. ``edgectl --help`` (or an unknown command) registers them all.
_GROUPS = {
    "decode": _decode,
    "verify": _verify,
    "emulate": _emulate,
    "provision": _provision,
    "gateway": _gateway,
    "demo": _demo,
}


def _register(argv: list[str] | None = None) -> None:
    args = [a for a in (argv if argv is not None else sys.argv[1:]) if not a.startswith("-")]
    wanted = _GROUPS.get(args[0]) if args else None
    for name, register in _GROUPS.items():
        if wanted is None or register is wanted:
            register()
        del name


def main() -> None:
    """Console-script entry point."""
    _register()
    app()
