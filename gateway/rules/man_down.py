"""Man-down: the PASS motion rule, evaluated at the gateway (NFPA 1982).

NFPA 1982 (Personal Alert Safety Systems) makes a PASS device sound a **pre-alert after
20 s without motion**, which the wearer cancels by moving, and the **full alarm after
30 s**, which **latches**: it keeps sounding until someone resets it by hand. This rule
repeats that logic at the gateway on the ``<b>/motion`` readings (milli-g RMS over the last
second) so the commander sees it even when the wearer's own device is not heard.

Semantics (see docs/rules.md):

* A reading whose value is **above** ``motion_threshold`` is movement; its ``Reading.time``
  becomes the last movement (never moved back, never after ``now``).
* ``now - last_motion >= man_down_prealarm`` -> ``man-down`` / ``prealarm`` active, stamped
  ``last_motion + man_down_prealarm`` exactly (not the time of the tick that noticed it).
  Movement clears it (``cleared``, ``reason="motion"``) and restarts the timer.
* ``now - last_motion >= man_down_alarm`` -> ``man-down`` / ``alarm`` active, stamped
  ``last_motion + man_down_alarm``. Escalation **supersedes** the pre-alert: the alarm is a
  new occurrence (an occurrence keeps one severity) and the pre-alert is ``cleared`` at the
  same instant with ``reason="escalated"`` and ``alarm=<alarm id>``; the alarm is emitted
  first so there is no instant with nothing active.
* The alarm **latches**: motion does not clear it; only an acknowledgement ends it, and the
  timer then restarts from the later of the last movement and the acknowledgement.
* The watch starts when the firefighter goes on duty (first item from the beacon); that
  moment counts as the last movement.
* The timers only run while the beacon is in contact (the wearer's clock stops when the
  lost-contact alarm starts, :mod:`gateway.rules.wearer`): silence is reported once, as
  lost contact, not again as man-down. When frames return the timers resume from the last
  movement, so a firefighter still motionless gets man-down at once, stamped when it fell
  due.

Distress button, fall and the beacon's own motion alarm come from the driver as events
(``distress``, ``fall``, ``beacon-alarm``); the gateway forwards those itself and this rule
does not duplicate them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgesdk.model import Event, EventKind, Severity
from gateway.config import RulesConfig
from gateway.rules.occurrence import Registry, Slot

__all__ = ["ManDown"]


class ManDown:
    """The man-down state of one firefighter (one beacon of one receiver)."""

    __slots__ = ("_alarm", "_alarm_s", "_base", "_pre", "_pre_s", "_threshold", "last_motion")

    def __init__(
        self, config: RulesConfig, registry: Registry, base: Mapping[str, Any], start: float
    ) -> None:
        self._pre_s = config.man_down_prealarm
        self._alarm_s = config.man_down_alarm
        self._threshold = config.motion_threshold
        self._base = base
        self._pre = Slot(registry)
        self._alarm = Slot(registry, latching=True, after_ack=self._restart)
        self.last_motion = start

    def due(self, now: float, out: list[Event]) -> None:
        """Emit the transitions whose moment has come by ``now``, stamped at that moment."""
        if self._alarm.on:
            return  # latched: nothing changes until acknowledged
        last = self.last_motion
        if not self._pre.on and now - last >= self._pre_s and now - last < self._alarm_s:
            out.append(self._pre.activate(*self._stage(Severity.PREALARM, self._pre_s)))
        elif now - last >= self._alarm_s:
            if not self._pre.on:  # a late check still reports the pre-alert it missed
                out.append(self._pre.activate(*self._stage(Severity.PREALARM, self._pre_s)))
            pre = self._pre.event
            alarm = self._alarm.activate(
                *self._stage(Severity.ALARM, self._alarm_s, prealarm=pre.id if pre else None)
            )
            out.append(alarm)
            cleared = self._pre.clear(alarm.time, {"reason": "escalated", "alarm": alarm.id})
            if cleared is not None:
                out.append(cleared)

    def motion(self, value: float, t: float, out: list[Event]) -> None:
        """A motion reading of ``value`` mg taken at ``t`` (already ``<= now``).

        The caller runs :meth:`due` before and after: before, on the clock as it stood
        (so a movement reported after a radio gap is counted before the gap is judged).
        """
        if value <= self._threshold or t <= self.last_motion:
            return
        self.last_motion = t
        if not self._alarm.on:
            cleared = self._pre.clear(t, {"reason": "motion", "moved_at": t})
            if cleared is not None:
                out.append(cleared)

    def _stage(
        self, severity: Severity, after: float, **extra: Any
    ) -> tuple[str, Severity, float, dict[str, Any]]:
        data = {
            **self._base,
            "last_motion": self.last_motion,
            "stationary_s": after,
            **{k: v for k, v in extra.items() if v is not None},
        }
        return EventKind.MAN_DOWN, severity, self.last_motion + after, data

    def _restart(self, when: float) -> None:
        # A reset PASS starts counting again; the wearer gets a fresh pre-alert if still.
        self.last_motion = max(self.last_motion, when)
