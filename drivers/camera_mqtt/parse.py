"""Camera messages, sans-I/O: (topic, payload bytes) -> a typed message or a typed error.

The three formats (Frigate, the Axis MQTT event bridge, our generic JSON) are specified in
``docs/drivers.md``. This module never touches a socket and keeps no state between
messages; :mod:`drivers.camera_mqtt.tracker` turns the results into events. It is written
from the documented formats, not from the emulator's builders, so a shared bug cannot
make the two agree.

Every rejected payload raises :class:`PayloadError` whose ``reason`` names the counter
it moves: ``oversize`` (bytes over the cap, checked before decoding), ``malformed`` (not
JSON), ``wrong_type`` (JSON whose shape or value types are not the format's),
``bad_snapshot`` (not a JPEG) and ``snapshot_oversize``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from drivers.camera_mqtt.config import LABELS, Format, Group, Label
from edgesdk.errors import ProtocolError

__all__ = [
    "Availability",
    "Detection",
    "Ignored",
    "Parsed",
    "Parser",
    "PayloadError",
    "Reason",
    "Snapshot",
    "is_jpeg",
    "subscriptions",
]

Reason = Literal["oversize", "malformed", "wrong_type", "bad_snapshot", "snapshot_oversize"]


class PayloadError(ProtocolError):
    """A payload the driver refuses; ``reason`` is the counter it moves."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason: Reason = reason


