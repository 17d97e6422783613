"""Lost contact: a firefighter on duty whose beacon has gone silent (practice).

Beacons send telemetry about once a second and repeat alarms until acknowledged, so a
beacon heard from recently is alive. **No reading or event at all** from a beacon on duty
for ``lost_contact`` seconds (default 15) -> ``lost-contact`` / ``alarm`` active, stamped
``last_seen + lost_contact``: the commander must find out whether the firefighter is in
trouble or merely out of radio range. The next item from the beacon clears it.

"Seen" is the gateway's arrival time (``now``), not the frame's own stamp: this rule is about
the link, and a frame delayed in a receiver is still a sign of life when it arrives.

A beacon is **on duty** from its first item (hello, telemetry or alarm). The beacon protocol
has no check-out frame, so a beacon stays on duty for the life of the engine; a firefighter
leaving the site with the beacon switched off shows as lost contact until frames return
(acknowledging it marks it seen by a person; it stays listed as ongoing, see docs/rules.md).

While contact is lost the wearer's other timers (man-down, heart rate) stand still: silence
is this rule's alarm, not evidence that the firefighter stopped moving (see
:mod:`gateway.rules.wearer`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgesdk.model import Event, EventKind, Severity
from gateway.config import RulesConfig
from gateway.rules.occurrence import Registry, Slot

__all__ = ["LostContact"]


class LostContact:
    """The contact state of one firefighter's beacon."""

    __slots__ = ("_after", "_base", "_slot", "last_seen")

    def __init__(
        self, config: RulesConfig, registry: Registry, base: Mapping[str, Any], now: float
    ) -> None:
        self._after = config.lost_contact
        self._base = base
        self._slot = Slot(registry)
        self.last_seen = now

    def due(self, now: float, out: list[Event]) -> None:
        """Emit the alarm once the beacon has been silent for ``lost_contact`` seconds."""
        if not self._slot.on and now - self.last_seen >= self._after:
            data = {**self._base, "last_seen": self.last_seen, "silent_s": self._after}
            out.append(
                self._slot.activate(
                    EventKind.LOST_CONTACT, Severity.ALARM, self.last_seen + self._after, data
                )
            )

    def seen(self, now: float, out: list[Event]) -> None:
        """Something arrived from the beacon at ``now``."""
        self.due(now, out)  # a long gap is reported even if no tick ran during it
        if self._slot.on:
            cleared = self._slot.clear(now, {"reason": "contact", "silent_s": now - self.last_seen})
            if cleared is not None:
                out.append(cleared)
        self.last_seen = now
