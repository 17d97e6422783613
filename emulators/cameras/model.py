"""What the camera emulator is made of: cameras, faults, published messages, counters.

Plain data, no I/O, shared by the payload formats, the scenarios and the emulator.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

from edgesdk.errors import ConfigError

__all__ = [
    "AXIS_LABELS",
    "DEFAULT_CAMERAS",
    "LABELS",
    "CameraSpec",
    "Counters",
    "Fault",
    "Kind",
    "Message",
]


class Kind(StrEnum):
    """How a camera talks MQTT."""

    FRIGATE = "frigate"  # a camera behind a Frigate NVR (frigate/events, snapshots)
    AXIS = "axis"  # an Axis camera's MQTT event bridge (<MAC>/event/tns:onvif/...)
    GENERIC = "generic"  # our documented Hikvision-style JSON (cameras/<id>/event)


LABELS: tuple[str, ...] = ("person", "fire", "smoke", "car", "motion", "tamper")
"""Labels the emulator knows; fire-detection models add ``fire`` and ``smoke``."""

AXIS_LABELS: tuple[str, ...] = ("person", "fire", "smoke", "motion", "tamper")
"""What an Axis camera can report (object analytics, fire/smoke ACAP, PIR, tampering)."""

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_MAC = re.compile(r"^[0-9A-F]{12}$")


class Fault(StrEnum):
    """Misbehaviour the emulator can inject, as broken cameras and bridges do."""

    MALFORMED_JSON = "malformed-json"  # truncated JSON on an event topic
    WRONG_TYPES = "wrong-types"  # score as a string, missing "after", timestamp as text
    OVERSIZE = "oversize"  # a syntactically valid event larger than 256 KiB
    FLOOD = "flood"  # a bounded burst of many events per second


@dataclass(frozen=True)
class CameraSpec:
    """One emulated camera.

    ``id`` is the Frigate camera name / generic camera id; ``mac`` is the Axis serial
    (12 upper-case hex digits) used as its topic prefix; ``zones`` are the zones its
    detections fall in by default.
    """

    id: str
    kind: Kind
    zones: tuple[str, ...] = ()
    mac: str | None = None

    def __post_init__(self) -> None:
        if not _ID.match(self.id):
            raise ConfigError(
                f"bad camera id {self.id!r}",
                key="cameras.id",
                fix="lower-case letters, digits, '_' or '-', at most 63 characters",
            )
        if self.kind is Kind.AXIS and (self.mac is None or not _MAC.match(self.mac)):
            raise ConfigError(
                f"Axis camera {self.id!r} needs mac as 12 upper-case hex digits (got {self.mac!r})",
                key="cameras.mac",
                fix="for example ACCC8E012345",
            )


DEFAULT_CAMERAS: tuple[CameraSpec, ...] = (
    CameraSpec("lobby", Kind.FRIGATE, zones=("lobby",)),
    CameraSpec("stairwell_b", Kind.FRIGATE, zones=("stairs",)),
    CameraSpec("loading_dock", Kind.AXIS, zones=("dock",), mac="ACCC8E012345"),
    CameraSpec("plant_room", Kind.GENERIC, zones=("plant",)),
)


@dataclass(frozen=True)
class Message:
    """One MQTT publication, as the camera would send it (sans-I/O)."""

    topic: str
    payload: bytes
    retain: bool = False
    qos: int = 0


@dataclass
class Counters:
    """What was published, for tests and the demo's dashboards."""

    messages: int = 0
    bytes: int = 0
    errors: int = 0  # publications that failed (broker gone)
    suppressed: int = 0  # publications skipped because the camera was offline
    by_topic: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)  # "frigate:new", "axis:fire"...
    faults: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        return {
            "messages": self.messages,
            "bytes": self.bytes,
            "errors": self.errors,
            "suppressed": self.suppressed,
            "by_topic": dict(self.by_topic),
            "events": dict(self.events),
            "faults": dict(self.faults),
        }
