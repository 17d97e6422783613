"""The profile file format (spec 1): config models for the TOML keys, nothing else.

Kept apart from the codec (``drivers.modbus_panel.profile``) so the format reads as one
page: every key a profile file may hold, its type, its limits and the fix an error names.
Register numbers follow the Modbus convention (``40001`` = holding register 0, ``30001`` =
input register 0); ``docs/profiles.md`` is the guide.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from edgesdk.config import AfterValidator, BeforeValidator, ConfigModel, Field
from edgesdk.errors import ConfigError

__all__ = [
    "SUPPORTED_SPECS",
    "Analog",
    "AnalogChannel",
    "Bits2Encoding",
    "Bits2States",
    "Commands",
    "Counters",
    "EventCodes",
    "FlagBits",
    "FlagsEncoding",
    "PanelRegisters",
    "PointBlock",
    "PointCommands",
    "Points",
    "ProfileData",
    "Quantity",
    "StatusBits",
    "Table",
    "Zones",
    "check_semantics",
    "last_address",
    "parse_register",
    "register_number",
]

SUPPORTED_SPECS = (1,)
"""Profile format versions this code reads (the ``spec`` key)."""


class Table(enum.StrEnum):
    """The two register tables a profile may use."""

    HOLDING = "holding"
    INPUT = "input"

    @property
    def read_function(self) -> int:
        """FC03 for holding registers, FC04 for input registers."""
        return 3 if self is Table.HOLDING else 4


class Quantity(enum.StrEnum):
    """What an analog channel measures: smoke detectors fill ``smoke``, heat ``heat``."""

    SMOKE = "smoke"
    HEAT = "heat"


_RANGES = (
    (40001, 49999, Table.HOLDING),
    (30001, 39999, Table.INPUT),
    (400001, 465536, Table.HOLDING),
    (300001, 365536, Table.INPUT),
)


def parse_register(number: int) -> tuple[Table, int]:
    """``40001 -> (holding, 0)``, ``30001 -> (input, 0)``, ``400001 -> (holding, 0)``."""
    for low, high, table in _RANGES:
        if low <= number <= high:
            return table, number - low
    raise ValueError(
        f"{number} is not a register number (30001-39999 or 300001-365536 input, "
        "40001-49999 or 400001-465536 holding)"
    )


def last_address(number: int) -> int:
    """The last PDU address reachable in the numbering ``number`` is written in."""
    return 9998 if number < 100000 else 65535


def register_number(table: Table, address: int) -> int:
    """The conventional register number of a PDU address (five digits where they fit)."""
    first = 40001 if table is Table.HOLDING else 30001
    return first + address if address <= 9998 else first * 10 - 9 + address


def _check_register(value: int) -> int:
    parse_register(value)
    return value


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, int) else value


RegisterNo = Annotated[
    int,
    AfterValidator(_check_register),
    Field(description="use a register number such as 40001 (holding) or 30001 (input)"),
]
Bit = Annotated[int, Field(ge=0, le=15, description="use a bit number from 0 to 15")]
Word = Annotated[int, Field(ge=0, le=0xFFFF, description="use a value from 0 to 0xFFFF")]
Codes = Annotated[list[Annotated[int, Field(ge=0, le=255)]], BeforeValidator(_as_list)]
TwoBits = Annotated[int, Field(ge=0, le=3, description="use a 2-bit code from 0 to 3")]


class FlagBits(ConfigModel):
    """Bit numbers of the flags in a point word (0 = least significant)."""

    ack_block: Bit
    prealarm: Bit
    trouble: Bit
    inactive: Bit
    active: Bit
    enabled: Bit
    disabled: Bit
    acknowledged: Bit


class EventCodes(ConfigModel):
    """Event-type codes; where a list is given, the first code is the one written."""

    none: Codes = Field(default_factory=lambda: [0])
    fire: Codes
    co: Codes = Field(default_factory=list)
    supervisory: Codes = Field(default_factory=list)
    non_fire: Codes = Field(default_factory=list)
    not_present: Codes = Field(default_factory=list)


class FlagsEncoding(ConfigModel):
    """One register per point: flag bits plus an 8-bit event type at ``event_shift``."""

    kind: Literal["flags"]
    event_shift: Literal[0, 8] = 0
    flags: FlagBits
    events: EventCodes


class Bits2States(ConfigModel):
    normal: TwoBits
    fire: TwoBits
    fault: TwoBits
    disabled: TwoBits


class Bits2Encoding(ConfigModel):
    """Two bits per point, eight points per register, point 1 in bits 1-0."""

    kind: Literal["bits2"]
    states: Bits2States


class PointBlock(ConfigModel):
    base: RegisterNo
    loop_stride: int = Field(ge=1, description="registers from one loop's block to the next")
    slots: int = Field(ge=1, le=999, description="points used per loop in this block")


class Points(ConfigModel):
    loops: int = Field(ge=1, le=99, description="how many loops the layout provides")
    detector: PointBlock
    module: PointBlock | None = None


class Zones(ConfigModel):
    base: RegisterNo
    count: int = Field(ge=1, le=9999)


class Counters(ConfigModel):
    fire: RegisterNo | None = None
    trouble: RegisterNo | None = None
    total: RegisterNo | None = None


class StatusBits(ConfigModel):
    fire: Bit | None = None
    prealarm: Bit | None = None
    trouble: Bit | None = None
    supervisory: Bit | None = None
    mains_fail: Bit | None = None
    battery_fault: Bit | None = None
    earth_fault: Bit | None = None
    loop_fault: Bit | None = None
    silenced: Bit | None = None
    disablements: Bit | None = None
    test_mode: Bit | None = None


class PanelRegisters(ConfigModel):
    status: RegisterNo
    heartbeat: RegisterNo | None = None
    status_bits: StatusBits
    counters: Counters = Field(default_factory=Counters)


class Commands(ConfigModel):
    # "register" is the key in the file; the attribute keeps the name it had when ABCMeta
    # (a base of pydantic models, which these were) defined ``register``
    address: RegisterNo = Field(alias="register")
    reset: Word | None = None
    silence: Word | None = None
    acknowledge: Word | None = None


class PointCommands(ConfigModel):
    """Commands written to a point's own register (flags encoding only)."""

    acknowledge: Word | None = None
    disable: Word | None = None
    enable: Word | None = None


