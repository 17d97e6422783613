"""The camera-mqtt driver's options, validated by :mod:`edgesdk.configmodel`.

Every field says its valid range in ``description``: :func:`edgesdk.config.parse` quotes it
as the fix when a value is refused, so the range text is part of the error message.
"""

from __future__ import annotations

import re
from typing import Literal, Self
from urllib.parse import urlsplit

from edgesdk.config import ConfigModel, Field, ValidationInfo, field_validator, model_validator
from edgesdk.driver import DriverConfig

__all__ = [
    "DEFAULT_PREFIX",
    "FORMATS",
    "LABELS",
    "CameraMqttConfig",
    "Format",
    "Group",
    "Label",
    "broker_address",
]

Format = Literal["frigate", "axis", "generic"]
FORMATS: tuple[Format, ...] = ("frigate", "axis", "generic")

Label = Literal["fire", "smoke", "person", "motion", "tamper"]
LABELS: tuple[Label, ...] = ("fire", "smoke", "person", "motion", "tamper")
"""What the driver reports; a device label maps to one of these or is ignored."""

DEFAULT_PREFIX: dict[str, str] = {"frigate": "frigate", "axis": "", "generic": "cameras"}
"""Topic prefix of a group that names none (Axis: the camera's MAC is the first level)."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


def _check_prefix(prefix: str) -> str:
    if any(c in prefix for c in "+#\0") or prefix.startswith("/") or prefix.endswith("/"):
        raise ValueError("must not contain + # or NUL, nor start or end with /")
    if prefix and "" in prefix.split("/"):
        raise ValueError("must not contain empty levels (//)")
    return prefix


class Group(ConfigModel):
    """Cameras speaking one format under one topic prefix."""

    format: Format = Field(description="payload format: frigate, axis or generic")
    prefix: str | None = Field(
        default=None,
        max_length=200,
        description=(
            "topic prefix without trailing /, no + or #; default frigate (frigate), "
            "cameras (generic), empty (axis: topics start with the camera's MAC)"
        ),
    )
    cameras: list[str] | None = Field(
        default=None,
        max_length=1024,
        description=(
            "allow-list of camera names (after names mapping); messages of other cameras "
            "are ignored; omitted: every camera; at most 1024"
        ),
    )
    zones: dict[str, list[str]] = Field(
        default_factory=dict,
        description=(
            "camera name -> site zones, used when a detection carries no zones of its own "
            "(Axis and generic never do)"
        ),
    )
    names: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "device id -> camera name reported in events, e.g. an Axis MAC ACCC8E012345 -> "
            "loading_dock; names use A-Z a-z 0-9 _ . : - (at most 63 characters)"
        ),
    )
    labels: dict[str, Label] = Field(
        default_factory=dict,
        description=(
            "extra device label -> fire, smoke, person, motion or tamper (e.g. flame = "
            "'fire'); those five map to themselves, any other label is ignored"
        ),
    )
    silence_timeout: float | None = Field(
        default=None,
        ge=1.0,
        le=86400.0,
        description=(
            "axis and generic only: seconds without any message from a camera before it "
            "is camera-offline, 1..86400; omitted: off (only for cameras that publish "
            "heartbeats: Axis events are sent on change only)"
        ),
    )

    @field_validator("prefix")
    @classmethod
    def _prefix_ok(cls, value: str | None) -> str | None:
        return None if value is None else _check_prefix(value)

    @field_validator("names")
    @classmethod
    def _names_ok(cls, value: dict[str, str]) -> dict[str, str]:
        for raw, name in value.items():
            if not raw or not _NAME.match(name):
                raise ValueError(f"bad camera name {name!r} for {raw!r}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.format != "axis" and self.prefix == "":
            raise ValueError(f"a {self.format} group needs a non-empty prefix")
        if self.format == "frigate" and self.silence_timeout is not None:
            raise ValueError(
                "silence_timeout is for axis and generic groups; Frigate's last will on "
                "<prefix>/available reports an offline NVR"
            )
        return self

    @property
    def topic_prefix(self) -> str:
        """The prefix in force (the format's default when none is set)."""
        return DEFAULT_PREFIX[self.format] if self.prefix is None else self.prefix


def _default_groups() -> list[Group]:
    return [Group(format=f) for f in FORMATS]


def broker_address(url: str) -> tuple[str, int, bool]:
    """``mqtt://host[:port]`` / ``mqtts://host[:port]`` -> (host, port, tls)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError("scheme must be mqtt:// or mqtts://")
    if not parts.hostname:
        raise ValueError("names no host")
    if parts.username or parts.password:
        raise ValueError("must not hold credentials: use username and password")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("must not have a path, query or fragment")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"bad port: {exc}") from None
    tls = parts.scheme == "mqtts"
    return parts.hostname, port or (8883 if tls else 1883), tls


class CameraMqttConfig(DriverConfig):
    """Where the broker is, which cameras to listen to, and how to judge them."""

    broker: str = Field(
        description=(
            "broker URL mqtt://host[:port] (default port 1883) or mqtts://host[:port] "
            "(8883), no path or credentials"
        ),
    )
    protocol: Literal["3.1.1", "5"] = Field(
        default="3.1.1",
        description="MQTT version, 3.1.1 or 5 (the embedded broker speaks only 3.1.1)",
    )
    client_id: str | None = Field(
        default=None,
        description=(
            "stable MQTT client id of the persistent session, 1..64 of A-Z a-z 0-9 _ . : -; "
            "default edgesdk-<hostname>-<instance>"
        ),
    )
    username: str | None = Field(
        default=None, description="broker user name, if the broker wants one"
    )
    password: str | None = Field(default=None, description="broker password (with username)")
    ca: str | None = Field(default=None, description="mqtts only: CA certificate file (PEM)")
    cert: str | None = Field(default=None, description="mqtts only: client certificate file (PEM)")
    key: str | None = Field(default=None, description="mqtts only: client private key file (PEM)")
    qos: int = Field(default=1, ge=0, le=2, description="subscription QoS, 0..2")
    keepalive: int = Field(
        default=30, ge=5, le=3600, description="MQTT keepalive in seconds, 5..3600"
    )
    connect_timeout: float = Field(
        default=10.0,
        gt=0.0,
        le=120.0,
        description="seconds to connect and subscribe, > 0 and <= 120",
    )
    session_expiry: int = Field(
        default=3600,
        ge=0,
        le=4_294_967_295,
        description=(
            "MQTT 5 only: seconds the broker keeps the session (and queued QoS 1 "
            "messages) while the driver is away, 0..4294967295"
        ),
    )
    reconnect_min: float = Field(
        default=0.5, ge=0.01, le=60.0, description="first reconnect delay in seconds, 0.01..60"
    )
    reconnect_max: float = Field(
        default=30.0,
        ge=0.01,
        le=3600.0,
        description=(
            "cap in seconds on the reconnect delay (doubles from reconnect_min, jittered), "
            "0.01..3600 and >= reconnect_min"
        ),
    )
    groups: list[Group] = Field(
        default_factory=_default_groups,
        min_length=1,
        max_length=64,
        description=(
            "1..64 camera groups {format, prefix, cameras, zones, names, labels, "
            "silence_timeout}; default one group per format with its default prefix"
        ),
    )
    min_score: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="fire and smoke detections scoring below this are ignored, 0..1",
    )
    score_thresholds: list[float] = Field(
        default_factory=lambda: [0.7, 0.9],
        max_length=10,
        description=(
            "scores in 0..1 (at most 10) whose first crossing (upwards) by an active fire or "
            "smoke detection is reported as an update; other score changes are not"
        ),
    )
    repeat_timeout: float = Field(
        default=5.0,
        ge=0.1,
        le=3600.0,
        description=(
            "generic format: seconds without a repeat after which an event ends, 0.1..3600"
        ),
    )
    info_clear_delay: float = Field(
        default=2.0,
        ge=0.0,
        le=600.0,
        description=(
            "person and motion: seconds an end waits for a restart, which then continues "
            "the same occurrence (debounces flapping sensors), 0..600"
        ),
    )
    max_payload_bytes: int = Field(
        default=65536,
        ge=256,
        le=16 * 1024 * 1024,
        description="largest JSON payload accepted, bytes, 256..16777216",
    )
    snapshot_max_bytes: int = Field(
        default=262144,
        ge=1024,
        le=16 * 1024 * 1024,
        description="largest snapshot JPEG kept, bytes, 1024..16777216",
    )
    snapshot_cache: int = Field(
        default=32,
        ge=0,
        le=4096,
        description="snapshots kept for get_blob (least recently used go)",
    )
    queue_size: int = Field(
        default=1000,
        ge=10,
        le=100_000,
        description="messages buffered between the broker and stream(), 10..100000",
    )

    @field_validator("broker")
    @classmethod
    def _broker_ok(cls, value: str) -> str:
        broker_address(value)
        return value

    @field_validator("client_id")
    @classmethod
    def _client_id_ok(cls, value: str | None) -> str | None:
        if value is not None and not _CLIENT_ID.match(value):
            raise ValueError("must be 1..64 of A-Z a-z 0-9 _ . : - (starting with a letter/digit)")
        return value

    @field_validator("score_thresholds")
    @classmethod
    def _thresholds_ok(cls, value: list[float]) -> list[float]:
        if any(not 0.0 < v <= 1.0 for v in value):
            raise ValueError("every threshold must be > 0 and <= 1")
        return sorted(set(value))

    @field_validator("reconnect_max")
    @classmethod
    def _cap_above_floor(cls, value: float, info: ValidationInfo) -> float:
        floor = info.data.get("reconnect_min")
        if floor is not None and value < floor:
            raise ValueError(f"must be >= reconnect_min ({floor})")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _, _, tls = broker_address(self.broker)
        if not tls and (self.ca or self.cert or self.key):
            raise ValueError("ca, cert and key need an mqtts:// broker")
        if (self.cert is None) != (self.key is None):
            raise ValueError("cert and key go together")
        if self.password is not None and self.username is None:
            raise ValueError("password needs a username")
        seen: set[tuple[str, str]] = set()
        for group in self.groups:
            ident = (group.format, group.topic_prefix)
            if ident in seen:
                raise ValueError(f"two {group.format} groups share prefix {group.topic_prefix!r}")
            seen.add(ident)
        return self
