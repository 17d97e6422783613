"""The beacon-serial driver's options, validated by :mod:`edgesdk.configmodel`.

Every field says its valid range in ``description``: :func:`edgesdk.config.parse` quotes it
as the fix when a value is refused, so the range text is part of the error message.
"""

from __future__ import annotations

from drivers.beacon_serial.codec import MIN_LENGTH
from edgesdk.config import Field, ValidationInfo, field_validator
from edgesdk.driver import DriverConfig

__all__ = ["BeaconSerialConfig"]


class BeaconSerialConfig(DriverConfig):
    """Where the receiver is and how patiently to treat it."""

    port: str = Field(
        min_length=1,
        description=(
            "path of the receiver's serial port, e.g. /dev/ttyACM0 or a stable udev symlink "
            "such as /dev/serial/by-id/...; a non-empty path"
        ),
    )
    baudrate: int = Field(
        default=115200,
        ge=50,
        le=4_000_000,
        description="line speed in baud, 50..4000000 (the receiver uses 115200, 8N1)",
    )
    open_timeout: float = Field(
        default=5.0,
        gt=0.0,
        le=120.0,
        description="seconds to wait for the port to open, > 0 and <= 120",
    )
    write_timeout: float = Field(
        default=2.0,
        gt=0.0,
        le=60.0,
        description="seconds to wait for an ack or evacuate frame to leave, > 0 and <= 60",
    )
    silence_timeout: float = Field(
        default=15.0,
        ge=0.1,
        le=3600.0,
        description=(
            "seconds without any frame before the receiver counts as faulty "
            "(receiver-fault), 0.1..3600; the receiver sends status every 10 s"
        ),
    )
    reconnect_min: float = Field(
        default=0.5,
        ge=0.01,
        le=60.0,
        description="first delay in seconds before reopening a lost port, 0.01..60",
    )
    reconnect_max: float = Field(
        default=30.0,
        ge=0.01,
        le=3600.0,
        description=(
            "cap in seconds on the reopen delay (doubles from reconnect_min, with jitter), "
            "0.01..3600 and >= reconnect_min"
        ),
    )
    max_frame_length: int = Field(
        default=255,
        ge=MIN_LENGTH,
        le=255,
        description=(
            f"largest frame len byte accepted, {MIN_LENGTH}..255; lower values reject false "
            "syncs in noise sooner"
        ),
    )
    alarm_memory: float = Field(
        default=600.0,
        ge=10.0,
        le=86400.0,
        description=(
            "seconds an alarm id is remembered after its last repeat, so late repeats are "
            "not new alarms, 10..86400"
        ),
    )

    @field_validator("reconnect_max")
    @classmethod
    def _cap_above_floor(cls, value: float, info: ValidationInfo) -> float:
        floor = info.data.get("reconnect_min")
        if floor is not None and value < floor:
            raise ValueError(f"must be >= reconnect_min ({floor})")
        return value
