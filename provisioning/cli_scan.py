"""``provision scan modbus|serial``: find panels and beacon receivers on site."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from provisioning.cli_common import JsonFlag

if TYPE_CHECKING:
    from provisioning.scan import ModbusTarget, UnitFound

__all__ = ["register"]

scan_app = typer.Typer(
    help="Find devices: panels on Modbus, beacon receivers on serial.", no_args_is_help=True
)


def _add_found(
    config: Path, target: ModbusTarget, found: list[UnitFound], prefix: str, validate: bool
) -> list[dict[str, Any]]:
    """One modbus-panel device per profile found on the bus, with all its unit ids."""
    from provisioning.configfile import ConfigFile

    added: list[dict[str, Any]] = []
    by_profile: dict[str, list[int]] = {}
    for f in found:
        if f.profile is None:
            added.append(
                {
                    "device": None,
                    "units": [f.unit],
                    "added": False,
                    "reason": "no profile identified",
                }
            )
        else:
            by_profile.setdefault(f.profile, []).append(f.unit)
    for profile, units in by_profile.items():
        name = f"{prefix}{units[0]}"
        cf = ConfigFile(config)
        if name in cf.devices():
            added.append(
                {"device": name, "units": units, "added": False, "reason": "a device has this name"}
            )
            continue
        options = {"url": target.url, "profile": profile, "units": units}
        cf.add_device(name, {"driver": "modbus-panel", "options": options}, check_driver=validate)
        added.append({"device": name, "units": units, "added": True, "options": options})
    return added


@scan_app.command("modbus")
def scan_modbus_cmd(
    url: Annotated[
        str, typer.Option("--url", help="tcp://HOST:PORT or rtu:///dev/ttyUSB0?baudrate=19200")
    ],
    units: Annotated[
        str, typer.Option("--units", help="Unit ids, e.g. 1-247 or 1,2,5-8.")
    ] = "1-247",
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.05, max=10, help="Seconds to wait per request.")
    ] = 0.3,
    add: Annotated[bool, typer.Option("--add", help="Add what was found to --config.")] = False,
    config: Annotated[
        Path | None, typer.Option("--config", help="gateway.toml to add devices to.")
    ] = None,
    prefix: Annotated[
        str, typer.Option("--name-prefix", help="Device name: PREFIX<first unit id>.")
    ] = "panel",
    no_validate: Annotated[
        bool, typer.Option("--no-validate", help="Add even without a loadable driver.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Which unit ids answer, and which panel profile each one speaks."""
    import asyncio

    from rich.table import Table

    from edgesdk.errors import ConfigError
    from provisioning import ui
    from provisioning.scan import parse_modbus_url, parse_units, scan_modbus

    with ui.command("scan modbus", as_json) as o:
        target = parse_modbus_url(url)
        ids = parse_units(units)
        if add and config is None:
            raise ConfigError("--add needs --config", fix="give --config gateway.toml")
        count = {"found": 0}
        with o.progress() as bar:
            task = bar.add_task(f"scanning {url}", total=len(ids))

            def step(unit: int, present: bool) -> None:
                count["found"] += present
                bar.update(task, advance=1, description=f"unit {unit}: {count['found']} found")

            found = asyncio.run(scan_modbus(target, ids, timeout, step))
        added = _add_found(config, target, found, prefix, not no_validate) if add and config else []
        o.emit(
            {
                "url": url,
                "units_scanned": len(ids),
                "found": [
                    {
                        "unit": f.unit,
                        "profile": f.profile,
                        "method": f.method,
                        "detail": f.detail,
                        "candidates": f.candidates,
                    }
                    for f in found
                ],
                "added": added,
            },
            ok=bool(found),
        )
        if not as_json:
            table = Table("unit", "profile", "identified by", "detail")
            for f in found:
                table.add_row(str(f.unit), f.profile or "[yellow]unknown[/]", f.method, f.detail)
            ui.out.print(table)
            ui.out.print(f"{len(found)} of {len(ids)} unit ids answered on {url}")
            for a in added:
                state = "[green]added[/]" if a["added"] else f"[yellow]skipped[/] ({a['reason']})"
                units = ", ".join(map(str, a["units"]))
                ui.out.print(f"  {a['device'] or 'unit'} (units {units}): {state}")
            if found and not add:
                ui.out.print("  add them with --add --config gateway.toml")
        if not found:
            raise typer.Exit(1)


@scan_app.command("serial")
def scan_serial_cmd(
    port: Annotated[
        list[str] | None,
        typer.Option("--port", help="Also listen on this port (a pty, e.g. /dev/pts/3)."),
    ] = None,
    seconds: Annotated[
        float, typer.Option("--seconds", min=0.2, max=60, help="How long to listen per port.")
    ] = 2.5,
    baudrate: Annotated[int, typer.Option("--baudrate", help="Line speed.")] = 115200,
    as_json: JsonFlag = False,
) -> None:
    """List serial ports and listen on each for a beacon receiver's frames."""
    from rich.table import Table

    from provisioning import ui
    from provisioning.scan import list_serial_ports, probe_serial_ports

    with ui.command("scan serial", as_json) as o:
        ports = list_serial_ports()
        known = {p for p, _ in ports}
        ports += [(p, "given with --port") for p in port or [] if p not in known]
        with o.progress() as bar:
            task = bar.add_task(f"listening {seconds:g}s on {len(ports)} ports", total=len(ports))
            results = probe_serial_ports(ports, seconds, baudrate, lambda _r: bar.advance(task))
        receivers = [r for r in results if r.is_receiver]
        o.emit({"ports": [r.as_json() for r in results]}, ok=bool(receivers))
        if not as_json:
            table = Table("port", "description", "result", "frames", "beacons", "receiver")
            for r in results:
                if not r.opened:
                    verdict = f"[red]cannot open[/]: {r.error}"
                elif r.is_receiver:
                    verdict = "[green]beacon receiver[/]"
                else:
                    verdict = f"no frames ({r.bytes} bytes)" + (f", {r.error}" if r.error else "")
                frames = ", ".join(f"{k} {v}" for k, v in sorted(r.frames.items()))
                status = (
                    (
                        f"up {r.receiver['uptime']}s, {r.receiver['frames_received']} frames, "
                        f"noise {r.receiver['noise_floor']} dBm"
                    )
                    if r.receiver
                    else ""
                )
                table.add_row(r.port, r.description, verdict, frames, str(len(r.beacons)), status)
            ui.out.print(table)
            for r in receivers:
                ui.out.print(
                    f"  add it: edgectl provision device add --config gateway.toml "
                    f"--name beacons --driver beacon-serial --option port={r.port}"
                )
        if not receivers:
            raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Attach these commands to the ``provision`` group."""
    app.add_typer(scan_app, name="scan")
