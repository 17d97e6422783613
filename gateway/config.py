"""The gateway's TOML configuration: typed, validated, with errors that point at the line.

Every key and its default is documented in ``docs/configuration.md``. Unknown keys are
errors. Relative paths are resolved against the directory of the config file. Secrets (key
passphrases) come from a file or an environment variable, never inline, and are never
logged: :class:`Secret` hides its value from ``repr``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from edgesdk.config import ConfigModel, Field, field_validator, model_validator, parse, read_toml
from edgesdk.errors import ConfigError

__all__ = [
    "DeviceConfig",
    "GatewayConfig",
    "HealthConfig",
    "IdentityConfig",
    "LanesConfig",
    "RetentionConfig",
    "RulesConfig",
    "SecretRef",
    "UplinkConfig",
    "ZoneMap",
    "load",
    "loads",
]

_ID_RE = r"^[A-Za-z0-9][A-Za-z0-9\-._]*$"


class SecretRef(ConfigModel):
    """Where a secret comes from: a file (first line) or an environment variable."""

    file: Path | None = Field(default=None, description="path of a file holding the secret (0600)")
    env: str | None = Field(default=None, description="name of an environment variable")

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if (self.file is None) == (self.env is None):
            raise ValueError("give exactly one of 'file' or 'env'")
        return self

    def read(self) -> bytes:
        """The secret's bytes; raises ConfigError naming the source (never the value)."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise ConfigError(
                    f"environment variable {self.env} is not set",
                    key="secret.env",
                    fix=f"export {self.env}=...",
                )
            return value.encode()
        assert self.file is not None
        try:
            return self.file.read_bytes().splitlines()[0] if self.file.stat().st_size else b""
        except OSError as exc:
            raise ConfigError(
                f"cannot read secret file {self.file}: {exc.strerror}",
                key="secret.file",
                fix="create the file (mode 0600)",
            ) from exc

    def __repr__(self) -> str:
        return f"SecretRef(file={self.file!r}, env={self.env!r})"


class IdentityConfig(ConfigModel):
    site: str = Field(pattern=_ID_RE, description="site name, e.g. 'hq' (A-Z a-z 0-9 - . _)")
    id: str = Field(
        pattern=_ID_RE, description="gateway id, unique in the site (A-Z a-z 0-9 - . _)"
    )
    data_dir: Path = Field(default=Path("data"), description="directory of the durable store")
    signing_key: Path = Field(
        description="PEM private key that signs batches (Ed25519 or P-256), mode 0600"
    )
    signing_cert: Path = Field(description="PEM certificate of the signing key")
    signing_key_passphrase: SecretRef | None = Field(
        default=None, description="passphrase of an encrypted signing key: {file=...} or {env=...}"
    )
    ca_cert: Path | None = Field(default=None, description="site CA certificate (PEM), for checks")
    previous_signing_certs: list[Path] = Field(
        default_factory=list,
        description="certificates of rotated-out signing keys, announced in the birth message "
        "until consumers have drained batches signed with them",
    )


class UplinkConfig(ConfigModel):
    url: str = Field(
        pattern=r"^mqtts?://[^/\s]+(:\d+)?/?$",
        description="broker URL, mqtts://host:8883 (mqtt:// only for tests)",
    )
    ca: Path | None = Field(
        default=None, description="CA certificate that signed the broker's cert"
    )
    cert: Path | None = Field(default=None, description="client certificate (PEM) for mTLS")
    key: Path | None = Field(default=None, description="client private key (PEM), mode 0600")
    key_passphrase: SecretRef | None = Field(
        default=None, description="passphrase of an encrypted TLS key: {file=...} or {env=...}"
    )
    protocol: Literal["5", "3.1.1"] = Field(default="5", description="MQTT version: '5' or '3.1.1'")
    client_id: str | None = Field(default=None, description="MQTT client id (default: <site>-<id>)")
    topic_prefix: str = Field(
        default="edge/v1", description="topics are <prefix>/<site>/<gw>/<stream>"
    )
    keepalive: int = Field(
        default=30, ge=5, le=3600, description="MQTT keepalive in seconds (5-3600)"
    )
    inflight: int = Field(
        default=32, ge=1, le=1024, description="QoS 1 publishes in flight (1-1024)"
    )
    reconnect_min: float = Field(default=0.2, gt=0, le=60, description="first reconnect delay, s")
    reconnect_max: float = Field(
        default=2.0,
        gt=0,
        le=600,
        description="longest reconnect delay, s (2 s: back within 2 s of the broker's return)",
    )
    snapshot_max_bytes: int = Field(
        default=262_144,
        ge=1024,
        le=1_048_576,
        description="largest camera snapshot forwarded, bytes (at most 1 MiB: consumers refuse "
        "larger messages before decoding them)",
    )
    snapshot_min_interval: float = Field(
        default=1.0, ge=0, description="seconds between snapshots of one camera"
    )

    @model_validator(mode="after")
    def _tls_pairs(self) -> UplinkConfig:
        if (self.cert is None) != (self.key is None):
            raise ValueError("give both 'cert' and 'key' for the client certificate, or neither")
        return self

    @property
    def tls(self) -> bool:
        return self.url.startswith("mqtts://")


