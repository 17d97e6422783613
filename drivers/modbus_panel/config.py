"""The modbus-panel driver's options, validated by :mod:`edgesdk.configmodel`.

Every field says its valid range in ``description``: :func:`edgesdk.config.parse` quotes it
as the fix when a value is refused. The profile is loaded while validating, so a wrong
profile name, a loop count the map has no room for or a deadband for a channel the profile
does not have is refused before anything opens.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from drivers.modbus_panel.profile import PointAddress, PointKind, Profile, load_profile
from edgesdk.config import Field, field_validator, model_validator
from edgesdk.driver import DriverConfig
from edgesdk.errors import ConfigError

__all__ = [
    "ModbusPanelConfig",
    "RtuEndpoint",
    "TcpEndpoint",
    "default_gap",
    "parse_point_range",
    "parse_url",
]

_RTU_KEYS = ("baudrate", "parity", "stopbits", "bytesize")
_RANGE_RE = re.compile(r"^(?:u(\d{1,3})/)?l(\d{1,2})/([dm])(\d{1,3})(?:-([dm])?(\d{1,3}))?$")


@dataclass(frozen=True, slots=True)
class TcpEndpoint:
    """``tcp://host:port``: one TCP connection per driver instance."""

    host: str
    port: int

    @property
    def label(self) -> str:
        return f"tcp://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class RtuEndpoint:
    """``rtu:///dev/ttyUSB0?baudrate=...``: a serial line, shared by every panel on it."""

    path: str
    baudrate: int = 19200
    parity: Literal["N", "E", "O"] = "E"
    stopbits: int = 1
    bytesize: int = 8

    @property
    def label(self) -> str:
        return f"rtu://{self.path}"

    @property
    def char_bits(self) -> int:
        """Bits on the wire per character: start, data, parity, stop."""
        return 1 + self.bytesize + (self.parity != "N") + self.stopbits


def default_gap(endpoint: RtuEndpoint) -> float:
    """The Modbus RTU silent interval t3.5 (Modbus over Serial Line V1.02, 2.5.1.1):
    3.5 character times, fixed at 1.75 ms above 19200 baud."""
    if endpoint.baudrate > 19200:
        return 0.00175
    return 3.5 * endpoint.char_bits / endpoint.baudrate


def parse_url(url: str) -> TcpEndpoint | RtuEndpoint:
    """Parse the ``url`` option; ValueError with what is wrong and how to write it."""
    parts = urlsplit(url)
    if parts.scheme == "tcp":
        if parts.path not in ("", "/") or parts.query:
            raise ValueError("a tcp url takes no path or query: tcp://host:port")
        host = parts.hostname
        if not host:
            raise ValueError("missing host: tcp://host:port (port defaults to 502)")
        try:
            port = parts.port or 502
        except ValueError:
            raise ValueError("the port must be 1..65535: tcp://host:port") from None
        return TcpEndpoint(host, port)
    if parts.scheme == "rtu":
        if parts.netloc:
            raise ValueError("an rtu url holds an absolute path: rtu:///dev/ttyUSB0 (three /)")
        if not parts.path.startswith("/") or parts.path == "/":
            raise ValueError("missing serial device: rtu:///dev/ttyUSB0?baudrate=9600")
        options: dict[str, Any] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
            if key not in _RTU_KEYS:
                raise ValueError(f"unknown rtu option {key!r}; use {', '.join(_RTU_KEYS)}")
            options[key] = value
        return _rtu(parts.path, options)
    raise ValueError(
        f"unknown scheme {parts.scheme!r}: use tcp://host:502 or rtu:///dev/ttyUSB0?baudrate=9600"
    )


def _rtu(path: str, options: dict[str, Any]) -> RtuEndpoint:
    try:
        baudrate = int(options.get("baudrate", 19200))
        stopbits = int(options.get("stopbits", 1))
        bytesize = int(options.get("bytesize", 8))
    except ValueError:
        raise ValueError("baudrate, stopbits and bytesize are whole numbers") from None
    parity = str(options.get("parity", "E")).upper()
    if not 300 <= baudrate <= 4_000_000:
        raise ValueError(f"baudrate must be 300..4000000 (got {baudrate})")
    if parity not in ("N", "E", "O"):
        raise ValueError(f"parity must be N, E or O (got {parity!r})")
    if stopbits not in (1, 2):
        raise ValueError(f"stopbits must be 1 or 2 (got {stopbits})")
    if bytesize != 8:
        raise ValueError(f"Modbus RTU uses 8 data bits (got bytesize={bytesize})")
    return RtuEndpoint(path, baudrate, parity, stopbits, bytesize)  # type: ignore[arg-type]


