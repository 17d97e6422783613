"""``provision device|check``: the device list of gateway.toml, and the readiness check."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from provisioning.cli_common import JsonFlag

__all__ = ["register"]

device_app = typer.Typer(
    help="Edit the devices of gateway.toml (comments and layout are kept).", no_args_is_help=True
)
Config = Annotated[
    Path, typer.Option("--config", help="The gateway's gateway.toml.", dir_okay=False)
]
Name = Annotated[str, typer.Option("--name", help="Device name (A-Z a-z 0-9 - . _).")]


def _brief(options: dict[str, Any]) -> str:
    import json

    return ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in options.items())


@device_app.command("add")
def device_add(
    config: Config,
    name: Name,
    driver: Annotated[str, typer.Option("--driver", help="modbus-panel, beacon-serial, ...")],
    option: Annotated[
        list[str] | None,
        typer.Option("--option", "-o", help="Driver option KEY=VALUE (repeatable; TOML values)."),
    ] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Add it switched off.")] = False,
    expected_interval: Annotated[
        float | None,
        typer.Option("--expected-interval", min=0.001, help="Seconds of silence = offline."),
    ] = None,
    no_validate: Annotated[
        bool,
        typer.Option("--no-validate", help="Add even when the driver cannot be loaded."),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Add a device; validated by the gateway config and by the driver's own options."""
    from provisioning import ui
    from provisioning.configfile import ConfigFile, parse_option
    from provisioning.identity import check_name

    with ui.command("device add", as_json) as o:
        check_name(name, "device name", "--name")
        options: dict[str, Any] = {}
        for raw in option or []:
            path, value = parse_option(raw)
            target = options
            for part in path[:-1]:
                target = target.setdefault(part, {})
            target[path[-1]] = value
        table: dict[str, Any] = {"driver": driver}
        if disabled:
            table["enabled"] = False
        if expected_interval is not None:
            table["expected_interval"] = expected_interval
        table["options"] = options
        ConfigFile(config).add_device(name, table, check_driver=not no_validate)
        o.emit({"device": name, "driver": driver, "options": options, "validated": not no_validate})
        if not as_json:
            ui.out.print(f"[green]added[/] device {name!r} ({driver}) to {config}")
            if no_validate:
                ui.out.print("  options not checked by the driver (--no-validate)")


@device_app.command("remove")
def device_remove(config: Config, name: Name, as_json: JsonFlag = False) -> None:
    """Remove a device and its options."""
    from provisioning import ui
    from provisioning.configfile import ConfigFile

    with ui.command("device remove", as_json) as o:
        removed = ConfigFile(config).remove_device(name)
        o.emit({"device": name, "removed": removed})
        if not as_json:
            ui.out.print(f"[green]removed[/] device {name!r} from {config}")


@device_app.command("list")
def device_list(config: Config, as_json: JsonFlag = False) -> None:
    """List the devices of a gateway.toml."""
    from rich.table import Table

    from provisioning import ui
    from provisioning.configfile import ConfigFile

    with ui.command("device list", as_json) as o:
        cf = ConfigFile(config)
        cf.validate()
        devices = cf.devices()
        o.emit({"devices": devices})
        if not as_json:
            table = Table("name", "driver", "enabled", "options")
            for name, dev in devices.items():
                table.add_row(
                    name,
                    str(dev.get("driver", "")),
                    "yes" if dev.get("enabled", True) else "no",
                    _brief(dict(dev.get("options", {}))),
                )
            ui.out.print(table)


def check(
    config: Config,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, max=120, help="Seconds per network check.")
    ] = 3.0,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings fail too.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Check a gateway end to end: files, keys, chain, expiry, devices, broker."""
    from rich.markup import escape
    from rich.table import Table

    from provisioning import ui
    from provisioning.checks import Status, local_checks, network_checks

    with ui.command("check", as_json) as o:
        rows, cfg = local_checks(config)
        if cfg is not None:
            with o.progress() as bar:
                task = bar.add_task("probing devices and broker", total=len(cfg.devices) + 1)
                rows += network_checks(cfg, str(config), timeout, lambda _row: bar.advance(task))
        counts = {s: sum(1 for r in rows if r.status is s) for s in Status}
        failed = counts[Status.FAIL] > 0 or (strict and counts[Status.WARN] > 0)
        summary = {str(s): n for s, n in counts.items()}
        o.emit({"checks": [r.as_json() for r in rows], "summary": summary}, ok=not failed)
        if not as_json:
            style = {
                Status.PASS: "green",
                Status.WARN: "yellow",
                Status.FAIL: "bold red",
                Status.SKIP: "dim",
            }
            table = Table("check", "result", "detail", "fix")
            for r in rows:
                table.add_row(
                    escape(r.name),
                    f"[{style[r.status]}]{r.status.upper()}[/]",
                    escape(r.detail),
                    escape(r.fix),
                )
            ui.out.print(table)
            verdict = "[bold red]NOT READY[/]" if failed else "[bold green]READY[/]"
            ui.out.print(
                f"{verdict}: {counts[Status.PASS]} passed, {counts[Status.WARN]} warnings, "
                f"{counts[Status.FAIL]} failed, {counts[Status.SKIP]} skipped"
            )
        if failed:
            raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Attach these commands to the ``provision`` group."""
    app.add_typer(device_app, name="device")
    app.command("check")(check)