class AnalogChannel(ConfigModel):
    """One analog value per detector: ``value = raw * scale`` (raw signed if ``signed``)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$", description="use a lower-case name")
    quantity: Quantity
    unit: str
    scale: float = Field(gt=0, description="use a positive scale, e.g. 0.01 for x100 values")
    signed: bool = False
    absent: Word | None = Field(
        default=None,
        description="the raw word that means 'no value' (e.g. 0xFFFF); omit: every word is a value",
    )
    description: str = ""


class Analog(ConfigModel):
    """Per detector slot ``len(channels)`` consecutive registers, channel order as listed."""

    base: RegisterNo
    loop_stride: int = Field(ge=1)
    slots: int = Field(ge=1, le=999)
    channels: list[AnalogChannel] = Field(min_length=1)


class ProfileData(ConfigModel):
    """The whole file. ``drivers.modbus_panel.profile.Profile`` adds the codec."""

    spec: int = Field(description=f"use a supported format version: {SUPPORTED_SPECS}")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="use lower-case a-z 0-9 -")
    vendor: str
    description: str
    encoding: FlagsEncoding | Bits2Encoding = Field(discriminator="kind")
    points: Points
    zones: Zones | None = None
    panel: PanelRegisters
    commands: Commands | None = None
    point_commands: PointCommands | None = None
    analog: Analog | None = None


def check_semantics(data: ProfileData, *, file: str | None = None) -> None:
    """What field types cannot say: bits and codes that must differ, flags clear of the
    event-type byte. Raises ConfigError naming the exact key."""
    enc = data.encoding
    if isinstance(enc, FlagsEncoding):
        flags = enc.flags.model_dump()
        _distinct(flags, "encoding.flags", "bit", file)
        event_byte = range(enc.event_shift, enc.event_shift + 8)
        for name, bit in flags.items():
            if bit in event_byte:
                low, high = event_byte[0], event_byte[-1]
                raise ConfigError(
                    f"bit {bit} lies in the event-type byte (bits {low}-{high})",
                    file=file,
                    key=f"encoding.flags.{name}",
                    fix="use a bit outside the event-type byte, or change encoding.event_shift",
                )
        seen: dict[int, str] = {}
        for name, codes in enc.events.model_dump().items():
            for code in codes:
                _claim(seen, code, f"encoding.events.{name}", "event code", file)
    else:
        _distinct(enc.states.model_dump(), "encoding.states", "state code", file)
    _distinct(data.panel.status_bits.model_dump(), "panel.status_bits", "bit", file)
    if data.commands is not None:
        values = data.commands.model_dump(exclude={"address"})
        _distinct(values, "commands", "command value", file)
    if data.point_commands is not None:
        _distinct(data.point_commands.model_dump(), "point_commands", "command value", file)


def _distinct(values: Mapping[str, int | None], prefix: str, what: str, file: str | None) -> None:
    seen: dict[int, str] = {}
    for name, value in values.items():
        if value is not None:
            _claim(seen, value, f"{prefix}.{name}", what, file)


def _claim(seen: dict[int, str], value: int, key: str, what: str, file: str | None) -> None:
    if value in seen:
        shown = str(value) if what == "bit" else f"{value:#x}"
        raise ConfigError(
            f"{what} {shown} is also used by {seen[value]}",
            file=file,
            key=key,
            fix=f"give each its own {what}",
        )
    seen[value] = key
