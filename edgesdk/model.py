"""The data model: immutable, typed readings and events.

A :class:`Reading` is one measured value of one device at one time (it becomes one SenML
record on the wire). An :class:`Event` is a change of a condition: a fire at a detector, a
firefighter who stopped moving, a camera that went offline. The event kinds are documented
in ``docs/events.md``.
"""

from __future__ import annotations

import enum
import math
import re
import time as _time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeAlias

__all__ = [
    "DataValue",
    "Event",
    "EventKind",
    "EventState",
    "Item",
    "RawItem",
    "Reading",
    "ReadingBlock",
    "ReadingLayout",
    "Severity",
    "Value",
    "new_event_id",
]

Value: TypeAlias = float | int | bool | str | bytes
"""What a reading may hold (SenML v, vb, vs, vd)."""

DataValue: TypeAlias = bool | int | float | str | bytes | list[Any] | dict[str, Any] | None
"""What an event's ``data`` may hold: CBOR-encodable plain values."""

# Device ids and reading names become SenML names ("<device>/<name>"), whose characters
# RFC 8428 section 4.5.1 limits to A-Z a-z 0-9 - : . / _ and which must start with a
# letter or digit. Device ids may not contain "/" so the split is unambiguous.
# The longest full SenML name ("<device>/<name>") consumers accept (edgesdk.senml).
MAX_NAME_LENGTH = 256
_DEVICE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-:._]*$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-:./_]*$")


class Severity(enum.StrEnum):
    """Event severities, most urgent first.

    ``fire`` and ``alarm`` are life safety (``alarm`` covers man-down and distress);
    everything from ``fire`` to ``trouble`` travels in the alarm lane.
    """

    FIRE = "fire"
    ALARM = "alarm"
    PREALARM = "prealarm"
    SUPERVISORY = "supervisory"
    TROUBLE = "trouble"
    INFO = "info"

    @property
    def rank(self) -> int:
        """0 for the most urgent (fire), 5 for info."""
        return _RANK[self]

    @property
    def is_alarm_lane(self) -> bool:
        """True for the severities sealed and delivered first (all but info)."""
        return self is not Severity.INFO

    def __lt__(self, other: object) -> bool:  # more urgent sorts first
        if not isinstance(other, Severity):
            return NotImplemented
        return _RANK[self] < _RANK[other]

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return _RANK[self] <= _RANK[other]

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return _RANK[self] > _RANK[other]

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return _RANK[self] >= _RANK[other]


_RANK: dict[Severity, int] = {s: i for i, s in enumerate(Severity)}


class EventState(enum.StrEnum):
    """Where a condition stands: raised, gone, or seen by a person."""

    ACTIVE = "active"
    CLEARED = "cleared"
    ACKNOWLEDGED = "acknowledged"


class EventKind(enum.StrEnum):
    """The event kinds the bundled drivers and rules emit (see ``docs/events.md``).

    ``Event.kind`` is a plain string so third-party drivers can add their own kinds; these
    are the documented ones.
    """

    # fire panels
    FIRE = "fire"
    PREALARM = "prealarm"
    POINT_TROUBLE = "point-trouble"
    SUPERVISORY = "supervisory"
    POINT_DISABLED = "point-disabled"
    ZONE_FIRE = "zone-fire"
    MAINS_FAIL = "mains-fail"
    BATTERY_FAULT = "battery-fault"
    EARTH_FAULT = "earth-fault"
    SILENCED = "silenced"
    PANEL_TEST = "panel-test"
    # devices and links
    DEVICE_OFFLINE = "device-offline"
    HEARTBEAT_STUCK = "heartbeat-stuck"
    RECEIVER_FAULT = "receiver-fault"
    # firefighters
    MAN_DOWN = "man-down"
    DISTRESS = "distress"
    FALL = "fall"
    BEACON_ALARM = "beacon-alarm"
    THERMAL = "thermal"
    LOW_AIR = "low-air"
    HEART_RATE = "heart-rate"
    SKIN_TEMPERATURE = "skin-temperature"
    AMBIENT_HEAT = "ambient-heat"
    LOST_CONTACT = "lost-contact"
    BEACON_JOINED = "beacon-joined"
    # cameras
    CAMERA_FIRE = "camera-fire"
    CAMERA_SMOKE = "camera-smoke"
    PERSON = "person"
    MOTION = "motion"
    TAMPER = "tamper"
    CAMERA_OFFLINE = "camera-offline"
    # gateway
    CORROBORATED_FIRE = "corroborated-fire"
    STORE_PRESSURE = "store-pressure"