class LanesConfig(ConfigModel):
    telemetry_max_records: int = Field(
        default=500, ge=1, le=100_000, description="seal a telemetry batch at this many records"
    )
    telemetry_max_age: float = Field(
        default=1.0, gt=0, le=60, description="seal a telemetry batch after this many seconds"
    )


class RetentionConfig(ConfigModel):
    telemetry_max_bytes: int = Field(
        default=1 << 30, ge=4096, description="telemetry kept while unsent, bytes"
    )
    telemetry_max_age: float = Field(
        default=7 * 86400.0, gt=0, description="oldest unsent telemetry kept, seconds"
    )
    min_free_bytes: int = Field(
        default=16 << 20,
        ge=0,
        description="free space kept on the data filesystem: below it, telemetry is shed "
        "(alarms never)",
    )


class HealthConfig(ConfigModel):
    listen: str | None = Field(
        default="127.0.0.1:9108",
        pattern=r"^(127\.0\.0\.1|\[::1\]|localhost):\d+$",
        description="loopback host:port for /healthz and /metrics, or omit to disable",
    )


class ZoneMap(ConfigModel):
    """One fire zone as seen by several sources, for the cross-check rule."""

    panel: str | None = Field(default=None, description="device name of the panel")
    panel_zones: list[int] = Field(default_factory=list, description="zone numbers at the panel")
    cameras: list[str] = Field(
        default_factory=list, description="camera names (or '<device>/<camera>')"
    )
    camera_zones: list[str] = Field(default_factory=list, description="camera zone names")


class RulesConfig(ConfigModel):
    """Life-safety thresholds; sources in docs/configuration.md and the domain reference."""

    man_down_prealarm: float = Field(
        default=20.0,
        gt=0,
        description="seconds without motion before the PASS pre-alert (NFPA 1982: 20)",
    )
    man_down_alarm: float = Field(
        default=30.0,
        gt=0,
        description="seconds without motion before the PASS alarm (NFPA 1982: 30)",
    )
    motion_threshold: float = Field(
        default=100.0, ge=0, description="milli-g RMS counted as motion"
    )
    scba_low_fraction: float = Field(
        default=0.33,
        gt=0,
        lt=1,
        description="low-air alarm at this fraction of rated pressure (NFPA 1981: 0.33)",
    )
    heart_rate_fraction: float = Field(
        default=0.85, gt=0, le=1.2, description="fraction of (220 - age) that warns"
    )
    heart_rate_duration: float = Field(
        default=60.0, ge=0, description="seconds above it before warning"
    )
    default_wearer_age: int = Field(
        default=40, ge=16, le=80, description="age when no hello gave one"
    )
    skin_temperature_max: float = Field(default=39.0, description="skin temperature warning, °C")
    ambient_heat_max: float = Field(default=150.0, description="ambient temperature warning, °C")
    lost_contact: float = Field(
        default=15.0,
        gt=0,
        description="seconds without a frame from a beacon on duty before the lost-contact alarm",
    )
    crosscheck_window: float = Field(
        default=120.0,
        gt=0,
        description="seconds in which a camera and "
        "a panel detection in one zone corroborate each other",
    )
    zones: dict[str, ZoneMap] = Field(default_factory=dict, description="zone name -> sources")

    @model_validator(mode="after")
    def _order(self) -> RulesConfig:
        if self.man_down_alarm <= self.man_down_prealarm:
            raise ValueError("man_down_alarm must be longer than man_down_prealarm")
        return self


class DeviceConfig(ConfigModel):
    driver: str = Field(description="driver name, e.g. modbus-panel, beacon-serial, camera-mqtt")
    enabled: bool = Field(
        default=True, description="false keeps the device configured but not polled"
    )
    expected_interval: float | None = Field(
        default=None,
        gt=0,
        description="seconds of silence after which the device is reported offline "
        "(default: the driver's own supervision)",
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="the driver's options (docs/drivers.md)"
    )


