"""``edgectl provision``: the installer's command line.

Every command takes ``--json`` and exits with a documented code (see
:class:`provisioning.errors.ExitCode` and ``docs/installer-guide.md``).
"""

from __future__ import annotations

import typer

from provisioning import cli_bundle, cli_devices, cli_pki, cli_scan

__all__ = ["app"]

app = typer.Typer(
    help="Provision a site: CA, gateway identity, certificates, devices, checks, bundles.",
    no_args_is_help=True,
)
cli_pki.register(app)
cli_devices.register(app)
cli_bundle.register(app)
cli_scan.register(app)
