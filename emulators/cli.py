"""``edgectl emulate ...``: one command per emulator, each in its own package."""

from __future__ import annotations

import typer

from emulators.beacons.cli import beacons
from emulators.broker.cli import broker
from emulators.cameras.cli import cameras
from emulators.panel.cli import panel

__all__ = ["app"]

app = typer.Typer(
    help="Run emulated devices (panels, beacons, cameras) and an MQTT broker.", no_args_is_help=True
)
app.command("panel")(panel)
app.command("beacons")(beacons)
app.command("cameras")(cameras)
app.command("broker")(broker)
