"""The register map as a plain walk over a profile's declared blocks: the reference the
lazy :class:`~drivers.modbus_panel.profiles.regmap.RegisterMap` is tested against.

It lists every mapped register with its role, refusing overlaps and blocks that run off
the end of a table with a :class:`~edgesdk.errors.ConfigError` naming the key. It was the
map the driver used before the lazy one; it stays here, independent of it, so the tests
compare two ways of computing the same map.
"""

from __future__ import annotations

from collections.abc import Iterator

from drivers.modbus_panel.profiles.layout import PointAddress, PointKind, Register, Role
from drivers.modbus_panel.profiles.schema import (
    ProfileData,
    Table,
    last_address,
    parse_register,
    register_number,
)
from edgesdk.errors import ConfigError

__all__ = ["build_register_map"]

_Entry = tuple[str, int, int, Register]  # (config key, block base, register number, register)


def _entries(data: ProfileData) -> Iterator[_Entry]:
    """Every register a profile maps (table and address still to be filled in)."""
    per = 8 if data.encoding.kind == "bits2" else 1
    blocks = [(PointKind.DETECTOR, data.points.detector)]
    if data.points.module is not None:
        blocks.append((PointKind.MODULE, data.points.module))
    for kind, blk in blocks:
        for loop in range(1, data.points.loops + 1):
            for r in range(-(-blk.slots // per)):
                slots = range(r * per + 1, r * per + per + 1)
                pts = tuple(PointAddress(loop, kind, s) if s <= blk.slots else None for s in slots)
                number = blk.base + (loop - 1) * blk.loop_stride + r
                yield f"points.{kind}.base", blk.base, number, _r(Role.POINT, points=pts)
    if data.zones is not None:
        count = data.zones.count
        for r in range(-(-count // per)):
            zs = tuple(z if z <= count else None for z in range(r * per + 1, r * per + per + 1))
            yield "zones.base", data.zones.base, data.zones.base + r, _r(Role.ZONE, zones=zs)
    singles: list[tuple[str, int | None, Register]] = [
        ("panel.status", data.panel.status, _r(Role.PANEL_STATUS)),
        ("panel.heartbeat", data.panel.heartbeat, _r(Role.HEARTBEAT)),
    ]
    for name, number in data.panel.counters.model_dump().items():
        singles.append((f"panel.counters.{name}", number, _r(Role.COUNTER, name=name)))
    if data.commands is not None:
        singles.append(("commands.register", data.commands.address, _r(Role.COMMAND)))
    for key, single, reg in singles:
        if single is not None:
            yield key, single, single, reg
    if data.analog is not None:
        a, n = data.analog, len(data.analog.channels)
        for loop in range(1, data.points.loops + 1):
            for slot in range(1, a.slots + 1):
                p = PointAddress(loop, PointKind.DETECTOR, slot)
                for ch in range(n):
                    number = a.base + (loop - 1) * a.loop_stride + (slot - 1) * n + ch
                    yield "analog.base", a.base, number, _r(Role.ANALOG, points=(p,), channel=ch)


def _r(
    role: Role,
    *,
    points: tuple[PointAddress | None, ...] = (),
    zones: tuple[int | None, ...] = (),
    name: str = "",
    channel: int = -1,
) -> Register:
    """A register whose table and address :func:`build_register_map` fills in."""
    return Register(Table.HOLDING, -1, role, points, zones, name, channel)


def build_register_map(
    data: ProfileData, *, file: str | None = None
) -> dict[tuple[Table, int], Register]:
    """Every mapped register keyed by (table, PDU address); ConfigError on a clash."""
    out: dict[tuple[Table, int], Register] = {}
    owner: dict[tuple[Table, int], str] = {}
    for key, base, number, proto in _entries(data):
        table, address = parse_register(base)
        address += number - base
        if address > last_address(base):
            raise ConfigError(
                f"the block runs past the last register "
                f"({register_number(table, last_address(base))})",
                file=file,
                key=key,
                fix="move the block down, or use fewer loops or slots",
            )
        if (table, address) in out:
            raise ConfigError(
                f"register {register_number(table, address)} is also used by "
                f"{owner[(table, address)]}",
                file=file,
                key=key,
                fix="move one of the two so the blocks do not overlap",
            )
        out[(table, address)] = Register(
            table, address, proto.role, proto.points, proto.zones, proto.name, proto.channel
        )
        owner[(table, address)] = key
    return out