def new_event_id() -> str:
    """A fresh, globally unique event id (UUID4, 32 hex digits)."""
    return uuid.uuid4().hex


# Integers a reading may hold: CBOR's major types 0 and 1 (a bigger one would need a bignum
# tag, which batch decoders refuse).
_INT_LIMIT = 2**64

_VALID_NAMES: set[tuple[str, str]] = set()
_VALID_NAMES_MAX = 65_536


def _check_names(device: str, name: str) -> None:
    if not (isinstance(device, str) and isinstance(name, str)):
        raise TypeError("reading device and name must be strings")
    if len(device) + 1 + len(name) > MAX_NAME_LENGTH:
        raise ValueError(
            f"reading {device}/{name[:40]}...: the full name must be at most "
            f"{MAX_NAME_LENGTH} characters (consumers refuse longer SenML names)"
        )
    if not _DEVICE_RE.fullmatch(device):
        raise ValueError(
            f"device id {device!r} must start with a letter or digit and use only "
            "A-Z a-z 0-9 - : . _"
        )
    if not _NAME_RE.fullmatch(name):
        raise ValueError(
            f"reading name {name!r} must start with a letter or digit and use only "
            "A-Z a-z 0-9 - : . / _"
        )


def _check_value(value: object) -> None:
    """What a reading may hold (see :data:`Value`): finite floats, 64-bit ints."""
    if type(value) is float and not math.isfinite(value):
        raise ValueError(f"reading value must be finite, not {value}")
    if type(value) is int and not -_INT_LIMIT <= value < _INT_LIMIT:
        raise ValueError(f"reading value {value} is beyond CBOR's 64-bit integers")
    if not isinstance(value, float | int | bool | str | bytes):
        raise TypeError(
            f"reading value must be float, int, bool, str or bytes, not {type(value).__name__}"
        )


@dataclass(frozen=True, slots=True)
class Reading:
    """One value of one device at one time.

    ``time`` is epoch seconds (float). ``unit`` is a SenML unit (``Cel``, ``%``, ``1/min``,
    ``%/m``...) or ``None``.
    """

    device: str
    name: str
    value: Value
    unit: str | None = None
    time: float = field(default_factory=_time.time)

    def __post_init__(self) -> None:
        key = (self.device, self.name)
        if key not in _VALID_NAMES:  # names repeat: validate each pair once (hot path)
            _check_names(self.device, self.name)
            if len(_VALID_NAMES) >= _VALID_NAMES_MAX:
                _VALID_NAMES.clear()
            _VALID_NAMES.add(key)
        _check_value(self.value)
        if not math.isfinite(self.time):
            raise ValueError(f"reading time must be finite, not {self.time}")

    @property
    def senml_name(self) -> str:
        """The full SenML name: ``<device>/<name>``."""
        return f"{self.device}/{self.name}"


def _freeze(data: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(data))


@dataclass(frozen=True, slots=True)
class Event:
    """A change of a condition at a source.

    ``id`` names one occurrence of a condition: the ``cleared`` or ``acknowledged`` event
    for an occurrence carries the same ``id`` as its ``active`` event. ``source`` is the
    device id (or ``gateway`` for the gateway's own rules). ``data`` holds kind-specific
    details (point address, zone, score, camera...), plain CBOR-encodable values.
    """

    kind: str
    severity: Severity
    state: EventState
    source: str
    time: float = field(default_factory=_time.time)
    data: Mapping[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=new_event_id)

    def __post_init__(self) -> None:
        # accept the plain strings too ("fire", "active"): Severity("fire") is Severity.FIRE
        object.__setattr__(self, "severity", Severity(self.severity))
        object.__setattr__(self, "state", EventState(self.state))
        if not self.kind:
            raise ValueError("event kind must not be empty")
        if not isinstance(self.data, MappingProxyType):
            object.__setattr__(self, "data", _freeze(self.data))

    def with_state(
        self, state: EventState, *, time: float | None = None, data: Mapping[str, Any] | None = None
    ) -> Event:
        """The same occurrence (same id, kind, severity, source) in another state."""
        merged = dict(self.data)
        if data:
            merged.update(data)
        return Event(
            kind=self.kind,
            severity=self.severity,
            state=state,
            source=self.source,
            time=_time.time() if time is None else time,
            data=merged,
            id=self.id,
        )


