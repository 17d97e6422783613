"""Heat stress: skin temperature and ambient heat above their limits (practice).

Firefighters' core temperature often passes 39 °C and heat illness risk rises towards
40 °C; skin temperature tracks it loosely, so ``skin_temperature_max`` (default 39 °C)
prompts a check. ``ambient_heat_max`` (default 150 °C) warns that the wearer is in heat
their protective clothing only tolerates for a limited time. Neither is a standard
threshold: both are *practice*, configurable.

A reading **above** the limit -> ``skin-temperature`` or ``ambient-heat`` / ``supervisory``
active; it clears at or below ``limit - hysteresis`` (:data:`SKIN_HYSTERESIS`,
:data:`AMBIENT_HYSTERESIS`) so a value hovering at the limit does not flap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgesdk.model import Event, EventKind, Severity
from gateway.rules.occurrence import Registry, Slot

__all__ = ["AMBIENT_HYSTERESIS", "SKIN_HYSTERESIS", "HighTemperature"]

SKIN_HYSTERESIS = 0.5
"""°C below ``skin_temperature_max`` needed to clear (ours)."""

AMBIENT_HYSTERESIS = 10.0
"""°C below ``ambient_heat_max`` needed to clear (ours)."""


class HighTemperature:
    """One temperature limit of one firefighter (skin or ambient)."""

    __slots__ = ("_base", "_hysteresis", "_kind", "_limit", "_slot")

    def __init__(
        self,
        kind: EventKind,
        limit: float,
        hysteresis: float,
        registry: Registry,
        base: Mapping[str, Any],
    ) -> None:
        self._kind = kind
        self._limit = limit
        self._hysteresis = hysteresis
        self._base = base
        self._slot = Slot(registry)

    def temperature(self, celsius: float, t: float, out: list[Event]) -> None:
        """A temperature reading (°C) taken at ``t``."""
        if not self._slot.on:
            if celsius > self._limit:
                data = {**self._base, "temperature": celsius, "limit": self._limit}
                out.append(self._slot.activate(self._kind, Severity.SUPERVISORY, t, data))
        elif celsius <= self._limit - self._hysteresis:
            cleared = self._slot.clear(t, {"reason": "temperature", "temperature": celsius})
            if cleared is not None:
                out.append(cleared)
