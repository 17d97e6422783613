"""Low air: the SCBA cylinder has reached its low-air alarm point (NFPA 1981).

NFPA 1981 (2013 edition on) requires the low-air alarm at **33 % of the rated cylinder
pressure** (it was 25 % before): a 300 bar cylinder alarms at about 99 bar. The rated
pressure comes from the beacon's hello (``<b>/rated_pressure``, or ``rated_pressure`` in the
``beacon-joined`` event); until one arrives the rule assumes **300 bar**, the common rating
of carbon-composite cylinders, and says so in the event (``rated_assumed: true``).

``<b>/scba_pressure`` **at or below** ``scba_low_fraction`` x rated -> ``low-air`` /
``alarm`` active. It clears only when the pressure is above the limit by more than
:data:`HYSTERESIS` of the rated pressure (15 bar on 300 bar), so a gauge hovering around the
limit does not flap; a refilled or swapped cylinder clears it at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgesdk.model import Event, EventKind, Severity
from gateway.config import RulesConfig
from gateway.rules.occurrence import Registry, Slot

__all__ = ["ASSUMED_RATED_PRESSURE", "HYSTERESIS", "LowAir"]

ASSUMED_RATED_PRESSURE = 300.0
"""bar, when no hello gave the cylinder's rating."""

HYSTERESIS = 0.05
"""Fraction of the rated pressure above the limit needed to clear (practice; ours)."""


class LowAir:
    """The low-air state of one firefighter."""

    __slots__ = ("_base", "_fraction", "_slot", "rated")

    def __init__(self, config: RulesConfig, registry: Registry, base: Mapping[str, Any]) -> None:
        self._fraction = config.scba_low_fraction
        self._base = base
        self._slot = Slot(registry)
        self.rated: float | None = None

    def limit(self) -> float:
        """The alarm pressure in bar (rounded to absorb float error: 0.33 x 300 is 99)."""
        return round(self._fraction * (self.rated or ASSUMED_RATED_PRESSURE), 9)

    def pressure(self, bar: float, t: float, out: list[Event]) -> None:
        """A cylinder pressure reading taken at ``t``."""
        rated = self.rated or ASSUMED_RATED_PRESSURE
        limit = self.limit()
        if not self._slot.on:
            if bar <= limit:
                data = {
                    **self._base,
                    "pressure": bar,
                    "threshold": limit,
                    "rated_pressure": rated,
                    "rated_assumed": self.rated is None,
                }
                out.append(self._slot.activate(EventKind.LOW_AIR, Severity.ALARM, t, data))
        elif bar > limit + HYSTERESIS * rated:
            cleared = self._slot.clear(t, {"reason": "pressure", "pressure": bar})
            if cleared is not None:
                out.append(cleared)
