"""What ``write(point, value)`` asks for, as register writes: parsing only, no I/O.

Panel commands: ``write("reset", True)`` (every unit) or ``write("u2/reset", True)``;
``silence`` and ``acknowledge`` alike. Point commands: ``write("u1/l1/d005", "disable")``
with ``disable``, ``enable``, ``ack`` or ``acknowledge`` (``l1/d005`` when the driver has
one unit). The profile says where each goes; what it does not define is refused with a
:class:`~edgesdk.errors.CommandError`, before anything is sent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from drivers.modbus_panel.profile import (
    PanelCommand,
    PointAddress,
    PointCommand,
    PointKind,
    Profile,
)
from edgesdk.errors import CommandError
from edgesdk.model import Value

__all__ = ["RegisterWrite", "parse_command"]

_PANEL_RE = re.compile(r"^(?:u(\d{1,3})/)?([a-z]+)$")
_POINT_RE = re.compile(r"^(?:u(\d{1,3})/)?l(\d{1,2})/([dm])(\d{1,3})$")
_POINT_VALUES = {
    "disable": PointCommand.DISABLE,
    "enable": PointCommand.ENABLE,
    "ack": PointCommand.ACKNOWLEDGE,
    "acknowledge": PointCommand.ACKNOWLEDGE,
}


@dataclass(frozen=True, slots=True)
class RegisterWrite:
    """One FC06 write: ``value`` to holding register ``address`` of ``unit``."""

    unit: int
    address: int
    value: int
    what: str  # for messages: "reset", "disable L1D005"


def parse_command(
    point: str, value: Value, profile: Profile, units: Sequence[int]
) -> list[RegisterWrite]:
    """The writes ``write(point, value)`` means; CommandError for anything else."""
    m = _POINT_RE.match(point)
    if m is not None:
        unit = _unit(m.group(1), units, point)
        kind = PointKind.DETECTOR if m.group(3) == "d" else PointKind.MODULE
        address = PointAddress(int(m.group(2)), kind, int(m.group(4)))
        if not isinstance(value, str) or value.lower() not in _POINT_VALUES:
            raise CommandError(
                f"point {point!r} takes one of {', '.join(_POINT_VALUES)} (got {value!r})"
            )
        command = _POINT_VALUES[value.lower()]
        register, word = profile.point_command_write(address, command)
        return [RegisterWrite(unit, register, word, f"{command.value} {address.label}")]
    m = _PANEL_RE.match(point)
    names = ", ".join(c.value for c in PanelCommand)
    if m is None or m.group(2) not in {c.value for c in PanelCommand}:
        raise CommandError(
            f"unknown command target {point!r}; use {names} (optionally u<unit>/...), "
            "or a point such as u1/l1/d005 with disable, enable or ack"
        )
    if value is not True and not (type(value) is int and value == 1):
        raise CommandError(f"{point!r} runs when written True (got {value!r})")
    panel_command = PanelCommand(m.group(2))
    register, word = profile.command_write(panel_command)
    targets = [_unit(m.group(1), units, point)] if m.group(1) else list(units)
    return [RegisterWrite(u, register, word, panel_command.value) for u in targets]


def _unit(text: str | None, units: Sequence[int], point: str) -> int:
    if text is None:
        if len(units) == 1:
            return units[0]
        raise CommandError(
            f"{point!r}: name the unit (u<unit>/...), this driver polls {list(units)}"
        )
    unit = int(text)
    if unit not in units:
        raise CommandError(
            f"{point!r}: unit {unit} is not polled by this driver (units {list(units)})"
        )
    return unit