@dataclass(frozen=True, slots=True)
class Detection:
    """A camera reports that ``label`` started (``active``) or ended (``end``).

    ``ref`` is the device's identity of the occurrence: the Frigate event id,
    ``<MAC>:<label>`` (Axis) or ``<camera>:<label>`` (generic). ``score`` is the latest
    confidence in 0..1 (None when the device gives none), ``top_score`` Frigate's best.
    """

    group: int
    format: Format
    camera: str
    label: Label
    device_label: str
    active: bool
    ref: str
    score: float | None = None
    top_score: float | None = None
    zones: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Availability:
    """Frigate's ``<prefix>/available``: the NVR (all its cameras) online or offline."""

    group: int
    online: bool


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A Frigate snapshot: a JPEG of ``camera`` for ``label``."""

    group: int
    camera: str
    label: Label
    jpeg: bytes


@dataclass(frozen=True, slots=True)
class Ignored:
    """A valid message the driver has no use for (camera not allowed, label unmapped)."""

    why: str


Parsed: TypeAlias = Detection | Availability | Snapshot | Ignored


def is_jpeg(data: bytes) -> bool:
    """SOI at the start and EOI at the end, as every complete JPEG has."""
    return len(data) >= 4 and data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"


def subscriptions(group: Group) -> list[str]:
    """Topic filters of one group."""
    p = group.topic_prefix
    if group.format == "frigate":
        return [f"{p}/available", f"{p}/events", f"{p}/+/+/snapshot"]
    if group.format == "axis":
        return [f"{p}/+/event/#" if p else "+/event/#"]
    return [f"{p}/+/event"]


# -- typed field access: every miss is a wrong_type ------------------------------------
def _wrong(message: str) -> PayloadError:
    return PayloadError("wrong_type", message)


def _obj(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _wrong(f"{what} must be an object, not {type(value).__name__}")
    return value


def _str(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise _wrong(f"{key!r} must be a non-empty string, not {value!r:.40}")
    return value


def _opt_str(obj: Mapping[str, Any], key: str) -> str | None:
    return _str(obj, key) if key in obj else None


def _score(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _wrong(f"{key!r} must be a number in 0..1, not {value!r:.40}")
    if isinstance(value, int) and not 0 <= value <= 1:  # float() overflows beyond 1e308
        raise _wrong(f"{key!r} must be within 0..1 (got {value!r:.40})")
    score = float(value)
    if not (math.isfinite(score) and 0.0 <= score <= 1.0):
        raise _wrong(f"{key!r} must be within 0..1 (got {score})")
    return score


def _opt_score(obj: Mapping[str, Any], key: str) -> float | None:
    return None if obj.get(key) is None else _score(obj[key], key)


def _number(obj: Mapping[str, Any], key: str) -> None:
    value = obj.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _wrong(f"{key!r} must be a finite number, not {value!r:.40}")
    # an int is always finite (and math.isfinite would overflow on one beyond 1e308)
    if isinstance(value, float) and not math.isfinite(value):
        raise _wrong(f"{key!r} must be a finite number, not {value!r:.40}")


def _zones(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(z, str) and z for z in value):
        raise _wrong(f"zones must be a list of strings, not {value!r:.60}")
    return tuple(value)


class Parser:
    """Routes a topic to its group and parses the payload in that group's format."""

    def __init__(
        self, groups: Sequence[Group], *, max_payload_bytes: int, snapshot_max_bytes: int
    ) -> None:
        self.groups = tuple(groups)
        self.max_payload_bytes = max_payload_bytes
        self.snapshot_max_bytes = snapshot_max_bytes
        self._prefix_levels = [g.topic_prefix.split("/") if g.topic_prefix else [] for g in groups]
        self._labels: list[dict[str, Label]] = [
            {**{lb: lb for lb in LABELS}, **g.labels} for g in groups
        ]

    def filters(self) -> list[str]:
        """Every topic filter to subscribe to, in group order, without duplicates."""
        out: list[str] = []
        for group in self.groups:
            out += [f for f in subscriptions(group) if f not in out]
        return out

    def format_of(self, topic: str) -> Format | None:
        """The format of the first group whose topics ``topic`` belongs to."""
        routed = self._route(topic)
        return None if routed is None else self.groups[routed[0]].format

    def parse(self, topic: str, payload: bytes) -> Parsed:
        """One message -> what it says; raises :class:`PayloadError` for a bad payload."""
        routed = self._route(topic)
        if routed is None:
            return Ignored(f"no group subscribes to {topic!r}")
        index, rest = routed
        fmt = self.groups[index].format
        if fmt == "frigate":
            return self._frigate(index, rest, payload)
        if fmt == "axis":
            return self._axis(index, rest, payload)
        return self._generic(index, rest, payload)

    # -- routing ------------------------------------------------------------------------
    def _route(self, topic: str) -> tuple[int, list[str]] | None:
        levels = topic.split("/")
        for index, group in enumerate(self.groups):
            prefix = self._prefix_levels[index]
            if levels[: len(prefix)] != prefix:
                continue
            rest = levels[len(prefix) :]
            fmt = group.format
            if fmt == "frigate" and (
                rest in (["available"], ["events"])
                or (len(rest) == 3 and rest[2] == "snapshot" and rest[0] and rest[1])
            ):
                return index, rest
            if fmt == "axis" and len(rest) >= 3 and rest[0] and rest[1] == "event":
                return index, rest
            if fmt == "generic" and len(rest) == 2 and rest[0] and rest[1] == "event":
                return index, rest
        return None

    # -- shared steps -------------------------------------------------------------------
    def _json(self, payload: bytes) -> Any:
        if len(payload) > self.max_payload_bytes:
            raise PayloadError(
                "oversize", f"{len(payload)} bytes > max_payload_bytes {self.max_payload_bytes}"
            )
        try:
            return json.loads(payload)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
            raise PayloadError("malformed", f"not JSON: {exc}") from None

    def _camera(self, index: int, device: str) -> str | None:
        """The camera's name, or None when the group's allow-list leaves it out."""
        group = self.groups[index]
        name = group.names.get(device, device)
        if group.cameras is not None and name not in group.cameras:
            return None
        return name

    def _label(self, index: int, device_label: str) -> Label | None:
        return self._labels[index].get(device_label)

    def _zones_for(self, index: int, camera: str, own: tuple[str, ...]) -> tuple[str, ...]:
        return own or tuple(self.groups[index].zones.get(camera, ()))

    # -- Frigate ------------------------------------------------------------------------
    def _frigate(self, index: int, rest: list[str], payload: bytes) -> Parsed:
        if rest == ["available"]:
            if len(payload) > 64:
                raise PayloadError("oversize", f"{len(payload)} bytes on available")
            text = payload.strip()
            if text in (b"online", b"offline"):
                return Availability(index, text == b"online")
            raise _wrong(f"available must be online or offline, not {payload[:40]!r}")
        if rest[-1] == "snapshot":
            return self._snapshot(index, rest[0], rest[1], payload)
        body = _obj(self._json(payload), "payload")
        kind = body.get("type")
        if kind not in ("new", "update", "end"):
            raise _wrong(f"'type' must be new, update or end, not {kind!r:.40}")
        if "after" not in body:
            raise _wrong("'after' is missing")
        after = _obj(body["after"], "'after'")
        ref = _str(after, "id")
        device = _str(after, "camera")
        device_label = _str(after, "label")
        score = _score(after.get("score"), "score")
        top = _opt_score(after, "top_score")
        zones = _zones(after.get("current_zones"))
        camera = self._camera(index, device)
        label = self._label(index, device_label)
        if camera is None:
            return Ignored(f"camera {device!r} not in the allow-list")
        if label is None:
            return Ignored(f"label {device_label!r} not mapped")
        return Detection(
            group=index,
            format="frigate",
            camera=camera,
            label=label,
            device_label=device_label,
            active=kind != "end",
            ref=ref,
            score=score,
            top_score=top,
            zones=self._zones_for(index, camera, zones),
        )

    def _snapshot(self, index: int, device: str, device_label: str, payload: bytes) -> Parsed:
        if not payload:
            return Ignored("retained snapshot cleared")
        if len(payload) > self.snapshot_max_bytes:
            raise PayloadError(
                "snapshot_oversize",
                f"{len(payload)} bytes > snapshot_max_bytes {self.snapshot_max_bytes}",
            )
        if not is_jpeg(payload):
            raise PayloadError("bad_snapshot", f"not a JPEG (starts {payload[:4].hex()})")
        camera = self._camera(index, device)
        label = self._label(index, device_label)
        if camera is None:
            return Ignored(f"camera {device!r} not in the allow-list")
        if label not in ("fire", "smoke"):
            return Ignored(f"snapshots of {device_label!r} are not kept")
        return Snapshot(index, camera, label, payload)

    # -- Axis -----------------------------------------------------------------------------
    def _axis(self, index: int, rest: list[str], payload: bytes) -> Parsed:
        mac = rest[0]
        body = _obj(self._json(payload), "payload")
        _number(body, "timestamp")
        onvif = _str(body, "topic")
        message = _obj(body.get("message"), "'message'")
        for part in ("source", "key"):
            if part in message:
                _obj(message[part], f"'message.{part}'")
        data = _obj(message.get("data"), "'message.data'")
        for key, value in data.items():
            if not isinstance(value, str):
                raise _wrong(f"'message.data.{key}' must be a string, not {value!r:.40}")
        found = _axis_label(onvif, data)
        if found is None:
            return Ignored(f"Axis event {onvif!r} not used")
        device_label, field = found
        state = data.get(field)
        if state in ("1", "true"):
            active = True
        elif state in ("0", "false"):
            active = False
        else:
            raise _wrong(f"'message.data.{field}' must be '1' or '0', not {state!r:.40}")
        score: float | None = None
        if "score" in data:
            try:
                score = _score(float(data["score"]), "message.data.score")
            except ValueError:
                raise _wrong(
                    f"'message.data.score' is not a number: {data['score']!r:.40}"
                ) from None
        camera = self._camera(index, mac)
        label = self._label(index, device_label)
        if camera is None:
            return Ignored(f"camera {mac!r} not in the allow-list")
        if label is None:
            return Ignored(f"label {device_label!r} not mapped")
        return Detection(
            group=index,
            format="axis",
            camera=camera,
            label=label,
            device_label=device_label,
            active=active,
            ref=f"{mac}:{device_label}",
            score=score,
            zones=self._zones_for(index, camera, ()),
        )

    # -- generic --------------------------------------------------------------------------
    def _generic(self, index: int, rest: list[str], payload: bytes) -> Parsed:
        device = rest[0]
        body = _obj(self._json(payload), "payload")
        named = _opt_str(body, "camera")
        if named is not None and named != device:
            raise _wrong(f"'camera' {named!r} differs from the topic's {device!r}")
        device_label = _str(body, "event")
        state = body.get("state", "active")
        if state not in ("active", "inactive"):
            raise _wrong(f"'state' must be active or inactive, not {state!r:.40}")
        score = _opt_score(body, "score")
        _number(body, "time")
        zones = _zones(body.get("zones"))
        camera = self._camera(index, device)
        label = self._label(index, device_label)
        if camera is None:
            return Ignored(f"camera {device!r} not in the allow-list")
        if label is None:
            return Ignored(f"label {device_label!r} not mapped")
        return Detection(
            group=index,
            format="generic",
            camera=camera,
            label=label,
            device_label=device_label,
            active=state == "active",
            ref=f"{device}:{device_label}",
            score=score,
            zones=self._zones_for(index, camera, zones),
        )


def _axis_label(onvif: str, data: Mapping[str, str]) -> tuple[str, str] | None:
    """(device label, data field holding the state) of an Axis ONVIF topic, or None."""
    if onvif.endswith("axis:Sensor/PIR"):
        return "motion", "state"
    if onvif.endswith("VideoSource/MotionAlarm"):
        return "motion", "State"
    if onvif.endswith("VideoSource/axis:Tampering"):
        return "tamper", "tampering"
    if "axis:ObjectAnalytics/" in onvif:
        classes = data.get("classTypes", "human").split(",")
        return ("person", "active") if "human" in classes else None
    if "axis:FireSmokeDetection/" in onvif:
        if not data.get("class"):
            raise _wrong("'message.data.class' (fire or smoke) is missing")
        return data["class"], "active"
    return None
