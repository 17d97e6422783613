"""Device supervision: a configured device that has gone silent (practice).

District command centres need to notice devices that silently go offline. Every device in
the gateway config with an expected interval (``DeviceConfig.expected_interval``; the
engine's ``devices`` mapping) is supervised: **no item at all** (reading or event) from it
for its interval or more -> ``device-offline`` / ``trouble`` active, ``source="gateway"``,
stamped ``last_seen + interval``, data ``device``, ``silent_s`` (the interval),
``last_seen``, ``expected_interval``. The next item from it clears the occurrence
(``silent_s`` then holds the whole silence).

"Seen" is the gateway's arrival time (``now``). Supervision starts at the engine's first
call (``feed`` or ``tick``): a device that never says anything is reported one interval
after the gateway started. Drivers may also report their own ``device-offline`` (with
``source`` = the device); that one says why (the error), this one says that nothing arrived.
"""

from __future__ import annotations

from collections.abc import Mapping

from edgesdk.model import Event, EventKind, Severity
from gateway.rules.occurrence import Registry, Slot

__all__ = ["DeviceSupervision"]


class _Device:
    __slots__ = ("interval", "last", "offline", "slot")

    def __init__(self, interval: float, slot: Slot) -> None:
        self.interval = interval
        self.last = 0.0
        self.offline = False  # mirrors slot.on, read on the hot path without a call
        self.slot = slot


class DeviceSupervision:
    """Watches the silence of every supervised device."""

    __slots__ = ("_devices",)

    def __init__(self, devices: Mapping[str, float], registry: Registry) -> None:
        self._devices = {name: _Device(iv, Slot(registry)) for name, iv in devices.items()}

    def start(self, now: float) -> None:
        """Begin supervision: every device counts as seen at ``now``."""
        for dev in self._devices.values():
            dev.last = now

    def seen(self, device: str, now: float) -> list[Event] | None:
        """An item arrived from ``device`` at ``now``; events only when its state changed.

        This runs for every reading, so the usual case (a supervised device that is not
        overdue, or an unsupervised one) costs one dict look-up and allocates nothing.
        """
        dev = self._devices.get(device)
        if dev is None:
            return None
        if now - dev.last < dev.interval and not dev.offline:
            dev.last = now
            return None
        out: list[Event] = []
        self._due(device, dev, now, out)
        cleared = dev.slot.clear(now, {"reason": "data", "silent_s": now - dev.last})
        if cleared is not None:
            out.append(cleared)
        dev.offline = False
        dev.last = now
        return out

    def due(self, now: float, out: list[Event]) -> None:
        """Emit ``device-offline`` for every device silent for its interval by ``now``."""
        for device, dev in self._devices.items():
            self._due(device, dev, now, out)

    @staticmethod
    def _due(device: str, dev: _Device, now: float, out: list[Event]) -> None:
        if not dev.offline and now - dev.last >= dev.interval:
            data = {
                "device": device,
                "silent_s": dev.interval,
                "last_seen": dev.last,
                "expected_interval": dev.interval,
            }
            at = dev.last + dev.interval
            out.append(dev.slot.activate(EventKind.DEVICE_OFFLINE, Severity.TROUBLE, at, data))
            dev.offline = True
