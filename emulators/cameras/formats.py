"""Camera payloads as the real devices publish them: Frigate, Axis event bridge, generic.

Sans-I/O: every function returns :class:`~emulators.cameras.model.Message` objects (topic,
bytes, retain, QoS) and never touches a socket, so the formats are testable alone and a
driver's tests can build the same messages.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any, Literal

from emulators.cameras.model import Message

__all__ = [
    "FRAME",
    "OVERSIZE_BYTES",
    "AxisEvent",
    "FrigateObject",
    "axis_event",
    "axis_mqtt_topic",
    "dumps",
    "event_id",
    "frigate_available",
    "frigate_event",
    "frigate_snapshot",
    "generic_event",
    "generic_topic",
    "random_box",
]

FRAME = (1280, 720)
"""Detect resolution of every emulated Frigate camera (width, height)."""

OVERSIZE_BYTES = 300 * 1024
"""Padding in an oversize fault: above the 256 KiB many consumers cap payloads at."""

FRIGATE_THRESHOLD = 0.7
"""Frigate's default ``threshold``: a track whose top score stays below it is a false positive."""

_ID_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"


def dumps(obj: Any) -> bytes:
    """Compact JSON, as the devices send it."""
    return json.dumps(obj, separators=(",", ":")).encode()


def event_id(start_time: float, rng: random.Random) -> str:
    """Frigate's event id: ``"<epoch with 6 decimals>-<6 random lower-case chars>"``."""
    return f"{start_time:.6f}-{''.join(rng.choice(_ID_CHARS) for _ in range(6))}"


def random_box(rng: random.Random) -> list[int]:
    """An object box ``[x1, y1, x2, y2]`` inside the detect frame."""
    w = rng.randint(80, 400)
    h = rng.randint(120, 500)
    x1 = rng.randint(0, FRAME[0] - w)
    y1 = rng.randint(0, FRAME[1] - h)
    return [x1, y1, x1 + w, y1 + h]


