"""``edgectl emulate panel``: fire alarm panels over Modbus TCP and RTU on a pty.

Prints one JSON line (tcp host/port, rtu pty path, units, profile, scenario), then serves
until ``--duration`` passes or SIGINT/SIGTERM arrives (exit code 0). With ``--control``,
JSON control lines on stdin drive it (see ``emulators.panel.control``), one JSON reply per
line on stdout. Heavy imports (pymodbus, the model) happen inside the command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["panel"]


def panel(
    host: Annotated[
        str, typer.Option(help="TCP address to listen on (loopback by default).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="TCP port; 0 picks a free one (printed in the JSON line).")
    ] = 0,
    tcp: Annotated[bool, typer.Option("--tcp/--no-tcp", help="Serve Modbus TCP.")] = True,
    rtu: Annotated[
        bool, typer.Option("--rtu/--no-rtu", help="Serve Modbus RTU on a new pty.")
    ] = True,
    link: Annotated[
        Path | None, typer.Option(help="Also make a stable symlink to the pty here.")
    ] = None,
    units: Annotated[int, typer.Option(min=1, max=247, help="Panels, as unit ids 1..N.")] = 1,
    profile: Annotated[
        str, typer.Option(help="Register map: a bundled name or a .toml.")
    ] = "notifier-gw",
    scenario: Annotated[str, typer.Option(help="quiet, fire-drill or fault-storm.")] = "quiet",
    time_scale: Annotated[
        float, typer.Option(min=0.0, help="Emulated seconds per second; 0 stops.")
    ] = 1.0,
    seed: Annotated[int, typer.Option(help="Same seed, same run.")] = 0,
    duration: Annotated[
        float | None, typer.Option(min=0.0, help="Seconds to run (default: ever).")
    ] = None,
    loops: Annotated[
        int | None, typer.Option(min=1, help="Loops per panel (default 2, or what fits).")
    ] = None,
    detectors: Annotated[
        int | None, typer.Option(min=1, help="Detectors per loop (default 20, or what fits).")
    ] = None,
    modules: Annotated[
        int | None, typer.Option(min=0, help="Modules per loop (default 10, or what fits).")
    ] = None,
    control: Annotated[
        bool, typer.Option("--control", help="Read JSON control lines on stdin.")
    ] = False,
) -> None:
    """Emulated fire alarm panels (Notifier / GST style register maps) over Modbus."""
    from edgesdk.errors import EdgeError
    from emulators.panel.emulator import PanelEmulator
    from emulators.panel.stdin import with_stdin_control
    from emulators.runner import run

    try:
        emulator = PanelEmulator(
            units=units,
            profile=Path(profile) if profile.endswith(".toml") else profile,
            tcp=(host, port) if tcp else None,
            rtu=rtu,
            link=link,
            scenario=scenario,
            seed=seed,
            time_scale=time_scale,
            loops=loops,
            detectors=detectors,
            modules=modules,
        )
    except EdgeError as exc:
        typer.echo(f"edgectl emulate panel: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        run(with_stdin_control(emulator, enabled=control), PanelEmulator.info, duration=duration)
    except (EdgeError, OSError) as exc:
        typer.echo(f"edgectl emulate panel: {exc}", err=True)
        raise typer.Exit(1) from exc
