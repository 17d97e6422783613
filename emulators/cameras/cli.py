"""``edgectl emulate cameras``: Frigate, Axis and generic cameras publishing to a broker."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["cameras"]


def cameras(
    broker: str = typer.Option(
        "mqtt://127.0.0.1:1883", "--broker", help="Broker URL (mqtt://host:port)."
    ),
    scenario: str = typer.Option(
        "quiet", "--scenario", help="idle, quiet, smoke-in-lobby or camera-offline."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Random seed (same seed, same run)."),
    time_scale: float = typer.Option(
        1.0, "--time-scale", help="Scenario speed-up: 10 runs ten times faster."
    ),
    fault: Annotated[
        list[str] | None,
        typer.Option(
            "--fault",
            help="Fault to inject every few seconds (repeatable): malformed-json, "
            "wrong-types, oversize, flood.",
        ),
    ] = None,
    duration: float | None = typer.Option(
        None, "--duration", help="Seconds to run (default: until Ctrl-C or SIGTERM)."
    ),
) -> None:
    """Emulate IP cameras over MQTT; prints one JSON line (broker, topics, cameras)."""
    from edgesdk.errors import EdgeError
    from emulators.cameras.emulator import CameraEmulator
    from emulators.cameras.model import Fault
    from emulators.runner import run

    try:
        faults = [Fault(f) for f in fault or ()]
    except ValueError:
        typer.echo(f"error: --fault must be among {', '.join(f.value for f in Fault)}", err=True)
        raise typer.Exit(2) from None
    try:
        emulator = CameraEmulator(
            broker_url=broker, scenario=scenario, seed=seed, time_scale=time_scale, faults=faults
        )
        run(emulator, CameraEmulator.info, duration=duration)
    except EdgeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