class GatewayConfig(ConfigModel):
    gateway: IdentityConfig
    uplink: UplinkConfig
    lanes: LanesConfig = Field(default_factory=LanesConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    rules: RulesConfig = Field(default_factory=RulesConfig)
    devices: dict[str, DeviceConfig] = Field(default_factory=dict)

    @field_validator("devices")
    @classmethod
    def _device_names(cls, v: dict[str, DeviceConfig]) -> dict[str, DeviceConfig]:
        for name in v:
            if not re.match(_ID_RE, name):
                raise ValueError(f"device name {name!r} must use A-Z a-z 0-9 - . _")
        return v

    # set by load(); not part of the file
    source: Path | None = Field(default=None, exclude=True)


_PATH_KEYS: dict[str, tuple[str, ...]] = {
    "gateway": ("data_dir", "signing_key", "signing_cert", "ca_cert", "previous_signing_certs"),
    "uplink": ("ca", "cert", "key"),
}


def _absolute(value: str, base: Path, key: str) -> str:
    # a TOML string may hold \u0000, which no path can: Path.resolve() would raise ValueError
    if "\0" in value:
        raise ConfigError(
            "a path cannot contain a NUL character", key=key, fix="remove the \\u0000 escape"
        )
    return value if os.path.isabs(value) else str((base / value).resolve())


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    ident = data.get("gateway")
    if isinstance(ident, dict):
        ident.setdefault("data_dir", "data")  # the default, too, is relative to the file
    for table, keys in _PATH_KEYS.items():
        section = data.get(table)
        if not isinstance(section, dict):
            continue
        for key in keys:
            value = section.get(key)
            where = f"{table}.{key}"
            if isinstance(value, str) and value:
                section[key] = _absolute(value, base, where)
            if isinstance(value, list):
                section[key] = [
                    _absolute(v, base, f"{where}[{i}]") if isinstance(v, str) else v
                    for i, v in enumerate(value)
                ]
        for name, sub in section.items():
            if isinstance(sub, dict) and isinstance(sub.get("file"), str):
                sub["file"] = _absolute(sub["file"], base, f"{table}.{name}.file")


def line_of(text: str, key: str | None) -> int | None:
    """Best-effort line number of a dotted key (``devices.panel1.options.url``) in TOML text.

    tomllib keeps no positions, so this walks table headers and ``key =`` lines.
    """
    if not key:
        return None
    parts = [p for p in re.split(r"\.|\[\d+\]", key) if p]
    lines = text.splitlines()
    best: int | None = None
    table: list[str] = []
    for i, raw in enumerate(lines, start=1):
        line = raw.strip()
        m = re.match(r"^\[\[?\s*([^\]]+?)\s*\]\]?", line)
        if m:
            table = [t.strip().strip('"') for t in m.group(1).split(".")]
            if table == parts[: len(table)] and best is None and len(table) == len(parts):
                best = i
            continue
        m = re.match(r'^"?([A-Za-z0-9_\-]+)"?\s*=', line)
        if not m:
            continue
        path = [*table, m.group(1)]
        if path == parts[: len(path)]:
            best = i  # exact key, or the inline table holding it
            if len(path) == len(parts):
                return i
    if best is None and table == [] and parts:
        return None
    return best


def loads(text: str, *, file: str = "<config>", base: Path | None = None) -> GatewayConfig:
    """Parse and validate config text; ConfigError names file, line, key and fix."""
    data = read_toml(text, file)
    try:
        _resolve_paths(data, base or Path.cwd())
        cfg = parse(GatewayConfig, data, file=file)
    except ConfigError as exc:
        exc.line = line_of(text, exc.key)
        raise ConfigError(
            exc.reason, file=file, key=exc.key, fix=exc.fix, line=exc.line
        ) from exc.__cause__
    return cfg.model_copy(update={"source": Path(file)})


def load(path: str | os.PathLike[str]) -> GatewayConfig:
    """Read and validate a gateway config file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read config: {exc.strerror}",
            file=str(p),
            fix="check the path given to --config",
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not UTF-8 text: {exc}", file=str(p), fix="save the file as UTF-8 (TOML is UTF-8)"
        ) from exc
    return loads(text, file=str(p), base=p.resolve().parent)


def device_options(cfg: Mapping[str, DeviceConfig], name: str) -> dict[str, Any]:
    return dict(cfg[name].options)
