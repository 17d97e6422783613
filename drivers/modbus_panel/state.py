"""What one panel shows, turned into events and readings: sans-I/O, fed with register words.

:class:`UnitState` keeps the last words read for every block, as the ``array('H')`` the
link decodes a reply into (2 bytes a word, where a list costs 8 plus an int object). A new
read is compared with them first (one ``memcmp``); only the registers whose word changed
are decoded through the profile, so a quiet panel costs no decoding and no allocation per
register. Conditions are tracked per occurrence: an ``active`` event is remembered until
the condition ends, and the ``cleared`` event reuses its id. Nothing is forgotten when the
link drops, so the first read after a reconnect reports exactly what changed meanwhile:
new conditions raised, ended ones cleared, ongoing ones not raised again.

Analog values are not stored apart from their words: :meth:`UnitState.analog` and
:meth:`UnitState.full_report` decode the last words of each analog block when asked (a
full report comes every few minutes; a read comes every few seconds). The value last
reported per register, which the deadband compares with, sits in an ``array('d')`` per
block (NaN: none). A unit's blocks are expected not to overlap (as
:meth:`~drivers.modbus_panel.profile.Profile.read_blocks` makes them): state is kept per
block, keyed by its start.
"""

from __future__ import annotations

import functools
from array import array
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
from edgesdk.errors import CommandError, ProtocolError
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
_NAN = float("nan")
_Key = tuple[int, int]  # (function code, start address): one block of a unit
_Layout = tuple[Register | None, ...]
# every_poll, per analog block: its reading layout; (word index, absent, signed, scale)
# per value; the word indexes when every value is a raw word (_ALL: all)
_Plan = tuple[ReadingLayout, list[tuple[int, int | None, bool, float]], Sequence[int]]
_ALL: Sequence[int] = range(1)  # a marker (compared by identity)


