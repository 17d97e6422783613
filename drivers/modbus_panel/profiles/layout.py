"""From a profile file to its register map: which register holds what, and the reads.

:class:`Register` is one mapped register with its role (point word, zone word, panel
status, heartbeat, counter, command, analog value); a loaded profile's map of them is
computed on demand (:class:`~.regmap.RegisterMap`). :func:`coalesce` turns sorted
addresses into the fewest reads that never cross an unmapped address (which would answer
Modbus exception 02).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from drivers.modbus_panel.profiles.schema import (
    Table,
    register_number,
)

__all__ = [
    "Block",
    "BlockKind",
    "Location",
    "PointAddress",
    "PointKind",
    "Register",
    "Role",
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
