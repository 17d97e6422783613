"""Panel register maps ("profiles") and the sans-I/O codec both sides of the wire use.

A profile is versioned data (one TOML file per panel family in
``drivers/modbus_panel/profiles/``) saying where a panel keeps its point, zone, panel
status, heartbeat, counter, command and analog registers, and how a word encodes a state.
The emulator (``emulators.panel``) encodes its model with a :class:`Profile`; the driver
decodes what it reads with the same object; neither hard-codes an address::

    profile = load_profile("notifier-gw")
    for block in profile.read_blocks(kind=BlockKind.STATUS, loops=2):
        words = ...  # FC03/FC04 read of block.address, block.count
        decoded = profile.decode_block(block, words)
    address, value = profile.command_write("reset")  # FC06

Register numbers in the files use the Modbus convention: ``4xxxx`` is holding register
``xxxx - 1`` (FC03 read, FC06/FC16 write), ``3xxxx`` is input register ``xxxx - 1`` (FC04).
``docs/profiles.md`` documents the format and how to write a new profile.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from drivers.modbus_panel.profiles.layout import (
    Block,
    BlockKind,
    Location,
    PointAddress,
    PointKind,
    Register,
    Role,
    coalesce,
)
from drivers.modbus_panel.profiles.regmap import RegisterMap
from drivers.modbus_panel.profiles.schema import (
    SUPPORTED_SPECS,
    AnalogChannel,
    Bits2Encoding,
    EventCodes,
    FlagsEncoding,
    ProfileData,
    Quantity,
    Table,
    check_semantics,
    parse_register,
    register_number,
)
from edgesdk.config import parse, read_toml
from edgesdk.errors import CommandError, ConfigError, ProtocolError

__all__ = [
    "PANEL_FLAGS",
    "SUPPORTED_SPECS",
    "Alarm",
    "AnalogChannel",
    "Block",
    "BlockKind",
    "Decoded",
    "Location",
    "PanelCommand",
    "PanelStatus",
    "PointAddress",
    "PointCommand",
    "PointKind",
    "PointStatus",
    "Profile",
    "Quantity",
    "Register",
    "RegisterMap",
    "Role",
    "Table",
    "WriteCommand",
    "available_profiles",
    "load_profile",
    "parse_register",
    "register_number",
]

_PACKAGE = "drivers.modbus_panel.profiles"
# blocks (read plans) remembered per profile, beyond them built per call: a driver polls a
# few dozen blocks (and their trimmed heads), a fuzzer or a provisioning scan any number
_LAYOUT_CACHE = 512
_READS_CACHE = 64


class Alarm(enum.StrEnum):
    """What an active point signals (its event type)."""

    NONE = "none"
    FIRE = "fire"
    CO = "co"
    SUPERVISORY = "supervisory"
    NON_FIRE = "non-fire"
    OTHER = "other"  # an event code the profile does not name; PointStatus.code keeps it


class PanelCommand(enum.StrEnum):
    RESET = "reset"
    SILENCE = "silence"
    ACKNOWLEDGE = "acknowledge"


class PointCommand(enum.StrEnum):
    ACKNOWLEDGE = "acknowledge"
    DISABLE = "disable"
    ENABLE = "enable"


@dataclass(frozen=True, slots=True)
class PointStatus:
    """The state of one point (or zone) as its register shows it."""

    present: bool = True
    alarm: Alarm = Alarm.NONE
    prealarm: bool = False
    trouble: bool = False
    disabled: bool = False
    acknowledged: bool = False
    ack_block: bool = False
    code: int = 0  # the raw event-type code, kept for Alarm.OTHER only (0 otherwise)

    @property
    def active(self) -> bool:
        return self.alarm is not Alarm.NONE


@dataclass(frozen=True, slots=True)
class PanelStatus:
    """Panel-wide conditions (the panel status word)."""

    fire: bool = False
    prealarm: bool = False
    trouble: bool = False
    supervisory: bool = False
    mains_fail: bool = False
    battery_fault: bool = False
    earth_fault: bool = False
    loop_fault: bool = False
    silenced: bool = False
    disablements: bool = False
    test_mode: bool = False


PANEL_FLAGS: tuple[str, ...] = tuple(f.name for f in fields(PanelStatus))


@dataclass(frozen=True, slots=True)
class WriteCommand:
    """A decoded register write: a panel command, or a command to one point."""

    command: PanelCommand | PointCommand
    point: PointAddress | None = None


@dataclass(slots=True)
class Decoded:
    """What some blocks held (only what they covered; the rest stays empty/None)."""

    points: dict[PointAddress, PointStatus]
    zones: dict[int, PointStatus]
    panel: PanelStatus | None
    heartbeat: int | None
    counters: dict[str, int]
    analog: dict[PointAddress, dict[str, float | None]]


class Profile(ProfileData):
    """A validated register map with the codec methods both sides use."""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, file: str | None = None) -> Profile:
        """Validate parsed TOML; errors name the file, the key and the fix."""
        spec = data.get("spec")
        if isinstance(spec, int) and spec not in SUPPORTED_SPECS:  # before any other key
            raise ConfigError(
                f"unsupported profile format version {spec}",
                file=file,
                key="spec",
                fix=f"this edgesdk reads spec {', '.join(map(str, SUPPORTED_SPECS))}",
            )
        profile = parse(cls, data, file=file)
        if profile.point_commands is not None and profile.encoding.kind != "flags":
            raise ConfigError(
                "per-point commands need one register per point",
                file=file,
                key="point_commands",
                fix='remove [point_commands] or use encoding.kind = "flags"',
            )
        if profile.commands is not None and parse_register(profile.commands.address)[0] is not (
            Table.HOLDING
        ):
            raise ConfigError(
                f"register {profile.commands.address} is an input register, it cannot be written",
                file=file,
                key="commands.register",
                fix="use a holding register (4xxxx)",
            )
        check_semantics(profile, file=file)
        # lay the map out now, so overlaps are reported with the file name; store it where
        # the ``registers`` cached_property would (config models leave cached properties alone)
        profile.__dict__["registers"] = RegisterMap(profile, file=file)
        return profile

    # -- the register map ---------------------------------------------------------------
    @cached_property
    def registers(self) -> RegisterMap:
        """Every mapped register, keyed by (table, PDU address): a read-only Mapping whose
        registers are built when first looked up (see :class:`RegisterMap`)."""
        return RegisterMap(self)

    @cached_property
    def _layouts(self) -> dict[tuple[Table, int, int], tuple[Register | None, ...]]:
        """block_registers' tuples by (table, start, count); count -1: the longest yet."""
        return {}

    @cached_property
    def _reads(self) -> dict[tuple[int, BlockKind | None, int | None], list[Block]]:
        return {}

    def block_registers(self, block: Block) -> tuple[Register | None, ...]:
        """The register at each address of ``block`` (None where nothing is mapped).

        Cached per profile: every unit that polls a block shares one tuple (a driver keeps
        one per block it reads, for each of its panels).
        """
        table, start, count = block.table, block.address, block.count
        key = (table, start, count)
        layout = self._layouts.get(key)
        if layout is None:
            # the head of a block read whole (a trimmed block): the same Register objects
            longest = self._layouts.get((table, start, -1))
            if longest is not None and len(longest) >= count:
                layout = longest[:count]
            else:
                layout = self.registers.run(table, start, count)
                if len(self._layouts) < _LAYOUT_CACHE:
                    self._layouts[(table, start, -1)] = layout
            if len(self._layouts) < _LAYOUT_CACHE:
                self._layouts[key] = layout
        return layout

    def locate(self, point: PointAddress) -> Location:
        """The register (and 2-bit field index) of a point; CommandError if not mapped."""
        location = self.registers.locate(point)
        if location is None:
            raise CommandError(f"{self.name}: point {point.label} is not in the map")
        return location

    def locate_zone(self, zone: int) -> Location:
        if self.zones is None or not 1 <= zone <= self.zones.count:
            raise CommandError(f"{self.name}: zone {zone} is not in the map")
        table, address = parse_register(self.zones.base)
        per = 8 if self.encoding.kind == "bits2" else 1
        return Location(table, address + (zone - 1) // per, (zone - 1) % per)

    def locate_analog(self, point: PointAddress, channel: str) -> Location:
        a = self.analog
        names = [c.name for c in a.channels] if a is not None else []
        if (
            a is None
            or channel not in names
            or point.kind is not PointKind.DETECTOR
            or not (1 <= point.slot <= a.slots and 1 <= point.loop <= self.points.loops)
        ):
            raise CommandError(f"{self.name}: no analog {channel!r} for {point.label}")
        table, address = parse_register(a.base)
        offset = (point.loop - 1) * a.loop_stride + (point.slot - 1) * len(names)
        return Location(table, address + offset + names.index(channel))

    def read_blocks(
        self,
        max_registers: int = 125,
        *,
        kind: BlockKind | None = None,
        loops: int | None = None,
    ) -> list[Block]:
        """Coalesced reads covering every status register, then every analog register.

        Only runs of consecutive mapped registers are merged (reading across an unmapped
        address answers exception 02), split at ``max_registers``. ``kind`` keeps only the
        status or only the analog blocks (polled on different schedules); ``loops`` leaves
        out the point and analog registers of loops above it.
        """
        if not 1 <= max_registers <= 125:
            raise ValueError("max_registers must be 1..125 (the Modbus limit for FC03/FC04)")
        key = (max_registers, kind, loops)
        out = self._reads.get(key)
        if out is None:  # every unit of every driver asks: computed once, Blocks shared
            out = []
            for k in (BlockKind.STATUS, BlockKind.ANALOG):
                if kind is not None and k is not kind:
                    continue
                for table in (Table.HOLDING, Table.INPUT):
                    addrs = self.registers.addresses(table, k, loops)
                    out.extend(coalesce(addrs, table, k, max_registers))
            if len(self._reads) < _READS_CACHE:
                self._reads[key] = out
        return list(out)

    def trimmable(self, kind: BlockKind) -> bool:
        """True when a read of ``kind`` blocks can tell an empty slot from an installed
        device, so :meth:`installed_part` may shorten them: status blocks need a
        ``not_present`` point code (a 2-bit encoding has none: ``00`` is a normal device),
        analog blocks a channel with an ``absent`` word."""
        enc = self.encoding
        if kind is BlockKind.STATUS:
            return isinstance(enc, FlagsEncoding) and bool(enc.events.not_present)
        return self.analog is not None and any(c.absent is not None for c in self.analog.channels)

    def installed_part(self, block: Block, words: Sequence[int]) -> Block | None:
        """The head of ``block`` (read whole into ``words``) worth reading on every poll:
        up to its last register that holds something: a point word that does not say "not
        present", an analog word that is not its channel's ``absent`` word, or any other
        register (zone, panel status, heartbeat, counter). None when nothing in it does.
        The block keeps its start address (only its tail goes), so a later read of the
        whole block lines up with the shorter one."""
        if len(words) != block.count:
            raise ProtocolError(f"block {block} answered {len(words)} registers")
        enc = self.encoding
        not_present = enc.events.not_present if isinstance(enc, FlagsEncoding) else []
        shift = enc.event_shift if isinstance(enc, FlagsEncoding) else 0
        absent = [c.absent for c in self.analog.channels] if self.analog is not None else []
        layout = self.block_registers(block)
        last = block.count - 1
        while last >= 0:
            reg = layout[last]
            if reg is not None:
                word = words[last]
                if reg.role is Role.POINT:
                    if (word >> shift) & 0xFF not in not_present:
                        break
                elif reg.role is not Role.ANALOG or word != absent[reg.channel]:
                    break
            last -= 1
        if last < 0:
            return None
        if last == block.count - 1:
            return block
        return Block(block.function, block.address, last + 1, block.kind)

    # -- point and zone words -----------------------------------------------------------
    def encode_point(self, status: PointStatus) -> int:
        """The register word (flags) or the 2-bit field value (bits2) for a point or zone."""
        enc = self.encoding
        if isinstance(enc, Bits2Encoding):
            st = enc.states
            if status.disabled:
                return st.disabled
            if status.alarm in (Alarm.FIRE, Alarm.CO):  # the 2-bit code has no other alarms
                return st.fire
            return st.fault if status.trouble else st.normal
        ev, fl = enc.events, enc.flags
        if not status.present:
            return (ev.not_present[0] if ev.not_present else 0xFF) << enc.event_shift
        code = _event_code(ev, status)
        word = code << enc.event_shift
        word |= 1 << (fl.active if status.active else fl.inactive)
        word |= 1 << (fl.disabled if status.disabled else fl.enabled)
        for flag, bit in (
            (status.prealarm, fl.prealarm),
            (status.trouble, fl.trouble),
            (status.acknowledged, fl.acknowledged),
            (status.ack_block, fl.ack_block),
        ):
            if flag:
                word |= 1 << bit
        return word

    def decode_point(self, value: int) -> PointStatus:
        """Inverse of :meth:`encode_point` (a word, or a 2-bit field for bits2)."""
        enc = self.encoding
        if isinstance(enc, Bits2Encoding):
            st = enc.states
            value &= 3
            if value == st.fire:
                return PointStatus(alarm=Alarm.FIRE)
            if value == st.fault:
                return PointStatus(trouble=True)
            return PointStatus(disabled=value == st.disabled)
        if not 0 <= value <= 0xFFFF:
            raise ProtocolError(f"register word out of range: {value}")
        ev, fl = enc.events, enc.flags
        code = (value >> enc.event_shift) & 0xFF
        if code in ev.not_present:
            return PointStatus(present=False)
        alarm = _alarm_of(ev, code)
        if alarm is Alarm.NONE and value >> fl.active & 1:
            alarm = Alarm.OTHER
        return PointStatus(
            alarm=alarm,
            prealarm=bool(value >> fl.prealarm & 1),
            trouble=bool(value >> fl.trouble & 1),
            disabled=bool(value >> fl.disabled & 1),
            acknowledged=bool(value >> fl.acknowledged & 1),
            ack_block=bool(value >> fl.ack_block & 1),
            code=code if alarm is Alarm.OTHER else 0,
        )

    def encode_word(self, statuses: Sequence[PointStatus | None]) -> int:
        """One register from the states it carries (1 for flags, up to 8 for bits2)."""
        if isinstance(self.encoding, FlagsEncoding):
            (only,) = statuses
            return self.encode_point(only if only is not None else PointStatus(present=False))
        normal = self.encoding.states.normal
        word = 0
        for i, st in enumerate(statuses):
            word |= (self.encode_point(st) if st is not None else normal) << (2 * i)
        return word

    def decode_word(self, word: int, count: int) -> list[PointStatus]:
        """The ``count`` states a register carries."""
        if not 0 <= word <= 0xFFFF:
            raise ProtocolError(f"register word out of range: {word}")
        if isinstance(self.encoding, FlagsEncoding):
            return [self.decode_point(word)]
        return [self.decode_point(word >> (2 * i)) for i in range(count)]

    # -- panel status, analog -----------------------------------------------------------
    def encode_panel_status(self, status: PanelStatus) -> int:
        word = 0
        for name, bit in self.panel.status_bits.model_dump().items():
            if bit is not None and getattr(status, name):
                word |= 1 << bit
        return word

    def decode_panel_status(self, word: int) -> PanelStatus:
        """Flags the profile does not define decode as False; unknown bits are ignored."""
        if not 0 <= word <= 0xFFFF:
            raise ProtocolError(f"register word out of range: {word}")
        bits = self.panel.status_bits.model_dump()
        return PanelStatus(**{n: b is not None and bool(word >> b & 1) for n, b in bits.items()})

    def channel(self, name_or_index: str | int) -> AnalogChannel:
        if self.analog is None:
            raise CommandError(f"{self.name}: profile has no analog values")
        chans = self.analog.channels
        if isinstance(name_or_index, int):
            return chans[name_or_index]
        for c in chans:
            if c.name == name_or_index:
                return c
        raise CommandError(f"{self.name}: no analog channel {name_or_index!r}")

    @staticmethod
    def encode_analog(channel: AnalogChannel, value: float | None) -> int:
        """Scale, round and clamp into a register word; ``None`` gives ``absent``
        (CommandError on a channel without one: there is no word for 'no value')."""
        if value is None:
            if channel.absent is None:
                raise CommandError(f"channel {channel.name!r} has no 'absent' word")
            return channel.absent
        raw = round(value / channel.scale)
        low, high = (-0x8000, 0x7FFF) if channel.signed else (0, 0xFFFF)
        raw = max(low, min(high, raw))
        if raw & 0xFFFF == channel.absent:  # never collide with the sentinel
            raw += -1 if raw > 0 else 1
        return raw & 0xFFFF

    @staticmethod
    def decode_analog(channel: AnalogChannel, word: int) -> float | None:
        if not 0 <= word <= 0xFFFF:
            raise ProtocolError(f"register word out of range: {word}")
        if word == channel.absent:
            return None
        raw = word - 0x10000 if channel.signed and word & 0x8000 else word
        return round(raw * channel.scale, 6)

    # -- blocks -------------------------------------------------------------------------
    def decode_block(self, block: Block, words: Sequence[int]) -> Decoded:
        """Decode the words read for ``block`` (as :meth:`read_blocks` returned it)."""
        if len(words) != block.count:
            raise ProtocolError(f"block {block} answered {len(words)} registers")
        out = Decoded(points={}, zones={}, panel=None, heartbeat=None, counters={}, analog={})
        for word, reg in zip(words, self.block_registers(block), strict=True):
            if reg is None:
                continue
            if reg.role is Role.POINT:
                for p, st in zip(reg.points, self.decode_word(word, len(reg.points)), strict=True):
                    if p is not None:
                        out.points[p] = st
            elif reg.role is Role.ZONE:
                for z, st in zip(reg.zones, self.decode_word(word, len(reg.zones)), strict=True):
                    if z is not None:
                        out.zones[z] = st
            elif reg.role is Role.PANEL_STATUS:
                out.panel = self.decode_panel_status(word)
            elif reg.role is Role.HEARTBEAT:
                out.heartbeat = word
            elif reg.role is Role.COUNTER:
                out.counters[reg.name] = word
            elif reg.role is Role.ANALOG and (point := reg.points[0]) is not None:
                ch = self.channel(reg.channel)
                out.analog.setdefault(point, {})[ch.name] = self.decode_analog(ch, word)
        return out

    # -- commands -----------------------------------------------------------------------
    def command_write(self, command: PanelCommand | str) -> tuple[int, int]:
        """(PDU address, value) to write for a panel command (FC06)."""
        cmd = _enum(PanelCommand, command)
        value = getattr(self.commands, cmd.value, None) if self.commands else None
        if self.commands is None or value is None:
            raise CommandError(f"{self.name}: the panel takes no {cmd.value!r} command")
        return parse_register(self.commands.address)[1], value

    def point_command_write(
        self, point: PointAddress, command: PointCommand | str
    ) -> tuple[int, int]:
        """(PDU address, value) to write for a command to one point (FC06)."""
        cmd = _enum(PointCommand, command)
        pc = self.point_commands
        value = getattr(pc, cmd.value, None) if pc else None
        if value is None:
            raise CommandError(f"{self.name}: points take no {cmd.value!r} command")
        return self.locate(point).address, value

    def writable(self, table: Table, address: int) -> bool:
        reg = self.registers.get((table, address))
        if reg is None or table is not Table.HOLDING:
            return False
        return reg.role is Role.COMMAND or (
            reg.role is Role.POINT and self.point_commands is not None
        )

    def decode_write(self, address: int, value: int) -> WriteCommand:
        """What writing ``value`` to holding register ``address`` asks for.

        Raises CommandError for an address that takes no writes or an unknown value.
        """
        reg = self.registers.get((Table.HOLDING, address))
        if reg is not None and reg.role is Role.COMMAND and self.commands is not None:
            for cmd in PanelCommand:
                if getattr(self.commands, cmd.value) == value:
                    return WriteCommand(cmd)
            raise CommandError(f"{self.name}: unknown panel command value {value:#06x}")
        if reg is not None and reg.role is Role.POINT and self.point_commands is not None:
            for pcmd in PointCommand:
                if getattr(self.point_commands, pcmd.value) == value:
                    return WriteCommand(pcmd, reg.points[0])
            raise CommandError(f"{self.name}: unknown point command value {value:#06x}")
        raise CommandError(f"{self.name}: holding register {address} takes no writes")


# -- helpers ----------------------------------------------------------------------------
def _event_code(ev: EventCodes, status: PointStatus) -> int:
    codes = {
        Alarm.FIRE: ev.fire,
        Alarm.CO: ev.co,
        Alarm.SUPERVISORY: ev.supervisory,
        Alarm.NON_FIRE: ev.non_fire,
    }.get(status.alarm)
    if status.alarm is Alarm.OTHER:
        return status.code & 0xFF
    if codes:
        return codes[0]
    return ev.fire[0] if status.alarm is not Alarm.NONE else (ev.none[0] if ev.none else 0)


def _alarm_of(ev: EventCodes, code: int) -> Alarm:
    for alarm, codes in (
        (Alarm.NONE, ev.none),
        (Alarm.FIRE, ev.fire),
        (Alarm.CO, ev.co),
        (Alarm.SUPERVISORY, ev.supervisory),
        (Alarm.NON_FIRE, ev.non_fire),
    ):
        if code in codes:
            return alarm
    return Alarm.OTHER


def _enum(cls: type[PanelCommand] | type[PointCommand], value: str) -> Any:
    try:
        return cls(value)
    except ValueError:
        names = ", ".join(m.value for m in cls)
        raise CommandError(f"unknown command {value!r}; use one of: {names}") from None


# -- loading ----------------------------------------------------------------------------


def available_profiles() -> list[str]:
    """Names of the profiles bundled with edgesdk."""
    root = resources.files(_PACKAGE)
    return sorted(p.name[: -len(".toml")] for p in root.iterdir() if p.name.endswith(".toml"))


@functools.lru_cache(maxsize=16)
def _load_bundled(name: str) -> Profile:
    text = resources.files(_PACKAGE).joinpath(f"{name}.toml").read_text(encoding="utf-8")
    return Profile.from_mapping(read_toml(text, f"{name}.toml"), file=f"{name}.toml")


def load_profile(name_or_path: str | Path) -> Profile:
    """A bundled profile by name (``notifier-gw``) or a profile file by path.

    Raises :class:`~edgesdk.errors.ConfigError` naming the file, the key and the fix.
    """
    if isinstance(name_or_path, str) and name_or_path in available_profiles():
        return _load_bundled(name_or_path)
    path = Path(name_or_path)
    if path.suffix != ".toml" and not path.exists():
        raise ConfigError(
            f"unknown panel profile {str(name_or_path)!r}",
            key="profile",
            fix=f"use one of {', '.join(available_profiles())} or a path to a .toml file",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read profile: {exc.strerror or exc}",
            file=str(path),
            fix="check the path and its permissions",
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not UTF-8 text: {exc}", file=str(path), fix="save the file as UTF-8 (TOML is UTF-8)"
        ) from exc
    return Profile.from_mapping(read_toml(text, str(path)), file=str(path))
