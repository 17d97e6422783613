"""``edgectl emulate beacons``: a beacon receiver with a simulated crew on a pty.

Prints one JSON line (pty path, link, beacon ids, scenario, seed), then runs until
``--duration`` passes or SIGINT/SIGTERM arrives, and exits 0. The emulator is imported inside
the command so ``edgectl --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["beacons"]


def beacons(
    crew: Annotated[int, typer.Option(help="Number of firefighters (beacons).")] = 4,
    scenario: Annotated[
        str,
        typer.Option(
            help="patrol, man-down, fall, distress, low-air, heat-stress or lost-contact."
        ),
    ] = "patrol",
    link: Annotated[
        Path | None, typer.Option(help="Stable symlink to the pty; it survives unplug/replug.")
    ] = None,
    time_scale: Annotated[float, typer.Option(help="Simulated seconds per wall second.")] = 1.0,
    seed: Annotated[int | None, typer.Option(help="Same seed, same frames.")] = None,
    duration: Annotated[
        float | None,
        typer.Option(help="Stop after this many wall seconds (default: until stopped)."),
    ] = None,
    event_at: Annotated[
        float, typer.Option(help="Simulated second at which the scenario's event happens.")
    ] = 10.0,
    victim: Annotated[int, typer.Option(help="Crew index the scenario happens to.")] = 0,
    pass_after: Annotated[
        float, typer.Option(help="Beacon PASS alarm after this many still seconds; 0: off.")
    ] = 30.0,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            metavar="FAULT=RATE",
            help="Per-frame fault probability, repeatable: noise, truncate, bad-crc, burst.",
        ),
    ] = None,
) -> None:
    """Emulate a USB beacon receiver (115200 8N1 on a pty) with a simulated crew."""
    from edgesdk.errors import EdgeError
    from emulators.beacons.emulator import BAUDRATE, BeaconEmulator
    from emulators.runner import run

    try:
        emu = BeaconEmulator(
            crew=crew,
            scenario=scenario,
            seed=seed,
            time_scale=time_scale,
            link=link,
            event_at=event_at,
            victim=victim,
            pass_alarm_after=pass_after if pass_after > 0 else None,
        )
        for spec in fault or []:
            name, sep, rate = spec.partition("=")
            try:
                value = float(rate) if sep else 1.0
            except ValueError:
                raise typer.BadParameter(
                    f"{spec!r}: RATE must be a number", param_hint="--fault"
                ) from None
            emu.set_fault_rate(name.strip(), value)
    except EdgeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None

    def info(e: BeaconEmulator) -> dict[str, Any]:
        return {
            "emulator": "beacons",
            "path": e.path,
            "device": e.device_path,
            "link": e.link,
            "baudrate": BAUDRATE,
            "beacons": e.beacon_ids,
            "scenario": e.scenario,
            "victim": e.victim,
            "seed": e.seed,
            "time_scale": e.time_scale,
        }

    run(emu, info, duration=duration)
