"""JSON control lines: drive a running emulator from a test rig (``--control`` on the CLI).

One JSON object per line in, one JSON object per line out::

    {"cmd": "set_point", "unit": 1, "loop": 1, "point": 3, "alarm": "fire"}
    -> {"ok": true, "cmd": "set_point"}
    {"cmd": "nonsense"}
    -> {"ok": false, "error": "cmd: ..."}

Commands mirror :class:`~emulators.panel.emulator.PanelEmulator`'s control API; every
line is validated (:mod:`edgesdk.configmodel`) before anything changes, so a bad line
changes nothing.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from drivers.modbus_panel.profile import PANEL_FLAGS, PanelCommand, PointCommand, PointKind
from edgesdk.config import ConfigModel, Field, ValidationError, validate_as
from edgesdk.errors import EdgeError
from emulators.panel.emulator import PanelEmulator
from emulators.panel.store import FaultKind

__all__ = ["Control", "handle_line"]

Unit = Annotated[int, Field(ge=1, le=247)]


class SetPoint(ConfigModel):
    cmd: Literal["set_point"]
    unit: Unit = 1
    loop: int
    point: int
    kind: PointKind = PointKind.DETECTOR
    alarm: Literal["none", "fire", "co", "supervisory", "non-fire"] | None = None
    prealarm: bool | None = None
    trouble: bool | None = None
    disabled: bool | None = None
    present: bool | None = None


class SetAnalog(ConfigModel):
    cmd: Literal["set_analog"]
    unit: Unit = 1
    loop: int
    point: int
    value: float | None


class SetDrift(ConfigModel):
    cmd: Literal["set_drift"]
    unit: Unit = 1
    loop: int
    point: int
    per_hour: float


class SetPanelFlag(ConfigModel):
    cmd: Literal["set_panel_flag"]
    unit: Unit = 1
    flag: str
    value: bool


class LoopFault(ConfigModel):
    cmd: Literal["loop_fault"]
    unit: Unit = 1
    loop: int
    value: bool


class Command(ConfigModel):
    cmd: Literal["command"]
    unit: Unit = 1
    command: PanelCommand


class PointCmd(ConfigModel):
    cmd: Literal["point_command"]
    unit: Unit = 1
    loop: int
    point: int
    kind: PointKind = PointKind.DETECTOR
    command: PointCommand


class Fault(ConfigModel):
    cmd: Literal["fault"]
    unit: Unit = 1
    kind: FaultKind
    code: int = 4
    delay: float = Field(default=0.5, ge=0, le=60)
    count: int | None = Field(default=None, ge=1)


class ClearFault(ConfigModel):
    cmd: Literal["clear_fault"]
    unit: Unit = 1


class DropConnections(ConfigModel):
    cmd: Literal["drop_connections"]


class Advance(ConfigModel):
    cmd: Literal["advance"]
    ticks: int = Field(default=1, ge=1, le=100_000)


class Counters(ConfigModel):
    cmd: Literal["counters"]


class State(ConfigModel):
    cmd: Literal["state"]
    unit: Unit = 1


Control = Annotated[
    SetPoint
    | SetAnalog
    | SetDrift
    | SetPanelFlag
    | LoopFault
    | Command
    | PointCmd
    | Fault
    | ClearFault
    | DropConnections
    | Advance
    | Counters
    | State,
    Field(discriminator="cmd"),
]


def handle_line(emu: PanelEmulator, line: str) -> dict[str, Any]:
    """Apply one control line; the reply never raises (errors become ``ok: false``)."""
    try:
        msg: Control = validate_as(Control, json.loads(line), title="control line")
    except json.JSONDecodeError as exc:
        return {"ok": False, "error": f"not JSON: {exc}"}
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        return {"ok": False, "error": f"{where}: {err['msg']}"}
    try:
        result = _apply(emu, msg)
    except EdgeError as exc:
        return {"ok": False, "cmd": msg.cmd, "error": str(exc)}
    return {"ok": True, "cmd": msg.cmd, **result}


def _apply(emu: PanelEmulator, msg: Control) -> dict[str, Any]:
    if isinstance(msg, SetPoint):
        emu.set_point(
            msg.unit,
            msg.loop,
            msg.point,
            kind=msg.kind,
            alarm=msg.alarm,
            prealarm=msg.prealarm,
            trouble=msg.trouble,
            disabled=msg.disabled,
            present=msg.present,
        )
    elif isinstance(msg, SetAnalog):
        emu.set_analog(msg.unit, msg.loop, msg.point, msg.value)
    elif isinstance(msg, SetDrift):
        emu.set_drift(msg.unit, msg.loop, msg.point, msg.per_hour)
    elif isinstance(msg, SetPanelFlag):
        emu.set_panel_flag(msg.unit, msg.flag, msg.value)
    elif isinstance(msg, LoopFault):
        emu.set_loop_fault(msg.unit, msg.loop, msg.value)
    elif isinstance(msg, Command):
        emu.command(msg.unit, msg.command)
    elif isinstance(msg, PointCmd):
        emu.point_command(msg.unit, msg.loop, msg.point, msg.command, kind=msg.kind)
    elif isinstance(msg, Fault):
        emu.set_fault(msg.unit, msg.kind, code=msg.code, delay=msg.delay, count=msg.count)
    elif isinstance(msg, ClearFault):
        emu.clear_fault(msg.unit)
    elif isinstance(msg, DropConnections):
        return {"dropped": emu.drop_connections()}
    elif isinstance(msg, Advance):
        emu.advance(msg.ticks)
    elif isinstance(msg, Counters):
        return {"counters": emu.counters()}
    else:
        return {"state": _state(emu, msg.unit)}
    return {}


def _state(emu: PanelEmulator, unit: int) -> dict[str, Any]:
    panel = emu.panel(unit)
    status = panel.panel_status()
    off_normal = {
        p.address.label: {
            "alarm": p.alarm.value,
            "prealarm": p.prealarm,
            "trouble": p.trouble,
            "disabled": p.disabled,
        }
        for p in panel.points.values()
        if p.alarm.value != "none" or p.prealarm or p.trouble or p.disabled
    }
    return {
        "ticks": panel.ticks,
        "panel": {f: getattr(status, f) for f in PANEL_FLAGS},
        "counters": dict(panel.counters),
        "points": off_normal,
        "scenario": [list(e) for e in emu.scenarios[unit].log],
    }