def _region(box: list[int]) -> list[int]:
    """Frigate runs detection on a square region around the object, 32-pixel aligned."""
    side = min(FRAME[1], max(320, -(-int(max(box[2] - box[0], box[3] - box[1]) * 1.2) // 32) * 32))
    cx, cy = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
    x1 = min(max(0, cx - side // 2), FRAME[0] - side)
    y1 = min(max(0, cy - side // 2), FRAME[1] - side)
    return [x1, y1, x1 + side, y1 + side]


@dataclass
class FrigateObject:
    """A tracked object of one Frigate camera: what ``before``/``after`` describe."""

    id: str
    camera: str
    label: str
    start_time: float
    frame_time: float
    score: float
    box: list[int]
    top_score: float = 0.0
    current_zones: list[str] = field(default_factory=list)
    entered_zones: list[str] = field(default_factory=list)
    end_time: float | None = None
    position_changes: int = 0

    def __post_init__(self) -> None:
        self.top_score = max(self.top_score, self.score)

    def observe(
        self, frame_time: float, score: float, zones: list[str], box: list[int] | None
    ) -> None:
        """A new detection of the same object."""
        self.frame_time = frame_time
        self.score = score
        self.top_score = max(self.top_score, score)
        self.current_zones = list(zones)
        for zone in zones:
            if zone not in self.entered_zones:
                self.entered_zones.append(zone)
        if box is not None and box != self.box:
            self.box = box
            self.position_changes += 1

    def as_dict(self) -> dict[str, Any]:
        """The object as Frigate serialises it in ``frigate/events``."""
        w, h = self.box[2] - self.box[0], self.box[3] - self.box[1]
        return {
            "id": self.id,
            "camera": self.camera,
            "frame_time": round(self.frame_time, 6),
            "snapshot_time": round(self.frame_time, 6),
            "label": self.label,
            "sub_label": None,
            "top_score": round(self.top_score, 4),
            "false_positive": self.top_score < FRIGATE_THRESHOLD,
            "start_time": round(self.start_time, 6),
            "end_time": None if self.end_time is None else round(self.end_time, 6),
            "score": round(self.score, 4),
            "box": list(self.box),
            "area": w * h,
            "ratio": round(w / h, 4),
            "region": _region(self.box),
            "stationary": False,
            "motionless_count": 0,
            "position_changes": self.position_changes,
            "current_zones": list(self.current_zones),
            "entered_zones": list(self.entered_zones),
            "has_clip": True,
            "has_snapshot": True,
            "attributes": {},
            "current_attributes": [],
        }


def frigate_available(prefix: str, online: bool) -> Message:
    """``<prefix>/available``: ``online``/``offline``, retained (also the last will)."""
    return Message(f"{prefix}/available", b"online" if online else b"offline", retain=True, qos=1)


def frigate_event(
    prefix: str,
    kind: Literal["new", "update", "end"],
    before: dict[str, Any],
    after: dict[str, Any],
) -> Message:
    """``<prefix>/events``: not retained, QoS 0 (Frigate's default)."""
    return Message(f"{prefix}/events", dumps({"type": kind, "before": before, "after": after}))


def frigate_snapshot(prefix: str, camera: str, label: str, jpeg: bytes) -> Message:
    """``<prefix>/<camera>/<label>/snapshot``: raw JPEG bytes, retained."""
    return Message(f"{prefix}/{camera}/{label}/snapshot", jpeg, retain=True)


@dataclass(frozen=True)
class AxisEvent:
    """How an Axis camera reports one label: ONVIF topic, source, key, and data field."""

    topic: str
    source: dict[str, str]
    field: str
    extra: dict[str, str]


def _axis_for(label: str) -> AxisEvent:
    if label == "motion":
        return AxisEvent("onvif:Device/axis:Sensor/PIR", {"sensor": "0"}, "state", {})
    if label == "tamper":
        return AxisEvent("onvif:VideoSource/axis:Tampering", {"channel": "1"}, "tampering", {})
    if label == "person":
        return AxisEvent(
            "onvif:CameraApplicationPlatform/axis:ObjectAnalytics/Device1Scenario1",
            {},
            "active",
            {"classTypes": "human"},
        )
    # fire and smoke: a fire/smoke analytics application (ACAP) on the camera
    return AxisEvent(
        "onvif:CameraApplicationPlatform/axis:FireSmokeDetection/Camera1Profile1",
        {},
        "active",
        {"class": label},
    )


def axis_mqtt_topic(mac: str, onvif_topic: str) -> str:
    """``onvif:Device/axis:Sensor/PIR`` -> ``<MAC>/event/tns:onvif/Device/tns:axis/Sensor/PIR``.

    The event bridge with "include topic namespaces" turns each ``ns:Name`` level into
    ``tns:ns/Name``.
    """
    parts: list[str] = []
    for level in onvif_topic.split("/"):
        ns, sep, name = level.partition(":")
        parts.extend((f"tns:{ns}", name) if sep else (level,))
    return f"{mac}/event/" + "/".join(parts)


def axis_event(mac: str, label: str, active: bool, timestamp_ms: int, score: float) -> Message:
    """One stateful Axis event: ``"1"`` when it starts, ``"0"`` when it ends (strings)."""
    ev = _axis_for(label)
    data = {ev.field: "1" if active else "0", **ev.extra}
    if ev.field == "active" and label in ("fire", "smoke"):
        data["score"] = f"{score:.2f}"
    payload = {
        "timestamp": timestamp_ms,
        "topic": ev.topic,
        "message": {"source": dict(ev.source), "key": {}, "data": data},
    }
    return Message(axis_mqtt_topic(mac, ev.topic), dumps(payload))


def generic_topic(camera: str) -> str:
    return f"cameras/{camera}/event"


def generic_event(camera: str, label: str, score: float, time: float) -> Message:
    """Our Hikvision-style format: repeated while active, never cleared. QoS 1."""
    payload = {
        "camera": camera,
        "event": label,
        "state": "active",
        "score": round(score, 4),
        "time": round(time, 3),
    }
    return Message(generic_topic(camera), dumps(payload), qos=1)
