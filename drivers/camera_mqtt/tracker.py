"""What the cameras said -> events: occurrences, updates, ends, offline cameras.

Sans-I/O and clock-free: every call takes ``now`` (monotonic seconds, for timeouts) and
``wall`` (epoch seconds, stamped on events), so the rules are tested with plain numbers.

Rules (``docs/drivers.md`` has them for users):

* one occurrence per device identity (Frigate event id; ``<MAC>:<label>`` for Axis;
  ``<camera>:<label>`` for generic): its ``active`` event, then ``cleared`` with the same id;
* fire and smoke start only at ``min_score``; while active, an update (``active`` again,
  same id) is emitted only when the best score first crosses one of ``score_thresholds``
  upwards, when the detection enters a zone not reported yet, or for the first snapshot
  after the start; every other update only refreshes the latest score and zones, so a
  camera cannot flood the gateway (at most ``len(thresholds) + zones + 1`` updates);
* generic events end after ``repeat_timeout`` without a repeat; Axis and generic person and
  motion ends wait ``info_clear_delay`` (a restart meanwhile continues the occurrence);
* Frigate ``offline`` -> ``camera-offline`` for every camera of that NVR, ``online`` ->
  cleared, and the NVR's detections from before are cleared (``reason: camera-restarted``):
  Frigate forgets its tracked objects when it restarts and never ends them;
* a group's ``silence_timeout`` -> ``camera-offline`` for a silent camera, cleared by its
  next message.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from drivers.camera_mqtt.config import Group, Label
from drivers.camera_mqtt.parse import Availability, Detection, Snapshot
from edgesdk.model import Event, EventKind, EventState, Severity

__all__ = ["MAX_TRACKED", "TRACKER_COUNTERS", "Tracker"]

MAX_TRACKED = 1024
"""Bound of every table (occurrences, cameras, snapshots): memory never grows past it."""

TRACKER_COUNTERS = (
    "occurrences",  # detections that started an occurrence (an active event)
    "updates",  # active repeats emitted (threshold, new zone, first snapshot)
    "updates_suppressed",  # updates that only refreshed score and zones
    "below_min_score",  # fire/smoke detections below min_score, not reported
    "unmatched_ends",  # ends of nothing active (started below min_score, or before us)
    "repeat_timeouts",  # generic events ended for want of a repeat
    "debounced",  # person/motion ends cancelled by a restart within info_clear_delay
    "restarted",  # detections cleared because their Frigate NVR came back
    "evicted",  # occurrences forgotten because MAX_TRACKED were active
    "camera_offline",  # camera-offline occurrences raised
)

_KINDS: dict[Label, tuple[EventKind, Severity]] = {
    "fire": (EventKind.CAMERA_FIRE, Severity.PREALARM),
    "smoke": (EventKind.CAMERA_SMOKE, Severity.PREALARM),
    "person": (EventKind.PERSON, Severity.INFO),
    "motion": (EventKind.MOTION, Severity.INFO),
    "tamper": (EventKind.TAMPER, Severity.TROUBLE),
}
_DETECTIONS = ("fire", "smoke")
_HELD = ("person", "motion")

_log = logging.getLogger(__name__)


@dataclass
class _Occurrence:
    event: Event  # the last emitted active event
    det: Detection  # the latest detection of it
    top: float
    band: int
    reported_zones: set[str]
    snapshot: str | None
    awaiting_snapshot: bool
    last_seen: float
    end_at: float | None = None  # held end (person/motion, Axis and generic)
    end_wall: float = 0.0


@dataclass
class _Offline:
    event: Event
    why: str  # "offline" (Frigate last will) or "silent"


class Tracker:
    """State of every camera of one driver instance (``source``)."""

    def __init__(
        self,
        source: str,
        groups: Sequence[Group],
        counters: Counter[str],
        *,
        min_score: float = 0.5,
        thresholds: Sequence[float] = (0.7, 0.9),
        repeat_timeout: float = 5.0,
        info_clear_delay: float = 2.0,
    ) -> None:
        self.source = source
        self.groups = tuple(groups)
        self.counters = counters
        self.min_score = min_score
        self.thresholds = tuple(thresholds)
        self.repeat_timeout = repeat_timeout
        self.info_clear_delay = info_clear_delay
        self._active: dict[tuple[int, str], _Occurrence] = {}
        self._offline: dict[tuple[int, str], _Offline] = {}
        self._snapshots: dict[tuple[int, str, str], str] = {}
        self._seen: dict[int, dict[str, None]] = {}  # ordered sets of camera names
        self._heard: dict[tuple[int, str], float] = {}  # silence supervision
        self._nvr_down: set[int] = set()

    def start(self, now: float) -> None:
        """Begin silence supervision of allow-listed cameras (groups with silence_timeout)."""
        for index, group in enumerate(self.groups):
            if group.silence_timeout is not None:
                for camera in group.cameras or ():
                    self._heard.setdefault((index, camera), now)

    # -- messages -----------------------------------------------------------------------
    def detection(self, det: Detection, now: float, wall: float) -> list[Event]:
        out = self._alive(det.group, det.camera, now, wall)
        key = (det.group, det.ref)
        occ = self._active.get(key)
        if not det.active:
            if occ is None:
                self.counters["unmatched_ends"] += 1
                return out
            occ.det = self._merge(occ.det, det)
            if det.label in _HELD and det.format != "frigate" and self.info_clear_delay > 0:
                if occ.end_at is None:
                    occ.end_at, occ.end_wall = now + self.info_clear_delay, wall
                return out
            return [*out, self._end(key, wall, "end")]
        if occ is None:
            started = self._start(key, det, now, wall)
            return out if started is None else [*out, started]
        occ.last_seen = now
        if occ.end_at is not None:
            occ.end_at = None
            self.counters["debounced"] += 1
        occ.det = self._merge(occ.det, det)
        emit = False
        if det.label in _DETECTIONS:
            occ.top = max(occ.top, _best(det))
            band = self._band(occ.top)
            if band > occ.band:
                occ.band, emit = band, True
            fresh = set(det.zones) - occ.reported_zones
            if fresh:
                occ.reported_zones |= fresh
                emit = True
        if not emit:
            self.counters["updates_suppressed"] += 1
            return out
        return [*out, self._update(occ, wall)]

    def snapshot(self, snap: Snapshot, digest: str, wall: float) -> list[Event]:
        """A new snapshot of a camera/label: kept; the first after a start is reported."""
        self._bounded_put(self._snapshots, (snap.group, snap.camera, snap.label), digest)
        self._see(snap.group, snap.camera)
        out: list[Event] = []
        for occ in self._active.values():
            d = occ.det
            if (d.group, d.camera, d.label) != (snap.group, snap.camera, snap.label):
                continue
            occ.snapshot = digest
            if occ.awaiting_snapshot:
                occ.awaiting_snapshot = False
                out.append(self._update(occ, wall))
        return out

    def availability(self, avail: Availability, wall: float) -> list[Event]:
        """Frigate's NVR went offline (every camera) or came back."""
        group = avail.group
        if not avail.online:
            self._nvr_down.add(group)
            cameras = list(self._cameras(group)) or [self.groups[group].topic_prefix]
            return [e for cam in cameras if (e := self._raise_offline(group, cam, "offline", wall))]
        out = [
            self._clear_offline(key, wall, "online")
            for key, off in list(self._offline.items())
            if key[0] == group and off.why == "offline"
        ]
        if group in self._nvr_down:
            self._nvr_down.discard(group)
            for key in [k for k in self._active if k[0] == group]:
                self.counters["restarted"] += 1
                out.append(self._end(key, wall, "camera-restarted"))
        return out

    # -- time ---------------------------------------------------------------------------
    def tick(self, now: float, wall: float) -> list[Event]:
        """Ends that are due (held ends, generic repeat timeouts), silent cameras."""
        out: list[Event] = []
        for key, occ in list(self._active.items()):
            if occ.end_at is not None and now >= occ.end_at:
                out.append(self._end(key, occ.end_wall, "end"))
            elif occ.det.format == "generic" and now - occ.last_seen >= self.repeat_timeout:
                self.counters["repeat_timeouts"] += 1
                out.append(self._end(key, wall, "no repeat"))
        for (group, camera), last in self._heard.items():
            limit = self.groups[group].silence_timeout
            if limit is not None and now - last >= limit and (group, camera) not in self._offline:
                raised = self._raise_offline(group, camera, "silent", wall)
                if raised is not None:
                    out.append(raised)
        return out

    def next_deadline(self) -> float | None:
        """Monotonic time of the next thing :meth:`tick` would do, or None."""
        times = [o.end_at for o in self._active.values() if o.end_at is not None]
        times += [
            o.last_seen + self.repeat_timeout
            for o in self._active.values()
            if o.det.format == "generic"
        ]
        for (group, camera), last in self._heard.items():
            limit = self.groups[group].silence_timeout
            if limit is not None and (group, camera) not in self._offline:
                times.append(last + limit)
        return min(times, default=None)

    @property
    def active(self) -> list[Event]:
        """The active event of every ongoing occurrence (detections and offline cameras)."""
        return [o.event for o in self._active.values()] + [o.event for o in self._offline.values()]

    # -- internals ----------------------------------------------------------------------
    def _start(self, key: tuple[int, str], det: Detection, now: float, wall: float) -> Event | None:
        if det.label in _DETECTIONS and _best(det) < self.min_score:
            self.counters["below_min_score"] += 1
            return None
        kind, severity = _KINDS[det.label]
        top = _best(det)
        occ = _Occurrence(
            event=Event(kind, severity, EventState.ACTIVE, self.source, wall),
            det=det,
            top=top,
            band=self._band(top),
            reported_zones=set(det.zones),
            snapshot=None,
            awaiting_snapshot=det.label in _DETECTIONS,
            last_seen=now,
        )
        if det.label in _DETECTIONS:
            occ.snapshot = self._snapshots.get((det.group, det.camera, det.label))
        occ.event = Event(kind, severity, EventState.ACTIVE, self.source, wall, self._data(occ))
        if len(self._active) >= MAX_TRACKED:
            old_key = next(iter(self._active))
            del self._active[old_key]
            self.counters["evicted"] += 1
            _log.warning("%s: too many active detections, forgetting %s", self.source, old_key)
        self._active[key] = occ
        self._see(det.group, det.camera)
        self.counters["occurrences"] += 1
        return occ.event

    def _update(self, occ: _Occurrence, wall: float) -> Event:
        occ.event = occ.event.with_state(EventState.ACTIVE, time=wall, data=self._data(occ))
        self.counters["updates"] += 1
        return occ.event

    def _end(self, key: tuple[int, str], wall: float, reason: str) -> Event:
        occ = self._active.pop(key)
        return occ.event.with_state(
            EventState.CLEARED, time=wall, data={**self._data(occ), "reason": reason}
        )

    def _data(self, occ: _Occurrence) -> dict[str, Any]:
        d = occ.det
        data: dict[str, Any] = {
            "camera": d.camera,
            "label": d.device_label,
            "zones": list(d.zones),
            "format": d.format,
            "ref": d.ref,
        }
        if d.score is not None:
            data["score"] = round(d.score, 4)
            data["top_score"] = round(occ.top, 4)
        if occ.snapshot is not None:
            data["snapshot"] = occ.snapshot
        return data

    def _band(self, score: float) -> int:
        return sum(1 for t in self.thresholds if score >= t)

    @staticmethod
    def _merge(old: Detection, new: Detection) -> Detection:
        """The newer detection, keeping the older zones and score when it has none."""
        if new.score is None or not new.zones:
            return replace(
                new,
                score=new.score if new.score is not None else old.score,
                zones=new.zones or old.zones,
            )
        return new

    def _cameras(self, group: int) -> list[str]:
        listed = self.groups[group].cameras
        return list(listed) if listed is not None else list(self._seen.get(group, {}))

    def _see(self, group: int, camera: str) -> None:
        seen = self._seen.setdefault(group, {})
        if camera not in seen and len(seen) < MAX_TRACKED:
            seen[camera] = None

    def _alive(self, group: int, camera: str, now: float, wall: float) -> list[Event]:
        """A message from ``camera``: it is not silent (clears a silence camera-offline)."""
        if self.groups[group].silence_timeout is None:
            return []
        key = (group, camera)
        if key in self._heard or len(self._heard) < MAX_TRACKED:
            self._heard[key] = now
        off = self._offline.get(key)
        if off is not None and off.why == "silent":
            return [self._clear_offline(key, wall, "heard")]
        return []

    def _raise_offline(self, group: int, camera: str, why: str, wall: float) -> Event | None:
        key = (group, camera)
        if key in self._offline or len(self._offline) >= MAX_TRACKED:
            return None
        g = self.groups[group]
        data: dict[str, Any] = {"camera": camera, "format": g.format, "reason": why}
        if why == "silent" and g.silence_timeout is not None:
            data["seconds"] = g.silence_timeout
        event = Event(EventKind.CAMERA_OFFLINE, Severity.TROUBLE, EventState.ACTIVE, self.source,
                      wall, data)  # fmt: skip
        self._offline[key] = _Offline(event, why)
        self.counters["camera_offline"] += 1
        return event

    def _clear_offline(self, key: tuple[int, str], wall: float, reason: str) -> Event:
        off = self._offline.pop(key)
        return off.event.with_state(EventState.CLEARED, time=wall, data={"reason": reason})

    @staticmethod
    def _bounded_put(table: dict[tuple[int, str, str], str], key: tuple[int, str, str],
                     value: str) -> None:  # fmt: skip
        table.pop(key, None)
        table[key] = value
        if len(table) > MAX_TRACKED:
            del table[next(iter(table))]


def _best(det: Detection) -> float:
    """The best confidence a detection claims; a device giving none is trusted (1.0)."""
    if det.score is None and det.top_score is None:
        return 1.0
    return max(det.score or 0.0, det.top_score or 0.0)
