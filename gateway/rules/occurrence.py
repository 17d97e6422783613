"""One slot per condition: the bookkeeping every rule shares.

A condition (a firefighter who stopped moving, a zone on fire, a silent device) has at most
one **occurrence** ongoing at a time. A :class:`Slot` holds it: :meth:`Slot.activate` mints a
new event id, :meth:`Slot.clear` and :meth:`Slot.acknowledge` reuse it
(:meth:`~edgesdk.model.Event.with_state`). Keeping this in one place is what guarantees the
invariants the gateway and its consumers rely on: a ``cleared`` or ``acknowledged`` event is
only ever emitted for an occurrence that is ongoing, an id is never activated twice, and a
``cleared`` event is never older than its ``active`` event.

Every slot of one engine shares a *registry* (event id -> slot) so the engine can find an
occurrence by id for :meth:`~gateway.rules.RuleEngine.acknowledge` and list the ongoing
ones for :meth:`~gateway.rules.RuleEngine.active` without asking each rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from edgesdk.model import Event, EventState, Severity, new_event_id

__all__ = ["SOURCE", "Registry", "Slot", "at_or_before", "number"]

SOURCE = "gateway"
"""``Event.source`` of every rule event (docs/events.md)."""

Registry = dict[str, "Slot"]
"""Ongoing occurrences of one engine: event id -> the slot holding it."""


def number(value: object) -> float | None:
    """``value`` as a finite float, or ``None`` when it is not a usable number.

    Readings can hold bools, strings and bytes; a rule must never act on those (``True`` is
    an ``int`` in Python, hence the explicit check) nor on NaN or infinities, which would
    make every comparison false and silently disable the rule.
    """
    if type(value) is float:
        return value if math.isfinite(value) else None
    if type(value) is int:
        return float(value)
    return None


def at_or_before(t: float, now: float) -> float:
    """The time ``t`` of an item, or ``now`` when ``t`` is in the future or not finite.

    Device clocks drift; a reading stamped in the future must not postpone an alarm, and a
    NaN stamp must not poison a timer. An old stamp is kept: it only makes timers expire
    earlier, which is the safe side.
    """
    if t <= now and t > -math.inf:  # false for NaN
        return t
    return now


class Slot:
    """Holds at most one ongoing occurrence of one condition.

    ``latching`` occurrences (the PASS alarm) end when acknowledged; the others are marked
    acknowledged and end when their condition clears. ``after_ack`` lets the owning rule
    react to an acknowledgement (the man-down rule restarts its motion timer).
    """

    __slots__ = ("_acked", "_active", "_current", "_registry", "after_ack", "latching")

    def __init__(
        self,
        registry: Registry,
        *,
        latching: bool = False,
        after_ack: Callable[[float], None] | None = None,
    ) -> None:
        self._registry = registry
        self._active: Event | None = None  # the ``active`` event of the ongoing occurrence
        self._current: Event | None = None  # its latest state (active or acknowledged)
        self._acked = False
        self.latching = latching
        self.after_ack = after_ack

    @property
    def on(self) -> bool:
        """True while an occurrence is ongoing."""
        return self._active is not None

    @property
    def event(self) -> Event | None:
        """The ``active`` event of the ongoing occurrence, if any."""
        return self._active

    @property
    def current(self) -> Event | None:
        """The latest event of the ongoing occurrence (``active`` or ``acknowledged``)."""
        return self._current

    def activate(
        self, kind: str, severity: Severity, time: float, data: Mapping[str, Any]
    ) -> Event:
        """Start a new occurrence with a fresh id; the slot must be empty."""
        if self._active is not None:  # a rule bug, never bad input
            raise RuntimeError(f"{kind}: occurrence {self._active.id} is still ongoing")
        event = Event(
            kind=kind,
            severity=severity,
            state=EventState.ACTIVE,
            source=SOURCE,
            time=time,
            data=data,
            id=new_event_id(),
        )
        self._active = self._current = event
        self._acked = False
        self._registry[event.id] = self
        return event

    def clear(self, time: float, data: Mapping[str, Any] | None = None) -> Event | None:
        """End the ongoing occurrence (``None`` when there is none).

        The ``cleared`` event is never stamped before the ``active`` one.
        """
        active = self._active
        if active is None:
            return None
        self._end(active)
        return active.with_state(EventState.CLEARED, time=max(time, active.time), data=data)

    def acknowledge(self, time: float, by: str) -> Event | None:
        """Record that a person has seen the occurrence (``None`` if already done)."""
        active = self._active
        if active is None or self._acked:
            return None
        event = active.with_state(
            EventState.ACKNOWLEDGED, time=max(time, active.time), data={"by": by}
        )
        if self.latching:
            self._end(active)
        else:
            self._acked = True
            self._current = event
        if self.after_ack is not None:
            self.after_ack(time)
        return event

    def _end(self, active: Event) -> None:
        self._registry.pop(active.id, None)
        self._active = self._current = None
        self._acked = False