def parse_point_range(spec: str) -> tuple[int | None, int, PointKind, int, int]:
    """``[u<unit>/]l<loop>/d<first>[-d<last>]`` -> (unit or None, loop, kind, first, last)."""
    m = _RANGE_RE.match(spec)
    if m is None:
        raise ValueError(
            f"{spec!r} is not a point or range: write l1/d001, l1/d001-d010 or u2/l1/m001-m005"
        )
    unit, loop, kind, first, kind2, last = m.groups()
    if kind2 is not None and kind2 != kind:
        raise ValueError(f"{spec!r}: a range stays within detectors or modules")
    lo, hi = int(first), int(last) if last is not None else int(first)
    if not 1 <= lo <= hi:
        raise ValueError(f"{spec!r}: point numbers start at 1 and the range must not run backwards")
    k = PointKind.DETECTOR if kind == "d" else PointKind.MODULE
    return (int(unit) if unit is not None else None), int(loop), k, lo, hi


class ModbusPanelConfig(DriverConfig):
    """Where the panels are, which register map they use and how to poll them."""

    url: str = Field(
        description=(
            "tcp://host:port (port defaults to 502) or "
            "rtu:///dev/ttyUSB0?baudrate=19200&parity=E&stopbits=1&bytesize=8 "
            "(defaults 19200 8E1; baudrate 300..4000000, parity N/E/O, stopbits 1 or 2)"
        ),
    )
    profile: str = Field(
        min_length=1,
        description="a bundled register map (notifier-gw, gst-compact) or the path of a .toml",
    )
    units: list[int] = Field(
        default_factory=lambda: [1],
        min_length=1,
        max_length=247,
        description="Modbus unit ids of the panels, each 1..247, no duplicates (default [1])",
    )
    loops: int | dict[int, int] | None = Field(
        default=None,
        description=(
            "loops to poll: one number for every unit or {unit: loops}; 1..the profile's "
            "loops (default: every loop the profile maps)"
        ),
    )
    status_interval: float = Field(
        default=1.0, ge=0.1, le=3600.0, description="seconds between status polls, 0.1..3600"
    )
    analog_interval: float = Field(
        default=5.0, ge=0.1, le=3600.0, description="seconds between analog polls, 0.1..3600"
    )
    analog_deadband: dict[str, float] = Field(
        default_factory=lambda: {"smoke": 0.05, "heat": 0.5},
        description=(
            "smallest change reported per analog channel, by quantity (smoke, heat) or "
            "channel name, in the channel's unit, >= 0 (default smoke 0.05 %/m, heat 0.5 Cel)"
        ),
    )
    full_report_interval: float = Field(
        default=300.0,
        ge=0.5,
        le=86400.0,
        description="seconds between full analog reports, 0.5..86400 and >= analog_interval",
    )
    point_scan_interval: float = Field(
        default=0.0,
        ge=0.0,
        le=86400.0,
        description=(
            "seconds between reads of every point slot of the map, 0..86400 (default 0: "
            "every slot on every poll); in between, a profile with a not-present code reads "
            "each status block only up to its last installed point (a zone, panel-status "
            "or counter change, a reconnect or a unit back online reads the whole map at "
            "once), and a profile with absent analog words reads each analog block only up "
            "to its last present value (the whole analog map after each whole status read)"
        ),
    )
    analog_every_poll: bool = Field(
        default=False,
        description=(
            "report every analog value on every analog poll, changed or not, ignoring "
            "analog_deadband (raw sampling for a historian; many more readings)"
        ),
    )
    timeout: float = Field(
        default=1.0, gt=0.0, le=60.0, description="seconds to wait for each reply, > 0 and <= 60"
    )
    retries: int = Field(
        default=1, ge=0, le=10, description="extra attempts for a failed request, 0..10"
    )
    offline_after: int = Field(
        default=3,
        ge=1,
        le=1000,
        description=(
            "consecutive failed requests before a unit is offline (device-offline), 1..1000"
        ),
    )
    inter_frame_gap: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description=(
            "RTU silence in seconds between frames, 0..1 (default 3.5 character times at "
            "the baud rate, 1.75 ms above 19200 baud)"
        ),
    )
    backoff_min: float = Field(
        default=0.5, ge=0.01, le=60.0, description="first reconnect delay in seconds, 0.01..60"
    )
    backoff_max: float = Field(
        default=30.0,
        ge=0.01,
        le=3600.0,
        description="cap on the reconnect delay in seconds, 0.01..3600 and >= backoff_min",
    )
    heartbeat_timeout: float = Field(
        default=10.0,
        ge=0.0,
        le=3600.0,
        description=(
            "seconds the heartbeat register may stay unchanged while reads succeed before "
            "heartbeat-stuck is raised, 0 (off) or 0.5..3600"
        ),
    )
    max_registers: int = Field(
        default=125, ge=1, le=125, description="most registers per read request, 1..125"
    )
    point_zones: dict[str, int] = Field(
        default_factory=dict,
        description=(
            'zone numbers for the point events\' data, e.g. {"l1/d001-d010": 1, '
            '"u2/l1/m001": 3}; zones 1..65535, ranges must not overlap'
        ),
    )

    # -- field checks -------------------------------------------------------------------
    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parse_url(value)
        return value

    @field_validator("profile")
    @classmethod
    def _profile(cls, value: str) -> str:
        try:
            load_profile(value)
        except ConfigError as exc:
            fix = f"; {exc.fix}" if exc.fix else ""
            raise ValueError(f"{exc}{fix}" if exc.file else f"{exc.reason}{fix}") from None
        return value

    @field_validator("units")
    @classmethod
    def _units(cls, value: list[int]) -> list[int]:
        bad = [u for u in value if not 1 <= u <= 247]
        if bad:
            raise ValueError(f"unit ids must be 1..247 (got {bad})")
        if len(set(value)) != len(value):
            raise ValueError(f"duplicate unit ids in {value}")
        return value

    @field_validator("analog_deadband")
    @classmethod
    def _deadband(cls, value: dict[str, float]) -> dict[str, float]:
        for key, band in value.items():
            if not math.isfinite(band) or band < 0:
                raise ValueError(f"deadband for {key!r} must be a finite number >= 0")
        return value

    @field_validator("heartbeat_timeout")
    @classmethod
    def _heartbeat(cls, value: float) -> float:
        if 0 < value < 0.5:
            raise ValueError("must be 0 (off) or at least 0.5")
        return value

    @model_validator(mode="after")
    def _together(self) -> ModbusPanelConfig:
        if self.backoff_max < self.backoff_min:
            raise ValueError(f"backoff_max ({self.backoff_max}) must be >= backoff_min")
        if self.full_report_interval < self.analog_interval:
            raise ValueError(
                f"full_report_interval ({self.full_report_interval}) must be >= "
                f"analog_interval ({self.analog_interval})"
            )
        profile = self.get_profile()
        most = profile.points.loops
        per_unit = self.loops if isinstance(self.loops, dict) else {}
        for unit in per_unit:
            if unit not in self.units:
                raise ValueError(f"loops names unit {unit}, which is not in units {self.units}")
        wanted = list(per_unit.values()) if isinstance(self.loops, dict) else [self.loops]
        for n in wanted:
            if n is not None and not 1 <= n <= most:
                raise ValueError(f"loops must be 1..{most} for profile {profile.name} (got {n})")
        names = {c.name for c in profile.analog.channels} if profile.analog else set()
        names |= {c.quantity.value for c in profile.analog.channels} if profile.analog else set()
        for key in self.analog_deadband:
            if key not in names and key not in ("smoke", "heat"):
                known = ", ".join(sorted(names)) or "none (the profile has no analog values)"
                raise ValueError(f"analog_deadband names unknown channel {key!r}; known: {known}")
        self.zone_map()  # raises on a bad or overlapping range
        return self

    # -- derived ------------------------------------------------------------------------
    @property
    def endpoint(self) -> TcpEndpoint | RtuEndpoint:
        return parse_url(self.url)

    def get_profile(self) -> Profile:
        """The register map (bundled profiles are cached; a file is read again)."""
        return load_profile(self.profile)

    def loops_for(self, unit: int, profile: Profile) -> int:
        if isinstance(self.loops, dict):
            return self.loops.get(unit, profile.points.loops)
        return self.loops if self.loops is not None else profile.points.loops

    def gap(self) -> float:
        """The inter-frame gap for this line (0 for TCP)."""
        ep = self.endpoint
        if isinstance(ep, TcpEndpoint):
            return 0.0
        return self.inter_frame_gap if self.inter_frame_gap is not None else default_gap(ep)

    def zone_map(self) -> dict[tuple[int, PointAddress], int]:
        """``point_zones`` expanded: (unit or 0 for every unit, point) -> zone."""
        out: dict[tuple[int, PointAddress], int] = {}
        for spec, zone in self.point_zones.items():
            if not 1 <= zone <= 65535:
                raise ValueError(f"point_zones[{spec!r}]: zone must be 1..65535 (got {zone})")
            unit, loop, kind, lo, hi = parse_point_range(spec)
            for slot in range(lo, hi + 1):
                key = (unit or 0, PointAddress(loop, kind, slot))
                if key in out:
                    raise ValueError(
                        f"point_zones[{spec!r}] overlaps another range at {key[1].label}"
                    )
                out[key] = zone
        return out
