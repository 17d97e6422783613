"""What one panel shows, turned into events and readings: sans-I/O, fed with register words.

:class:`UnitState` keeps the last words read for every block. A new read is compared with
them first (one list comparison, in C); only the registers whose word changed are decoded
through the profile, so a quiet panel costs no decoding and no allocation per register.
Conditions are tracked per occurrence: an ``active`` event is remembered until the
condition ends, and the ``cleared`` event reuses its id. Nothing is forgotten when the link
drops, so the first read after a reconnect reports exactly what changed meanwhile: new
conditions raised, ended ones cleared, ongoing ones not raised again.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from drivers.modbus_panel.profile import (
    Alarm,
    AnalogChannel,
    Block,
    PanelStatus,
    PointAddress,
    PointKind,
    PointStatus,
    Profile,
    Register,
    Role,
)
from drivers.modbus_panel.profiles.schema import FlagsEncoding
from edgesdk.model import (
    Event,
    EventKind,
    EventState,
    Item,
    RawItem,
    Reading,
    ReadingBlock,
    ReadingLayout,
    Severity,
)

__all__ = ["PANEL_EVENTS", "POINT_EVENTS", "UnitState", "point_token", "reading_name"]

POINT_EVENTS: dict[str, Severity] = {
    EventKind.FIRE: Severity.FIRE,
    EventKind.PREALARM: Severity.PREALARM,
    EventKind.SUPERVISORY: Severity.SUPERVISORY,
    EventKind.POINT_TROUBLE: Severity.TROUBLE,
    EventKind.POINT_DISABLED: Severity.TROUBLE,
}
"""Point event kinds and their severities."""

PANEL_EVENTS: dict[str, tuple[str, Severity]] = {
    "mains_fail": (EventKind.MAINS_FAIL, Severity.TROUBLE),
    "battery_fault": (EventKind.BATTERY_FAULT, Severity.TROUBLE),
    "earth_fault": (EventKind.EARTH_FAULT, Severity.TROUBLE),
    "silenced": (EventKind.SILENCED, Severity.INFO),
    "test_mode": (EventKind.PANEL_TEST, Severity.INFO),
}
"""Panel status flags that raise events: flag -> (kind, severity)."""

_FIRE_ALARMS = frozenset({Alarm.FIRE, Alarm.CO})
_OTHER_ALARMS = frozenset({Alarm.SUPERVISORY, Alarm.NON_FIRE, Alarm.OTHER})
_NO_ITEMS: list[Item] = []
# every_poll, per analog block: its reading layout; (word index, absent, signed, scale)
# per value; the analog keys; the word indexes when every value is a raw word (_ALL: all)
_Plan = tuple[
    ReadingLayout,
    list[tuple[int, int | None, bool, float]],
    list[tuple[PointAddress, int]],
    Sequence[int],
]
_ALL: Sequence[int] = range(1)  # a marker (compared by identity)


@functools.lru_cache(maxsize=256)
def _conditions(status: PointStatus) -> frozenset[str]:
    """The event kinds a point state holds active (few distinct states: memoised)."""
    if not status.present:
        return frozenset()
    out: set[str] = set()
    if status.alarm in _FIRE_ALARMS:
        out.add(EventKind.FIRE)
    elif status.alarm in _OTHER_ALARMS:
        out.add(EventKind.SUPERVISORY)
    if status.prealarm:
        out.add(EventKind.PREALARM)
    if status.trouble:
        out.add(EventKind.POINT_TROUBLE)
    if status.disabled:
        out.add(EventKind.POINT_DISABLED)
    return frozenset(out)


def point_token(point: PointAddress) -> str:
    """``d005`` for detector 5, ``m012`` for module 12 (as in reading names and commands)."""
    return f"{'d' if point.kind is PointKind.DETECTOR else 'm'}{point.slot:03d}"


def reading_name(unit: int, point: PointAddress, suffix: str) -> str:
    return f"u{unit}/l{point.loop}/{point_token(point)}/{suffix}"


def _by_severity(items: list[Item]) -> list[Item]:
    if len(items) > 1:
        items.sort(key=lambda i: i.severity.rank if isinstance(i, Event) else 99)
    return items


class UnitState:
    """The conditions and analog values of one panel (one unit id), from its words.

    ``zones`` maps points to zone numbers for the events' data (``point_zones``);
    ``deadbands`` is per channel index.
    """

    def __init__(
        self,
        unit: int,
        profile: Profile,
        source: str,
        *,
        zones: Mapping[PointAddress, int] | None = None,
        deadbands: Sequence[float] = (),
        every_poll: bool = False,
    ) -> None:
        self.unit = unit
        self.profile = profile
        self.source = source
        self.zones = dict(zones or {})
        self.heartbeat: int | None = None
        self.heartbeat_since = 0.0  # loop time the heartbeat last changed (or polling began)
        self.panel: PanelStatus | None = None
        self._regs = profile.registers
        enc = profile.encoding
        self._flags = isinstance(enc, FlagsEncoding)
        self._shift = enc.event_shift if isinstance(enc, FlagsEncoding) else 0
        self._words: dict[tuple[int, int], list[int]] = {}
        self._layout: dict[tuple[int, int], list[Register | None]] = {}
        self._points: dict[PointAddress, frozenset[str]] = {}  # only points with conditions
        self._active: dict[tuple[str, Any], Event] = {}  # (kind, point/zone/None) -> active
        channels = profile.analog.channels if profile.analog is not None else []
        self._channels: list[AnalogChannel] = list(channels)
        quantities = [c.quantity.value for c in channels]
        self._suffix = [
            q if quantities.count(q) == 1 else c.name
            for q, c in zip(quantities, channels, strict=True)
        ]
        self._deadband = list(deadbands) or [0.0] * len(channels)
        self._every_poll = every_poll  # report every value of every read (no diff, no band)
        self._analog: dict[tuple[PointAddress, int], float | None] = {}
        self._reported: dict[tuple[PointAddress, int], float] = {}
        self._names: dict[tuple[PointAddress, int], str] = {}
        self._plans: dict[tuple[int, int], _Plan | None] = {}  # per analog block, every_poll
        # every_poll: each block's latest values, folded into _analog when asked for
        self._fresh_analog: dict[
            tuple[int, int], tuple[list[tuple[PointAddress, int]], list[float | None]]
        ] = {}

    # -- queries ------------------------------------------------------------------------
    @property
    def active(self) -> list[Event]:
        """The occurrences active now (raised and not cleared)."""
        return list(self._active.values())

    def analog(self, point: PointAddress, channel: int = 0) -> float | None:
        self._merge_analog()
        return self._analog.get((point, channel))

    # -- status -------------------------------------------------------------------------
    def status_block(self, block: Block, words: list[int], now: float, wall: float) -> list[Item]:
        """Events for what changed in a status block since it was last read."""
        key = (block.function, block.address)
        prev = self._words.get(key)
        if prev == words:
            return _NO_ITEMS
        self._words[key] = words
        layout = self._layout_of(key, block)
        out: list[Item] = []
        if prev is None or len(prev) != len(words):
            changed: Sequence[int] = range(len(words))
        else:
            changed = [i for i, (a, b) in enumerate(zip(words, prev, strict=True)) if a != b]
        for i in changed:
            reg = layout[i]
            if reg is None:
                continue
            word = words[i]
            role = reg.role
            if role is Role.POINT:
                self._point_word(reg, word, wall, out)
            elif role is Role.ZONE:
                self._zone_word(reg, word, wall, out)
            elif role is Role.PANEL_STATUS:
                self._panel_word(word, wall, out)
            elif role is Role.HEARTBEAT:
                if self.heartbeat is None:  # first sight: proof of life (probe() sees it)
                    out.append(self._heartbeat_reading(word, wall))
                self.heartbeat = word
                self.heartbeat_since = now
        return _by_severity(out)

    def _layout_of(self, key: tuple[int, int], block: Block) -> list[Register | None]:
        layout = self._layout.get(key)
        if layout is None:
            regs, table = self._regs, block.table
            layout = [regs.get((table, block.address + i)) for i in range(block.count)]
            self._layout[key] = layout
        return layout

    def _point_word(self, reg: Register, word: int, wall: float, out: list[Item]) -> None:
        points = reg.points
        statuses = self.profile.decode_word(word, len(points))
        for i, (point, status) in enumerate(zip(points, statuses, strict=True)):
            if point is None:
                continue
            now_on = _conditions(status)
            before = self._points.get(point, frozenset())
            if now_on == before:
                continue
            if now_on:
                self._points[point] = now_on
            else:
                self._points.pop(point, None)
            code = (word >> self._shift) & 0xFF if self._flags else (word >> (2 * i)) & 3
            for kind in before - now_on:
                self._clear((kind, point), wall, out)
            for kind in now_on - before:
                data = {
                    "unit": self.unit,
                    "loop": point.loop,
                    "point": point_token(point),
                    "address": reg.number,
                    "zone": self.zones.get(point),
                    "code": code,
                }
                self._raise((kind, point), kind, POINT_EVENTS[kind], data, wall, out)

    def _zone_word(self, reg: Register, word: int, wall: float, out: list[Item]) -> None:
        zones = reg.zones
        for zone, status in zip(zones, self.profile.decode_word(word, len(zones)), strict=True):
            if zone is None:
                continue
            key = (EventKind.ZONE_FIRE, zone)
            fire = status.present and status.alarm in _FIRE_ALARMS
            if fire and key not in self._active:
                data = {"unit": self.unit, "zone": zone}
                self._raise(key, EventKind.ZONE_FIRE, Severity.FIRE, data, wall, out)
            elif not fire and key in self._active:
                self._clear(key, wall, out)

    def _panel_word(self, word: int, wall: float, out: list[Item]) -> None:
        panel = self.profile.decode_panel_status(word)
        self.panel = panel
        for flag, (kind, severity) in PANEL_EVENTS.items():
            key = (kind, None)
            on = getattr(panel, flag)
            if on and key not in self._active:
                self._raise(key, kind, severity, {"unit": self.unit}, wall, out)
            elif not on and key in self._active:
                self._clear(key, wall, out)

    def _raise(
        self,
        key: tuple[str, Any],
        kind: str,
        severity: Severity,
        data: dict[str, Any],
        wall: float,
        out: list[Item],
    ) -> None:
        event = Event(kind, severity, EventState.ACTIVE, self.source, wall, data)
        self._active[key] = event
        out.append(event)

    def _clear(self, key: tuple[str, Any], wall: float, out: list[Item]) -> None:
        event = self._active.pop(key, None)
        if event is not None:
            out.append(event.with_state(EventState.CLEARED, time=wall))

    # -- analog -------------------------------------------------------------------------
    def analog_block(self, block: Block, words: list[int], wall: float) -> list[RawItem]:
        """Readings for analog values that moved at least their deadband (every value of
        the block with ``every_poll``, as one :class:`ReadingBlock` when all decode)."""
        key = (block.function, block.address)
        prev = self._words.get(key)
        every = self._every_poll
        if prev == words and not every:
            return []
        self._words[key] = words
        layout = self._layout_of(key, block)
        if every:
            whole = self._whole_block(key, layout, words, wall)
            if whole is not None:
                return [whole]
        self._merge_analog()
        if every or prev is None or len(prev) != len(words):
            changed: Sequence[int] = range(len(words))
        else:
            changed = [i for i, (a, b) in enumerate(zip(words, prev, strict=True)) if a != b]
        out: list[RawItem] = []
        for i in changed:
            reg = layout[i]
            if reg is None or reg.role is not Role.ANALOG or reg.points[0] is None:
                continue
            ch = reg.channel
            akey = (reg.points[0], ch)
            value = self.profile.decode_analog(self._channels[ch], words[i])
            self._analog[akey] = value
            if value is None:
                self._reported.pop(akey, None)
                continue
            last = self._reported.get(akey)
            # a hair under the band, so a 0.05 step on a 0.05 band counts despite rounding
            if every or last is None or abs(value - last) >= self._deadband[ch] - 1e-9:
                out.append(self._reading(akey, value, wall))
        return out

    def _whole_block(
        self, key: tuple[int, int], layout: list[Register | None], words: list[int], wall: float
    ) -> ReadingBlock | None:
        """Every analog value of the block as one block of readings (``every_poll``; the
        points whose word says 'absent' left out), or None when there is nothing to
        report this way (the caller then goes value by value).

        The hot path of raw sampling (tens of thousands of values a second): the values
        are decoded in one comprehension (the same arithmetic as
        :meth:`Profile.decode_analog`, which a test checks) and remembered for
        :meth:`analog` and :meth:`full_report` without a dict write per value.
        """
        if len(words) != len(layout):
            return None
        if key not in self._plans:
            self._plans[key] = self._plan(layout)
        plan = self._plans[key]
        if plan is None:
            return None
        reading_layout, spec, akeys, raw = plan
        if not words or max(words) > 0xFFFF or min(words) < 0:
            return None  # the per-value path raises the typed error
        values: list[float | None]
        if raw:  # scale 1, unsigned, no 'absent' word: every word is its value
            values = list(map(float, words)) if raw is _ALL else [float(words[i]) for i in raw]
        else:
            values = [
                None
                if (w := words[i]) == absent
                else round((w - 0x10000 if signed and w & 0x8000 else w) * scale, 6)
                for i, absent, signed, scale in spec
            ]
        self._fresh_analog[key] = (akeys, values)
        if None not in values:
            return ReadingBlock(reading_layout, values, wall)  # type: ignore[arg-type]
        present = tuple(j for j, v in enumerate(values) if v is not None)
        if not present:
            return None
        key_present = ("present", present)
        sub = reading_layout.cache.get(key_present)
        if sub is None:
            names, units = reading_layout.names, reading_layout.units
            sub = ReadingLayout(
                self.source, [names[j] for j in present], [units[j] for j in present]
            )
            if len(reading_layout.cache) < 256:
                reading_layout.cache[key_present] = sub
        return ReadingBlock(sub, [values[j] for j in present], wall)  # type: ignore[misc]

    def _merge_analog(self) -> None:
        """Fold the values remembered by :meth:`_whole_block` into ``_analog``."""
        if self._fresh_analog:
            for akeys, values in self._fresh_analog.values():
                self._analog.update(zip(akeys, values, strict=True))
            self._fresh_analog.clear()

    def _plan(self, layout: list[Register | None]) -> _Plan | None:
        spec: list[tuple[int, int | None, bool, float]] = []
        akeys: list[tuple[PointAddress, int]] = []
        names: list[str] = []
        units: list[str | None] = []
        for i, reg in enumerate(layout):
            if reg is None or reg.role is not Role.ANALOG or reg.points[0] is None:
                continue
            akey = (reg.points[0], reg.channel)
            ch = self._channels[reg.channel]
            spec.append((i, ch.absent, ch.signed, ch.scale))
            akeys.append(akey)
            names.append(self._name(akey))
            units.append(ch.unit)
        if not spec:
            return None
        raw: Sequence[int] = ()
        if all(a is None and not sg and sc == 1.0 for _, a, sg, sc in spec):
            idx = [i for i, *_ in spec]
            raw = _ALL if idx == list(range(len(layout))) else idx
        return ReadingLayout(self.source, names, units), spec, akeys, raw

    def full_report(self, wall: float) -> list[Item]:
        """Every analog value known now (and the heartbeat), whatever the deadband."""
        self._merge_analog()
        out: list[Item] = [
            self._reading(akey, value, wall)
            for akey, value in self._analog.items()
            if value is not None
        ]
        if self.heartbeat is not None:
            out.append(self._heartbeat_reading(self.heartbeat, wall))
        return out

    def _heartbeat_reading(self, value: int, wall: float) -> Reading:
        return Reading(self.source, f"u{self.unit}/heartbeat", value, None, wall)

    def _reading(self, akey: tuple[PointAddress, int], value: float, wall: float) -> Reading:
        self._reported[akey] = value
        return Reading(self.source, self._name(akey), value, self._channels[akey[1]].unit, wall)

    def _name(self, akey: tuple[PointAddress, int]) -> str:
        """The reading name of an analog value (built once per point and channel)."""
        name = self._names.get(akey)
        if name is None:
            point, ch = akey
            name = self._names[akey] = reading_name(self.unit, point, self._suffix[ch])
        return name