def _as_words(words: Sequence[int]) -> array[int]:
    """Words from elsewhere than the link (a list) as the link gives them: ProtocolError
    for a value that is no register word, before any state changes."""
    try:
        return array("H", words)
    except (OverflowError, TypeError) as exc:
        raise ProtocolError(f"register word out of range: {exc}") from None


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
    ``deadbands`` is per channel index. Words may come as any sequence of ints; the
    ``array('H')`` the link returns is kept as it is, others are converted (a word out of
    0..0xFFFF is a :class:`~edgesdk.errors.ProtocolError`, as is a block of the wrong size).
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
        enc = profile.encoding
        self._flags = isinstance(enc, FlagsEncoding)
        self._shift = enc.event_shift if isinstance(enc, FlagsEncoding) else 0
        self._words: dict[_Key, array[int]] = {}  # status blocks
        self._analog_words: dict[_Key, array[int]] = {}  # analog blocks, in first-read order
        self._layout: dict[_Key, _Layout] = {}  # the profile's tuples, shared by every unit
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
        # per analog block (once a value of it is reported) and word; NaN: none reported
        self._reported: dict[_Key, array[float]] = {}
        self._names: dict[tuple[PointAddress, int], str] = {}
        self._plans: dict[_Key, _Plan | None] = {}  # per analog block, every_poll

    # -- queries ------------------------------------------------------------------------
    @property
    def active(self) -> list[Event]:
        """The occurrences active now (raised and not cleared)."""
        return list(self._active.values())

    def analog(self, point: PointAddress, channel: int = 0) -> float | None:
        """The value of ``channel`` at ``point`` in the last read (None: absent, not read,
        or not in the map)."""
        if not 0 <= channel < len(self._channels):
            return None
        try:
            location = self.profile.locate_analog(point, self._channels[channel].name)
        except CommandError:
            return None
        function = location.table.read_function
        for (fn, start), words in self._analog_words.items():
            i = location.address - start
            if fn == function and 0 <= i < len(words):
                reg = self._layout[(fn, start)][i]
                if reg is None or reg.role is not Role.ANALOG:
                    return None
                return self.profile.decode_analog(self._channels[channel], words[i])
        return None

    def _layout_of(self, key: _Key, block: Block, words: array[int]) -> _Layout:
        """The block's registers (one shared tuple per block of the profile); checks the
        words fit the block."""
        layout = self._layout.get(key)
        if layout is None or len(layout) != len(words):
            if len(words) != block.count:
                raise ProtocolError(f"block {block} answered {len(words)} registers")
            layout = self._layout[key] = self.profile.block_registers(block)
            self._plans.pop(key, None)
        return layout

    # -- status -------------------------------------------------------------------------
    def status_block(
        self, block: Block, words: Sequence[int], now: float, wall: float
    ) -> list[Item]:
        """Events for what changed in a status block since it was last read."""
        if type(words) is not array or words.typecode != "H":
            words = _as_words(words)
        key = (block.function, block.address)
        prev = self._words.get(key)
        if prev == words:
            return _NO_ITEMS
        layout = self._layout_of(key, block, words)
        self._words[key] = words
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
    def analog_block(self, block: Block, words: Sequence[int], wall: float) -> list[RawItem]:
        """Readings for analog values that moved at least their deadband (every value of
        the block with ``every_poll``, as one :class:`ReadingBlock` when all decode)."""
        if type(words) is not array or words.typecode != "H":
            words = _as_words(words)
        key = (block.function, block.address)
        prev = self._analog_words.get(key)
        every = self._every_poll
        if prev == words and not every:
            return []
        layout = self._layout_of(key, block, words)
        self._analog_words[key] = words
        if every:
            whole = self._whole_block(key, layout, words, wall)
            if whole is not None:
                return [whole]
            changed: Sequence[int] = range(len(words))
        elif prev is None or len(prev) != len(words):
            changed = range(len(words))
        else:
            changed = [i for i, (a, b) in enumerate(zip(words, prev, strict=True)) if a != b]
        out: list[RawItem] = []
        channels, decode, source = self._channels, self.profile.decode_analog, self.source
        reported = self._reported.get(key)  # None until a value of the block is reported
        if reported is not None and len(reported) < len(words):
            reported = self._reported_of(key, len(words))
        for i in changed:
            reg = layout[i]
            if reg is None or reg.role is not Role.ANALOG or (point := reg.points[0]) is None:
                continue
            ch = reg.channel
            channel = channels[ch]
            value = decode(channel, words[i])
            if every:  # every value, no deadband (nothing to remember)
                if value is not None:
                    out.append(Reading(source, self._name(point, ch), value, channel.unit, wall))
                continue
            if value is None:
                if reported is not None:
                    reported[i] = _NAN
                continue
            last = _NAN if reported is None else reported[i]
            # a hair under the band, so a 0.05 step on a 0.05 band counts despite rounding
            if last != last or abs(value - last) >= self._deadband[ch] - 1e-9:  # NaN: none
                if reported is None:
                    reported = self._reported_of(key, len(words))
                reported[i] = value
                out.append(Reading(source, self._name(point, ch), value, channel.unit, wall))
        return out

    def _reported_of(self, key: _Key, size: int) -> array[float]:
        """The block's last reported values, made (all NaN) or grown to ``size`` words."""
        reported = self._reported.get(key)
        if reported is None or len(reported) < size:
            grown = array("d", [_NAN]) * size
            if reported is not None:
                grown[: len(reported)] = reported
            reported = self._reported[key] = grown
        return reported

    def _whole_block(
        self, key: _Key, layout: _Layout, words: array[int], wall: float
    ) -> ReadingBlock | None:
        """Every analog value of the block as one block of readings (``every_poll``; the
        points whose word says 'absent' left out), or None when there is nothing to
        report this way (the caller then goes value by value).

        The hot path of raw sampling (tens of thousands of values a second): the values
        are decoded in one comprehension (the same arithmetic as
        :meth:`Profile.decode_analog`, which a test checks); the words need no range
        check (an ``array('H')`` holds nothing else).
        """
        if key not in self._plans:
            self._plans[key] = self._plan(layout)
        plan = self._plans[key]
        if plan is None:
            return None
        reading_layout, spec, raw = plan
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

    def _plan(self, layout: _Layout) -> _Plan | None:
        spec: list[tuple[int, int | None, bool, float]] = []
        names: list[str] = []
        units: list[str | None] = []
        for i, reg in enumerate(layout):
            if reg is None or reg.role is not Role.ANALOG or (point := reg.points[0]) is None:
                continue
            ch = self._channels[reg.channel]
            spec.append((i, ch.absent, ch.signed, ch.scale))
            names.append(self._name(point, reg.channel))
            units.append(ch.unit)
        if not spec:
            return None
        raw: Sequence[int] = ()
        if all(a is None and not sg and sc == 1.0 for _, a, sg, sc in spec):
            idx = [i for i, *_ in spec]
            raw = _ALL if idx == list(range(len(layout))) else idx
        return ReadingLayout(self.source, names, units), spec, raw

    def full_report(self, wall: float) -> list[Item]:
        """Every analog value known now (and the heartbeat), whatever the deadband."""
        out: list[Item] = []
        channels, decode, source = self._channels, self.profile.decode_analog, self.source
        absent = [c.absent for c in channels]
        every = self._every_poll
        for key, words in self._analog_words.items():
            reported: array[float] | None = None
            for i, reg in enumerate(self._layout[key]):
                if reg is None or reg.role is not Role.ANALOG or (point := reg.points[0]) is None:
                    continue
                ch = reg.channel
                word = words[i]
                if word == absent[ch]:  # most slots of a loop hold no detector
                    continue
                channel = channels[ch]
                value = decode(channel, word)
                if value is not None:
                    if not every:  # the deadband now counts from this value
                        if reported is None:
                            reported = self._reported_of(key, len(words))
                        reported[i] = value
                    out.append(Reading(source, self._name(point, ch), value, channel.unit, wall))
        if self.heartbeat is not None:
            out.append(self._heartbeat_reading(self.heartbeat, wall))
        return out

    def _heartbeat_reading(self, value: int, wall: float) -> Reading:
        return Reading(self.source, f"u{self.unit}/heartbeat", value, None, wall)

    def _name(self, point: PointAddress, channel: int) -> str:
        """The reading name of an analog value (built once per point and channel)."""
        akey = (point, channel)
        name = self._names.get(akey)
        if name is None:
            name = self._names[akey] = reading_name(self.unit, point, self._suffix[channel])
        return name
