"""Cross-check: a camera and a fire panel seeing fire in the same zone (practice).

Command centres trust a fire that two independent systems report far more than either
alone: a video smoke/flame detection can be steam or a reflection, a single detector can be
dirty. ``RulesConfig.zones`` maps a site zone to its sources (``ZoneMap``): the panel device
and its zone numbers, the cameras and their zone names.

* A **panel detection** is a ``prealarm``, ``fire`` or ``zone-fire`` event from the zone's
  ``panel`` device whose ``zone`` is in ``panel_zones`` (any zone when the list is empty).
  ``ZoneMap`` has no panel unit, so zone numbers must be unique per panel device.
* A **camera detection** is a ``camera-smoke`` or ``camera-fire`` event whose ``camera`` is in
  ``cameras`` (by name or ``<device>/<camera>``) and whose ``zones`` meet ``camera_zones``;
  an empty list matches anything, but a zone with neither list matches no camera.
* A panel and a camera detection whose times are within ``crosscheck_window`` seconds of
  each other, in either order -> ``corroborated-fire`` / ``fire`` active, naming both (their
  event ids, devices, kinds, the camera and the panel zone), stamped at the later of the
  two. A detection repeated as ``active`` with the same id counts from its latest time.
* **Once per zone occurrence**: while it is ongoing, further detections in the zone join
  it. It clears when every detection in the zone, on both sides, has cleared.

Detections are remembered until their source clears them, at most :data:`MAX_DETECTIONS`
per zone and side (the oldest is forgotten first), so a source that never clears cannot
grow memory without bound.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from edgesdk.model import Event, EventKind, EventState, Severity
from gateway.config import RulesConfig, ZoneMap
from gateway.rules.occurrence import Registry, Slot, at_or_before

__all__ = ["CAMERA_KINDS", "MAX_DETECTIONS", "PANEL_KINDS", "CrossCheck"]

PANEL_KINDS = frozenset({EventKind.PREALARM, EventKind.FIRE, EventKind.ZONE_FIRE})
CAMERA_KINDS = frozenset({EventKind.CAMERA_SMOKE, EventKind.CAMERA_FIRE})
MAX_DETECTIONS = 256


class _Hit(NamedTuple):
    time: float
    device: str
    event: Event


def _zone_number(value: object) -> int | None:
    if type(value) is int:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


class _Zone:
    __slots__ = (
        "camera_hits",
        "camera_zones",
        "cameras",
        "name",
        "panel",
        "panel_hits",
        "panel_zones",
        "slot",
    )

    def __init__(self, name: str, spec: ZoneMap, registry: Registry) -> None:
        self.name = name
        self.panel = spec.panel
        self.panel_zones = frozenset(spec.panel_zones)
        self.cameras = frozenset(spec.cameras)
        self.camera_zones = frozenset(spec.camera_zones)
        self.panel_hits: dict[str, _Hit] = {}
        self.camera_hits: dict[str, _Hit] = {}
        self.slot = Slot(registry)

    def sees_panel(self, data: Mapping[str, Any]) -> bool:
        return not self.panel_zones or _zone_number(data.get("zone")) in self.panel_zones

    def sees_camera(self, device: str, data: Mapping[str, Any]) -> bool:
        if not self.cameras and not self.camera_zones:
            return False
        camera = data.get("camera")
        if self.cameras and (
            not isinstance(camera, str)
            or (camera not in self.cameras and f"{device}/{camera}" not in self.cameras)
        ):
            return False
        if self.camera_zones:
            zones = data.get("zones")
            if not isinstance(zones, list | tuple) or self.camera_zones.isdisjoint(
                z for z in zones if isinstance(z, str)
            ):
                return False
        return True


class CrossCheck:
    """Corroborates panel and camera detections per configured zone."""

    __slots__ = ("_by_panel", "_camera_zones", "_window", "_zones")

    def __init__(self, config: RulesConfig, registry: Registry) -> None:
        self._window = config.crosscheck_window
        self._zones = [_Zone(name, spec, registry) for name, spec in config.zones.items()]
        self._by_panel: dict[str, list[_Zone]] = {}
        for zone in self._zones:
            if zone.panel is not None:
                self._by_panel.setdefault(zone.panel, []).append(zone)
        self._camera_zones = [z for z in self._zones if z.cameras or z.camera_zones]

    def event(self, device: str, event: Event, now: float, out: list[Event]) -> None:
        """A driver event from ``device``; only detections (see module doc) matter."""
        kind = event.kind
        if kind in PANEL_KINDS:
            candidates: list[_Zone] = self._by_panel.get(device, [])
            panel = True
        elif kind in CAMERA_KINDS:
            candidates = self._camera_zones
            panel = False
        else:
            return
        t = at_or_before(event.time, now)
        if event.state is EventState.CLEARED:
            # by id in every candidate zone: a clear may not repeat the zones of the detection
            for zone in candidates:
                self._gone(zone, panel, event.id, t, out)
            return
        if event.state is not EventState.ACTIVE:
            return
        hit = _Hit(t, device, event)
        for zone in candidates:
            if zone.sees_panel(event.data) if panel else zone.sees_camera(device, event.data):
                self._detected(zone, panel, hit, now, out)

    def _detected(self, zone: _Zone, panel: bool, hit: _Hit, now: float, out: list[Event]) -> None:
        mine, theirs = (
            (zone.panel_hits, zone.camera_hits) if panel else (zone.camera_hits, zone.panel_hits)
        )
        mine.pop(hit.event.id, None)  # a repeat moves to the end (newest)
        mine[hit.event.id] = hit
        if len(mine) > MAX_DETECTIONS:
            del mine[next(iter(mine))]
        if zone.slot.on:
            return
        best: _Hit | None = None
        for other in theirs.values():
            gap = abs(other.time - hit.time)
            if gap <= self._window and (best is None or gap < abs(best.time - hit.time)):
                best = other
        if best is None:
            return
        p, c = (hit, best) if panel else (best, hit)
        data: dict[str, Any] = {
            "device": p.device,
            "zone": zone.name,
            "panel_event": p.event.id,
            "panel_device": p.device,
            "panel_kind": str(p.event.kind),
            "camera_event": c.event.id,
            "camera_device": c.device,
            "camera_kind": str(c.event.kind),
        }
        panel_zone = _zone_number(p.event.data.get("zone"))
        if panel_zone is not None:
            data["panel_zone"] = panel_zone
        camera = c.event.data.get("camera")
        if isinstance(camera, str):
            data["camera"] = camera
        time = min(max(p.time, c.time), now)
        out.append(zone.slot.activate(EventKind.CORROBORATED_FIRE, Severity.FIRE, time, data))

    @staticmethod
    def _gone(zone: _Zone, panel: bool, event_id: str, t: float, out: list[Event]) -> None:
        gone = (zone.panel_hits if panel else zone.camera_hits).pop(event_id, None)
        if gone is not None and zone.slot.on and not zone.panel_hits and not zone.camera_hits:
            cleared = zone.slot.clear(t, {"reason": "sources cleared"})
            if cleared is not None:
                out.append(cleared)
