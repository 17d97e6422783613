"""The rule engine: readings and driver events in, rule events out. Sans-I/O, clock-free.

Every method takes ``now`` (epoch seconds, the clock of ``Reading.time``) explicitly, so the
engine never reads a clock, never sleeps and never does I/O: the gateway calls
:meth:`RuleEngine.feed` for every item a driver yields and :meth:`RuleEngine.tick` about
every 0.25 s, and forwards what they return. Tests drive it with exact times.

Time-driven transitions (man-down, heart rate, lost contact, device offline) are stamped with
the exact moment they fell due, and :meth:`feed` applies those due for the state it touches
before applying the item, so the events do not depend on how often :meth:`tick` runs (a
late tick reports the same events with the same times, only later).

``feed`` is on the gateway's hot path (100k readings/s): a reading no rule cares about
(a panel's smoke value) costs a few dict look-ups — the route of each reading name is
computed once from its last segment and cached — and allocates only the empty result list.
Driver events are **not** passed through: the gateway forwards them itself; ``feed``
returns only new rule events.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from operator import attrgetter

from edgesdk.errors import ConfigError
from edgesdk.model import Event, Reading, ReadingBlock, ReadingLayout
from gateway.config import RulesConfig
from gateway.rules.crosscheck import CrossCheck
from gateway.rules.occurrence import SOURCE, Registry, at_or_before
from gateway.rules.supervision import DeviceSupervision
from gateway.rules.wearer import FIELDS, Wearer

__all__ = ["MAX_ROUTES", "RuleEngine"]

MAX_ROUTES = 65_536
"""Reading names whose route is cached; names beyond it are routed each time (no growth)."""

_IGNORE = (0, 0)  # route of a reading no rule reads
_INF = math.inf
_by_time = attrgetter("time")


def _route(name: str) -> tuple[int, int]:
    """``<b>/<field>`` with a decimal beacon id and a known beacon field -> (field, beacon)."""
    beacon, sep, field = name.partition("/")
    code = FIELDS.get(field) if sep else None
    if code is None or not (beacon.isascii() and beacon.isdigit()):
        return _IGNORE
    return code, int(beacon)


def _beacon(value: object) -> int | None:
    if type(value) is int and value >= 0:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def _check_now(now: float) -> None:
    if not -math.inf < now < math.inf:  # also false for NaN
        raise ValueError(f"now must be finite epoch seconds, got {now!r}")


class RuleEngine:
    """Runs the gateway's life-safety rules (docs/rules.md) over one site's items.

    ``devices`` maps each configured device name to its expected interval in seconds
    (``None``: not supervised); see :mod:`gateway.rules.supervision`.
    """

    def __init__(
        self, config: RulesConfig, *, devices: Mapping[str, float | None] | None = None
    ) -> None:
        intervals: dict[str, float] = {}
        for name, interval in (devices or {}).items():
            if interval is None:
                continue
            if isinstance(interval, bool) or not isinstance(interval, int | float):
                raise ConfigError(
                    f"expected interval must be a number, not {type(interval).__name__}",
                    key=f"devices.{name}.expected_interval",
                    fix="give seconds, e.g. 10",
                )
            if not 0 < interval < math.inf:
                raise ConfigError(
                    f"expected interval must be > 0 and finite (got {interval})",
                    key=f"devices.{name}.expected_interval",
                    fix="give seconds, e.g. 10, or leave it out",
                )
            intervals[name] = float(interval)
        self.config = config
        self._registry: Registry = {}
        self._supervision = DeviceSupervision(intervals, self._registry)
        self._crosscheck = CrossCheck(config, self._registry) if config.zones else None
        self._wearers: dict[str, dict[int, Wearer]] = {}
        self._routes: dict[str, tuple[int, int]] = {}
        # per block layout: (index, route) of the names some rule reads (usually none)
        self._layout_routes: dict[ReadingLayout, list[tuple[int, tuple[int, int]]]] = {}
        self._started = False

    # -- inputs -------------------------------------------------------------------------
    def feed(self, device: str, item: Reading | Event, now: float) -> list[Event]:
        """New rule events caused by ``item`` from ``device`` arriving at ``now``."""
        if not -_INF < now < _INF:  # also true for NaN
            _check_now(now)
        if not self._started:
            self._start(now)
        if isinstance(item, Reading):
            seen = self._supervision.seen(device, now)
            route = self._routes.get(item.name)
            if route is None:
                route = _route(item.name)
                if len(self._routes) < MAX_ROUTES:
                    self._routes[item.name] = route
            if route is _IGNORE:
                return seen if seen is not None else []
            out = seen if seen is not None else []
            t = at_or_before(item.time, now)
            self._wearer(device, route[1], t, now).reading(route[0], item.value, t, now, out)
        elif isinstance(item, Event):
            if item.source == SOURCE:
                return []  # our own events fed back: never evidence of anything
            seen = self._supervision.seen(device, now)
            out = seen if seen is not None else []
            beacon = _beacon(item.data.get("beacon"))
            if beacon is not None:
                t = at_or_before(item.time, now)
                self._wearer(device, beacon, t, now).event(item.kind, item.data, now, out)
            if self._crosscheck is not None:
                self._crosscheck.event(device, item, now, out)
        else:
            raise TypeError(f"feed takes a Reading or an Event, not {type(item).__name__}")
        if len(out) > 1:
            out.sort(key=_by_time)  # stable: an occurrence's active stays before its clear
        return out

    def feed_block(self, device: str, block: ReadingBlock, now: float) -> list[Event]:
        """:meth:`feed` for every reading of ``block`` at once (same events, same order).

        Which of the layout's names a rule reads is worked out once per layout, so a
        block of panel values no rule reads costs a dict look-up, not one per value.
        """
        if not -_INF < now < _INF:
            _check_now(now)
        if not self._started:
            self._start(now)
        seen = self._supervision.seen(device, now)
        out = seen if seen is not None else []
        layout = block.layout
        routed = self._layout_routes.get(layout)
        if routed is None:
            routed = [
                (i, route)
                for i, name in enumerate(layout.names)
                if (route := _route(name)) is not _IGNORE
            ]
            if len(self._layout_routes) < MAX_ROUTES:
                self._layout_routes[layout] = routed
        if routed:
            t = at_or_before(block.time, now)
            values = block.values
            for i, (code, beacon) in routed:
                self._wearer(device, beacon, t, now).reading(code, values[i], t, now, out)
            if len(out) > 1:
                out.sort(key=_by_time)
        return out

    def tick(self, now: float) -> list[Event]:
        """Time-driven transitions due by ``now`` (call it about every 0.25 s)."""
        _check_now(now)
        if not self._started:
            self._start(now)
        out: list[Event] = []
        self._supervision.due(now, out)
        for wearers in self._wearers.values():
            for wearer in wearers.values():
                wearer.due(now, out)
        if len(out) > 1:
            out.sort(key=_by_time)
        return out

    def acknowledge(self, event_id: str, now: float, *, by: str = "operator") -> list[Event]:
        """A person has seen occurrence ``event_id``.

        A latching alarm (the man-down alarm) ends with its ``acknowledged`` event; any
        other ongoing occurrence is marked acknowledged and still clears with its
        condition. An unknown, ended or already acknowledged id returns ``[]``: an
        operator's ack racing a clear is normal, not an error.
        """
        _check_now(now)
        slot = self._registry.get(event_id)
        if slot is None:
            return []
        event = slot.acknowledge(now, by)
        return [event] if event is not None else []

    # -- state --------------------------------------------------------------------------
    def active(self) -> list[Event]:
        """The latest event of every ongoing rule occurrence, most urgent first, then oldest.

        An occurrence that was acknowledged but has not cleared is listed by its
        ``acknowledged`` event.
        """
        current = [e for s in self._registry.values() if (e := s.current) is not None]
        current.sort(key=lambda e: (e.severity.rank, e.time))
        return current

    def on_duty(self) -> list[tuple[str, int]]:
        """(device, beacon) of every firefighter being watched, in order of arrival."""
        return [(d, b) for d, wearers in self._wearers.items() for b in wearers]

    # -- internals ----------------------------------------------------------------------
    def _start(self, now: float) -> None:
        self._started = True
        self._supervision.start(now)

    def _wearer(self, device: str, beacon: int, t: float, now: float) -> Wearer:
        wearers = self._wearers.get(device)
        if wearers is None:
            wearers = self._wearers[device] = {}
        wearer = wearers.get(beacon)
        if wearer is None:  # on duty from its first item
            wearer = wearers[beacon] = Wearer(self.config, self._registry, device, beacon, t, now)
        return wearer