class ReadingLayout:
    """The names and units of readings a device yields together, validated once.

    A driver that reads many values at once (a Modbus block of 125 registers) builds one
    layout per block and reuses it for every :class:`ReadingBlock`: names are checked here,
    not per reading, and encoders may keep per-layout work in :attr:`cache` (the SenML
    encoder keeps each record's encoded name and unit there). Layouts compare by identity.
    """

    __slots__ = ("cache", "device", "names", "units")

    device: str
    names: tuple[str, ...]
    units: tuple[str | None, ...]
    cache: dict[Any, Any]

    def __init__(
        self, device: str, names: Sequence[str], units: Sequence[str | None] | None = None
    ) -> None:
        names = tuple(names)
        units = tuple(units) if units is not None else (None,) * len(names)
        if len(units) != len(names):
            raise ValueError(f"layout of {device!r}: {len(names)} names but {len(units)} units")
        if not names:
            raise ValueError(f"layout of {device!r} has no names")
        for name in names:
            _check_names(device, name)
        for unit in units:
            if unit is not None and not isinstance(unit, str):
                raise TypeError(f"reading unit must be a string or None, not {unit!r}")
        self.device = device
        self.names = names
        self.units = units
        self.cache = {}

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return f"ReadingLayout({self.device!r}, {len(self.names)} names)"

    def sub(self, start: int, stop: int) -> ReadingLayout:
        """The layout of names ``start:stop`` (kept, so a block cut at the same place
        again reuses it and what encoders cached for it)."""
        key = ("sub", start, stop)
        found = self.cache.get(key)
        if found is None:
            found = ReadingLayout(self.device, self.names[start:stop], self.units[start:stop])
            if len(self.cache) < 256:
                self.cache[key] = found
        assert isinstance(found, ReadingLayout)
        return found


_NUMBER_TYPES = frozenset({float, int})


@dataclass(frozen=True, slots=True)
class ReadingBlock:
    """Readings of one device taken at one time: ``values[i]`` is the reading named
    ``layout.names[i]`` (unit ``layout.units[i]``).

    The same data as ``len(values)`` :class:`Reading` objects (iterate the block to get
    them) without building them: the gateway seals blocks straight into SenML. Values are
    checked as a :class:`Reading` checks them.
    """

    layout: ReadingLayout
    values: Sequence[Value]
    time: float = field(default_factory=_time.time)

    def __post_init__(self) -> None:
        values = self.values
        if len(values) != len(self.layout.names):
            raise ValueError(
                f"block of {self.layout.device!r}: {len(values)} values for "
                f"{len(self.layout.names)} names"
            )
        if not math.isfinite(self.time):
            raise ValueError(f"reading time must be finite, not {self.time}")
        kinds = set(map(type, values))
        if kinds <= _NUMBER_TYPES:
            numbers: Sequence[float] = values  # type: ignore[assignment]
            if float in kinds and not all(map(math.isfinite, numbers)):
                raise ValueError(f"block of {self.layout.device!r}: values must be finite")
            if int in kinds:
                # Only the ints are bounded: a float such as 1.8e19 is a valid value.
                ints = [v for v in numbers if type(v) is int] if float in kinds else numbers
                if not (min(ints) >= -_INT_LIMIT and max(ints) < _INT_LIMIT):
                    raise ValueError(f"block of {self.layout.device!r}: an int beyond 64 bits")
            return
        for value in values:
            _check_value(value)

    @property
    def device(self) -> str:
        return self.layout.device

    def __len__(self) -> int:
        return len(self.values)

    def __iter__(self) -> Iterator[Reading]:
        layout, t = self.layout, self.time
        device = layout.device
        for name, unit, value in zip(layout.names, layout.units, self.values, strict=True):
            yield Reading(device, name, value, unit, t)

    def readings(self) -> list[Reading]:
        """The block as :class:`Reading` objects."""
        return list(self)

    def slice(self, start: int, stop: int) -> ReadingBlock:
        """The readings ``start:stop`` as a block of their own."""
        return ReadingBlock(self.layout.sub(start, stop), tuple(self.values[start:stop]), self.time)


Item: TypeAlias = Reading | Event
"""What a driver yields from ``stream()``."""

RawItem: TypeAlias = Reading | Event | ReadingBlock
"""What a driver's ``_stream()`` may yield: blocks are flattened for ``stream()`` users and
passed whole by ``blocks()`` (the gateway's path)."""
