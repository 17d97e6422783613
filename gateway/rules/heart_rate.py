"""Heart rate: sustained effort above 85 % of the age-predicted maximum (practice).

The age-predicted maximum heart rate is ``220 - age``; fire services commonly prompt a
medical check when a firefighter stays above **85 %** of it (*practice*, not a standard).
The age comes from the beacon's hello (``<b>/wearer_age``, or ``wearer_age`` in the
``beacon-joined`` event), else ``default_wearer_age`` (40: limit 153 bpm), which the event
says (``age_assumed: true``).

A heart rate **above** the limit in every reading for ``heart_rate_duration`` (60 s) ->
``heart-rate`` / ``supervisory`` active, stamped ``above_since + duration``. A reading at or
below the limit before that resets the timer. Once active it clears at or below
``limit - HYSTERESIS`` (5 bpm), so a rate hovering at the limit does not flap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgesdk.model import Event, EventKind, Severity
from gateway.config import RulesConfig
from gateway.rules.occurrence import Registry, Slot

__all__ = ["HYSTERESIS", "MAX_AGE", "MIN_AGE", "HeartRate"]

HYSTERESIS = 5.0
"""bpm below the limit needed to clear (ours)."""

MIN_AGE = 14
MAX_AGE = 100
"""Ages outside this range from a hello are taken as unknown (a beacon sends 0)."""


class HeartRate:
    """The heart-rate state of one firefighter."""

    __slots__ = (
        "_base",
        "_default_age",
        "_duration",
        "_fraction",
        "_last",
        "_slot",
        "above_since",
        "age",
    )

    def __init__(self, config: RulesConfig, registry: Registry, base: Mapping[str, Any]) -> None:
        self._fraction = config.heart_rate_fraction
        self._duration = config.heart_rate_duration
        self._default_age = config.default_wearer_age
        self._base = base
        self._slot = Slot(registry)
        self._last = 0.0
        self.above_since: float | None = None
        self.age: int | None = None

    def set_age(self, years: float) -> None:
        """The wearer's age from a hello; ignored when outside :data:`MIN_AGE`-:data:`MAX_AGE`."""
        if MIN_AGE <= years <= MAX_AGE:
            self.age = int(years)

    def limit(self) -> float:
        """The warning heart rate in bpm (rounded to absorb float error)."""
        age = self.age if self.age is not None else self._default_age
        return round(self._fraction * (220 - age), 9)

    def due(self, now: float, out: list[Event]) -> None:
        """Emit the warning once the rate has been above the limit for the duration."""
        since = self.above_since
        if since is not None and not self._slot.on and now - since >= self._duration:
            data = {
                **self._base,
                "heart_rate": self._last,
                "limit": self.limit(),
                "age": self.age if self.age is not None else self._default_age,
                "age_assumed": self.age is None,
                "above_since": since,
                "duration_s": self._duration,
            }
            out.append(
                self._slot.activate(
                    EventKind.HEART_RATE, Severity.SUPERVISORY, since + self._duration, data
                )
            )

    def rate(self, bpm: float, t: float, out: list[Event]) -> None:
        """A heart-rate reading taken at ``t``; the caller runs :meth:`due` before and after."""
        limit = self.limit()
        if bpm > limit:
            self._last = bpm
            if self.above_since is None:
                self.above_since = t
            return
        self.above_since = None  # a dip resets the timer
        if self._slot.on and bpm <= limit - HYSTERESIS:
            cleared = self._slot.clear(t, {"reason": "heart_rate", "heart_rate": bpm})
            if cleared is not None:
                out.append(cleared)
