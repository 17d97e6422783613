"""A profile's register map computed on demand from its block arithmetic.

A profile describes its registers as a few runs ("areas"): the detector and module words
of each loop, the zone words, the panel registers, the analog values of each loop. A
Notifier-style map lays out 10 loops (6,465 registers) while a site usually polls one or
two, and one gateway may hold several profiles, so :class:`RegisterMap` keeps only the
areas (a few dozen small objects) and builds a :class:`~.layout.Register` the first time
it is looked up (then cached: the emulator looks the same registers up on every change).
Iterating it walks every register, so a caller that iterates holds the whole map, as an
eager dict would (the tests compare it with such a plain walk, ``tests/emulators/regmap_walk.py``).

Overlaps and runs past the end of a table are refused when the map is made (at profile
load), with the same :class:`~edgesdk.errors.ConfigError` as the eager walk: the first
clashing register in the order the profile's keys are laid out, naming the key.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar, overload

from drivers.modbus_panel.profiles.layout import (
    BlockKind,
    Location,
    PointAddress,
    PointKind,
    Register,
    Role,
)
from drivers.modbus_panel.profiles.schema import (
    ProfileData,
    Table,
    last_address,
    parse_register,
    register_number,
)
from edgesdk.errors import ConfigError

__all__ = ["RegisterMap"]

_Key = tuple[Table, int]
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class _Area:
    """Consecutive registers laid out by one profile key.

    ``per`` is the points (zones) per word, or the channels per analog slot; ``used`` the
    slots (zones) in use, fields beyond it are None; ``loop`` 0 for registers on no loop.
    """

    key: str
    table: Table
    start: int
    count: int
    role: Role
    loop: int = 0
    kind: PointKind = PointKind.DETECTOR
    per: int = 1
    used: int = 0
    name: str = ""

    @property
    def stop(self) -> int:
        return self.start + self.count

    def register(self, address: int) -> Register:
        """The register at ``address`` (inside the area), as the eager walk builds it."""
        i, role, table = address - self.start, self.role, self.table
        if role is Role.POINT:
            loop, kind, used = self.loop, self.kind, self.used
            slots = range(i * self.per + 1, i * self.per + self.per + 1)
            points = tuple(PointAddress(loop, kind, s) if s <= used else None for s in slots)
            return Register(table, address, role, points=points)
        if role is Role.ZONE:
            zones = range(i * self.per + 1, i * self.per + self.per + 1)
            return Register(
                table, address, role, zones=tuple(z if z <= self.used else None for z in zones)
            )
        if role is Role.ANALOG:
            slot, channel = divmod(i, self.per)
            point = PointAddress(self.loop, PointKind.DETECTOR, slot + 1)
            return Register(table, address, role, points=(point,), channel=channel)
        return Register(table, address, role, name=self.name)


def _at(base: int, offset: int) -> tuple[Table, int]:
    """Table and PDU address ``offset`` registers after register number ``base``."""
    table, address = parse_register(base)
    return table, address + offset


def _areas(data: ProfileData) -> Iterator[tuple[int, _Area]]:
    """(base register number, area) in the order the eager walk lays registers out."""
    per = 8 if data.encoding.kind == "bits2" else 1
    loops = range(1, data.points.loops + 1)
    blocks = [(PointKind.DETECTOR, data.points.detector)]
    if data.points.module is not None:
        blocks.append((PointKind.MODULE, data.points.module))
    for kind, blk in blocks:
        key, words = f"points.{kind}.base", -(-blk.slots // per)
        for loop in loops:
            table, start = _at(blk.base, (loop - 1) * blk.loop_stride)
            area = _Area(key, table, start, words, Role.POINT, loop, kind, per, blk.slots)
            yield blk.base, area
    if data.zones is not None:
        z = data.zones
        table, start = _at(z.base, 0)
        area = _Area(
            "zones.base", table, start, -(-z.count // per), Role.ZONE, per=per, used=z.count
        )
        yield z.base, area
    singles: list[tuple[str, int | None, Role, str]] = [
        ("panel.status", data.panel.status, Role.PANEL_STATUS, ""),
        ("panel.heartbeat", data.panel.heartbeat, Role.HEARTBEAT, ""),
    ]
    for name, number in data.panel.counters.model_dump().items():
        singles.append((f"panel.counters.{name}", number, Role.COUNTER, name))
    if data.commands is not None:
        singles.append(("commands.register", data.commands.address, Role.COMMAND, ""))
    for key, single, role, name in singles:
        if single is not None:
            table, start = _at(single, 0)
            yield single, _Area(key, table, start, 1, role, name=name)
    if data.analog is not None:
        a, n = data.analog, len(data.analog.channels)
        for loop in loops:
            table, start = _at(a.base, (loop - 1) * a.loop_stride)
            area = _Area(
                "analog.base", table, start, a.slots * n, Role.ANALOG, loop, per=n, used=a.slots
            )
            yield a.base, area


def _check(placed: list[_Area], base: int, new: _Area, file: str | None) -> None:
    """ConfigError at the first register of ``new`` past the end of its table or already
    used by an area placed before it (the register the eager walk would stop at)."""
    last = last_address(base)
    over = max(new.start, last + 1) if new.stop - 1 > last else None
    clash: int | None = None
    owner = ""
    for old in placed:
        if old.table is new.table and old.start < new.stop and new.start < old.stop:
            first = max(old.start, new.start)
            if clash is None or first < clash:
                clash, owner = first, old.key
    if over is not None and (clash is None or over <= clash):
        raise ConfigError(
            f"the block runs past the last register ({register_number(new.table, last)})",
            file=file,
            key=new.key,
            fix="move the block down, or use fewer loops or slots",
        )
    if clash is not None:
        raise ConfigError(
            f"register {register_number(new.table, clash)} is also used by {owner}",
            file=file,
            key=new.key,
            fix="move one of the two so the blocks do not overlap",
        )


class RegisterMap(Mapping[_Key, Register]):
    """Every mapped register of a profile, keyed by (table, PDU address), computed on
    demand (see the module doc)."""

    def __init__(self, data: ProfileData, *, file: str | None = None) -> None:
        placed: list[_Area] = []
        for base, area in _areas(data):
            _check(placed, base, area, file)
            placed.append(area)
        self._areas = placed  # in layout order (iteration order)
        self._starts: dict[Table, list[int]] = {}
        self._sorted: dict[Table, list[_Area]] = {}
        for table in Table:
            mine = sorted((a for a in placed if a.table is table), key=lambda a: a.start)
            self._sorted[table] = mine
            self._starts[table] = [a.start for a in mine]
        self._points = {(a.kind, a.loop): a for a in placed if a.role is Role.POINT}
        self._cache: dict[_Key, Register] = {}

    # -- the Mapping ------------------------------------------------------------------------
    def _area(self, table: Table, address: int) -> _Area | None:
        starts = self._starts.get(table)
        if not starts or not isinstance(address, int):
            return None
        i = bisect.bisect_right(starts, address) - 1
        if i < 0:
            return None
        area = self._sorted[table][i]
        return area if address < area.stop else None

    def __getitem__(self, key: _Key) -> Register:
        reg = self._cache.get(key)
        if reg is not None:
            return reg
        try:
            table, address = key
        except (TypeError, ValueError):
            raise KeyError(key) from None
        area = self._area(table, address)
        if area is None:
            raise KeyError(key)
        reg = self._cache[(area.table, address)] = area.register(address)
        return reg

    @overload
    def get(self, key: _Key, /) -> Register | None: ...
    @overload
    def get(self, key: _Key, default: Register, /) -> Register: ...
    @overload
    def get(self, key: _Key, default: _T, /) -> Register | _T: ...

    def get(self, key: _Key, default: object = None, /) -> object:
        """As :meth:`dict.get` (one dict look-up once the register was built)."""
        reg = self._cache.get(key)
        if reg is not None:
            return reg
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        if key in self._cache:
            return True
        if not isinstance(key, tuple) or len(key) != 2:
            return False
        return self._area(*key) is not None

    def __iter__(self) -> Iterator[_Key]:
        for area in self._areas:
            table = area.table
            for address in range(area.start, area.stop):
                yield table, address

    def __len__(self) -> int:
        return sum(a.count for a in self._areas)

    def __repr__(self) -> str:
        return f"<RegisterMap: {len(self)} registers, {len(self._cache)} built>"

    # -- arithmetic the profile uses ------------------------------------------------------
    def run(self, table: Table, start: int, count: int) -> tuple[Register | None, ...]:
        """The registers at ``count`` addresses from ``start`` (None where nothing is
        mapped), built for the caller to keep: they are not added to the look-up cache
        (one held by the caller is enough), registers already cached are reused."""
        out: list[Register | None] = []
        cache = self._cache
        for address in range(start, start + count):
            reg = cache.get((table, address))
            if reg is None and (area := self._area(table, address)) is not None:
                reg = area.register(address)
            out.append(reg)
        return tuple(out)

    def addresses(self, table: Table, kind: BlockKind, loops: int | None = None) -> list[int]:
        """Sorted addresses of ``table`` holding ``kind`` registers (point and analog
        registers of loops up to ``loops`` only), without building a register."""
        out: list[int] = []
        for area in self._sorted[table]:
            area_kind = Register(table, area.start, area.role).kind  # the role decides
            if area_kind is kind and (loops is None or area.loop <= loops):
                out.extend(range(area.start, area.stop))
        return out

    def locate(self, point: PointAddress) -> Location | None:
        """The register and field index of a point; None if the map has no such point."""
        area = self._points.get((point.kind, point.loop))
        if area is None or not 1 <= point.slot <= area.used:
            return None
        field, index = divmod(point.slot - 1, area.per)
        return Location(area.table, area.start + field, index)
