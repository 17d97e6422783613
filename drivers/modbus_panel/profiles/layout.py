"""From a profile file to its register map: which register holds what, and the reads.

:func:`build_register_map` walks every block a profile declares and lists each mapped
register with its role (point word, zone word, panel status, heartbeat, counter, command,
analog value), refusing overlaps and blocks that run off the end of a table with a
:class:`~edgesdk.errors.ConfigError` that names the key. A loaded profile holds the same
map computed on demand (:class:`~.regmap.RegisterMap`, tested equal to this plain walk,
which stays the reference and serves tools that want a dict). :func:`coalesce` turns
sorted addresses into the fewest reads that never cross an unmapped address (which would
answer Modbus exception 02).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from drivers.modbus_panel.profiles.schema import (
    ProfileData,
    Table,
    last_address,
    parse_register,
    register_number,
)
from edgesdk.errors import ConfigError

__all__ = [
    "Block",
    "BlockKind",
    "Location",
    "PointAddress",
    "PointKind",
    "Register",
    "Role",
    "build_register_map",
    "coalesce",
]


class PointKind(enum.StrEnum):
    DETECTOR = "detector"
    MODULE = "module"


class PointAddress(NamedTuple):
    """A device on a loop: ``PointAddress(1, PointKind.DETECTOR, 3)`` is ``L1D003``."""

    loop: int
    kind: PointKind
    slot: int

    @property
    def label(self) -> str:
        return f"L{self.loop}{'D' if self.kind is PointKind.DETECTOR else 'M'}{self.slot:03d}"


class Role(enum.StrEnum):
    """What a register holds."""

    POINT = "point"
    ZONE = "zone"
    PANEL_STATUS = "panel-status"
    HEARTBEAT = "heartbeat"
    COUNTER = "counter"
    COMMAND = "command"
    ANALOG = "analog"


class BlockKind(enum.StrEnum):
    """Status registers are polled every second or so, analog values every 5-10 s."""

    STATUS = "status"
    ANALOG = "analog"


_STATUS_ROLES = frozenset({Role.POINT, Role.ZONE, Role.PANEL_STATUS, Role.HEARTBEAT, Role.COUNTER})


@dataclass(frozen=True, slots=True)
class Register:
    """One mapped register. ``points``/``zones`` list what its word carries (``None`` for an
    unused 2-bit field); ``name`` is the counter name, ``channel`` the analog channel index."""

    table: Table
    address: int
    role: Role
    points: tuple[PointAddress | None, ...] = ()
    zones: tuple[int | None, ...] = ()
    name: str = ""
    channel: int = -1

    @property
    def kind(self) -> BlockKind | None:
        """Status or analog for the registers a driver polls; None for the command register."""
        if self.role is Role.ANALOG:
            return BlockKind.ANALOG
        return BlockKind.STATUS if self.role in _STATUS_ROLES else None

    @property
    def number(self) -> int:
        return register_number(self.table, self.address)


@dataclass(frozen=True, slots=True)
class Block:
    """One read request: function code (3 or 4), PDU start address, register count."""

    function: int
    address: int
    count: int
    kind: BlockKind

    @property
    def table(self) -> Table:
        return Table.HOLDING if self.function == 3 else Table.INPUT


@dataclass(frozen=True, slots=True)
class Location:
    """Where a point, zone or analog value sits: the register and the 2-bit field index
    (always 0 for one-word-per-point encodings)."""

    table: Table
    address: int
    index: int = 0

    @property
    def number(self) -> int:
        return register_number(self.table, self.address)


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


def coalesce(addrs: list[int], table: Table, kind: BlockKind, limit: int) -> Iterator[Block]:
    """Runs of consecutive addresses (sorted input), each at most ``limit`` long."""
    start = prev = -2
    for a in addrs:
        if a == prev + 1 and a - start < limit:
            prev = a
            continue
        if start >= 0:
            yield Block(table.read_function, start, prev - start + 1, kind)
        start = prev = a
    if start >= 0:
        yield Block(table.read_function, start, prev - start + 1, kind)
