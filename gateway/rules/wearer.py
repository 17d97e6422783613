"""One firefighter on duty: the per-beacon rules, wired together.

A wearer is keyed by (receiver device, beacon id). It goes **on duty** at its first item
(hello, telemetry or an alarm event naming the beacon) and stays on duty: the beacon
protocol has no check-out frame. That first item's time is the man-down baseline.

The rules share one **clock**: ``now``, except while contact is lost, when it stands still
at the moment the lost-contact alarm started (``last_seen + lost_contact``). Man-down and
heart rate judge what the beacon reports; a silent beacon is reported once, as lost
contact, rather than also as a motionless or over-strained firefighter. When frames return
the clock catches up with ``now`` and any transition that fell due is reported, stamped
with its own moment.

Readings are routed by the last segment of their name (``<b>/motion`` -> :data:`MOTION`)
with a dict, see :data:`FIELDS`; the engine caches the route per reading name.
"""

from __future__ import annotations

from typing import Any

from edgesdk.model import Event, EventKind
from gateway.config import RulesConfig
from gateway.rules.heart_rate import HeartRate
from gateway.rules.heat import AMBIENT_HYSTERESIS, SKIN_HYSTERESIS, HighTemperature
from gateway.rules.lost_contact import LostContact
from gateway.rules.low_air import LowAir
from gateway.rules.man_down import ManDown
from gateway.rules.occurrence import Registry, number

__all__ = [
    "AGE",
    "AMBIENT",
    "CONTACT",
    "FIELDS",
    "HEART",
    "MOTION",
    "RATED",
    "SCBA",
    "SKIN",
    "Wearer",
]

CONTACT, MOTION, SCBA, RATED, HEART, AGE, SKIN, AMBIENT = range(1, 9)

FIELDS: dict[str, int] = {
    "motion": MOTION,
    "scba_pressure": SCBA,
    "rated_pressure": RATED,
    "heart_rate": HEART,
    "wearer_age": AGE,
    "skin_temp": SKIN,
    "ambient_temp": AMBIENT,
    "battery": CONTACT,
    "rssi": CONTACT,
}
"""Beacon reading names (docs/events.md) -> what they feed; ``CONTACT`` only proves life."""


class Wearer:
    """The rules of one firefighter's beacon."""

    __slots__ = ("_lost_after", "ambient", "contact", "heart", "low_air", "man_down", "skin")

    def __init__(
        self,
        config: RulesConfig,
        registry: Registry,
        device: str,
        beacon: int,
        start: float,
        now: float,
    ) -> None:
        base = {"device": device, "beacon": beacon}
        self._lost_after = config.lost_contact
        self.contact = LostContact(config, registry, base, now)
        self.man_down = ManDown(config, registry, base, start)
        self.low_air = LowAir(config, registry, base)
        self.heart = HeartRate(config, registry, base)
        self.skin = HighTemperature(
            EventKind.SKIN_TEMPERATURE,
            config.skin_temperature_max,
            SKIN_HYSTERESIS,
            registry,
            base,
        )
        self.ambient = HighTemperature(
            EventKind.AMBIENT_HEAT, config.ambient_heat_max, AMBIENT_HYSTERESIS, registry, base
        )

    def due(self, now: float, out: list[Event]) -> None:
        """Emit every time-driven transition due by ``now``."""
        self.contact.due(now, out)
        clock = min(now, self.contact.last_seen + self._lost_after)
        self.man_down.due(clock, out)
        self.heart.due(clock, out)

    def reading(self, field: int, value: object, t: float, now: float, out: list[Event]) -> None:
        """A reading routed to ``field``, taken at ``t`` (``<= now``), arriving at ``now``."""
        # What fell due before this item, on the clock as it stood (stopped if contact was
        # lost); then the item (a movement after a radio gap counts before the gap is
        # judged); then contact is back and the clock catches up with ``now``.
        self.due(now, out)
        x = number(value)
        if x is not None:
            self._apply(field, x, t, out)
        self.contact.seen(now, out)
        self.due(now, out)

    def _apply(self, field: int, x: float, t: float, out: list[Event]) -> None:
        if field == MOTION:
            self.man_down.motion(x, t, out)
        elif field == SCBA:
            self.low_air.pressure(x, t, out)
        elif field == HEART:
            self.heart.rate(x, t, out)
        elif field == SKIN:
            self.skin.temperature(x, t, out)
        elif field == AMBIENT:
            self.ambient.temperature(x, t, out)
        elif field == RATED:
            if x > 0:
                self.low_air.rated = x
        elif field == AGE:
            self.heart.set_age(x)

    def event(self, kind: str, data: Any, now: float, out: list[Event]) -> None:
        """A driver event naming this beacon (alarm, hello...) arriving at ``now``."""
        self.due(now, out)
        if kind == EventKind.BEACON_JOINED:
            rated = number(data.get("rated_pressure"))
            if rated is not None and rated > 0:
                self.low_air.rated = rated
            age = number(data.get("wearer_age"))
            if age is not None:
                self.heart.set_age(age)
        self.contact.seen(now, out)
        self.due(now, out)
