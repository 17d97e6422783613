"""Register-map profiles: loading, validation errors that name the key, the codec, reads.

The expected numbers come from the domain reference (Notifier MODBUS-GW, GST compact), not
from the profile files, so a wrong profile fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.modbus_panel.profile import (
    PANEL_FLAGS,
    Alarm,
    Block,
    BlockKind,
    PanelStatus,
    PointAddress,
    PointKind,
    PointStatus,
    Profile,
    Role,
    Table,
    available_profiles,
    load_profile,
    parse_register,
    register_number,
)
from drivers.modbus_panel.profiles.schema import StatusBits
from edgesdk.errors import CommandError, ConfigError, ProtocolError

NOTIFIER = load_profile("notifier-gw")
GST = load_profile("gst-compact")
SOURCE = Path(__file__).resolve().parents[2] / "drivers/modbus_panel/profiles/notifier-gw.toml"


def det(loop: int, slot: int) -> PointAddress:
    return PointAddress(loop, PointKind.DETECTOR, slot)


def mod(loop: int, slot: int) -> PointAddress:
    return PointAddress(loop, PointKind.MODULE, slot)


def test_bundled_profiles() -> None:
    assert {"notifier-gw", "gst-compact"} <= set(available_profiles())
    for name in available_profiles():
        profile = load_profile(name)
        assert profile.name == name
        assert profile.spec == 1
        assert profile.vendor
    assert load_profile(SOURCE) == NOTIFIER  # by path too


def test_register_numbers_map_to_pdu_addresses() -> None:
    assert parse_register(40001) == (Table.HOLDING, 0)
    assert parse_register(49500) == (Table.HOLDING, 9499)
    assert parse_register(30001) == (Table.INPUT, 0)
    assert parse_register(400001) == (Table.HOLDING, 0)
    assert register_number(Table.HOLDING, 9499) == 49500
    assert register_number(Table.HOLDING, 20000) == 420001
    with pytest.raises(ValueError):
        parse_register(20001)


def test_notifier_layout() -> None:
    assert NOTIFIER.locate(det(1, 1)).number == 40001
    assert NOTIFIER.locate(det(1, 159)).number == 40159
    assert NOTIFIER.locate(mod(1, 1)).number == 40201
    assert NOTIFIER.locate(det(2, 1)).number == 40401
    assert NOTIFIER.locate(mod(10, 159)).number == 43959
    assert NOTIFIER.locate_zone(1).number == 49001
    with pytest.raises(CommandError):
        NOTIFIER.locate(det(1, 160))  # 159 of the 200 slots are used
    with pytest.raises(CommandError):
        NOTIFIER.locate(det(11, 1))
    regs = NOTIFIER.registers
    assert regs[(Table.HOLDING, 9499)].role is Role.PANEL_STATUS
    assert regs[(Table.HOLDING, 9500)].role is Role.HEARTBEAT
    assert (Table.HOLDING, 159) not in regs


def test_notifier_point_words() -> None:
    assert NOTIFIER.encode_point(PointStatus(alarm=Alarm.FIRE)) == 0x0C10  # Active|Enable|10h
    assert NOTIFIER.encode_point(PointStatus()) == 0x1400  # InActive|Enable
    assert NOTIFIER.encode_point(PointStatus(present=False)) == 0x00FF
    assert NOTIFIER.encode_point(PointStatus(disabled=True)) == 0x1200
    word = NOTIFIER.encode_point(PointStatus(prealarm=True, trouble=True, acknowledged=True))
    assert word == 0x1400 | 1 << 14 | 1 << 13 | 1 << 8
    assert NOTIFIER.decode_point(0x0C40).alarm is Alarm.SUPERVISORY  # 40h is supervisory too
    assert NOTIFIER.decode_point(0x0C71).alarm is Alarm.NON_FIRE
    other = NOTIFIER.decode_point(0x0C55)
    assert other.alarm is Alarm.OTHER
    assert other.code == 0x55
    assert NOTIFIER.encode_point(other) == 0x0C55
    with pytest.raises(ProtocolError):
        NOTIFIER.decode_point(0x10000)


def test_gst_words() -> None:
    assert GST.locate(det(1, 1)).number == 40031
    assert GST.locate(det(1, 1)).index == 0
    assert GST.locate(det(1, 9)).number == 40032
    assert GST.locate(mod(2, 128)).number == 40094
    assert GST.locate(mod(2, 128)).index == 7
    word = GST.encode_word(
        [
            PointStatus(),
            PointStatus(alarm=Alarm.FIRE),
            PointStatus(trouble=True),
            None,
            PointStatus(disabled=True),
        ]
    )
    assert word == 0b11_00_10_01_00
    states = GST.decode_word(word, 5)
    assert [s.alarm is Alarm.FIRE for s in states] == [False, True, False, False, False]
    assert states[2].trouble
    assert states[4].disabled


@given(
    st.builds(
        PointStatus,
        alarm=st.sampled_from([a for a in Alarm if a is not Alarm.OTHER]),
        prealarm=st.booleans(),
        trouble=st.booleans(),
        disabled=st.booleans(),
        acknowledged=st.booleans(),
        ack_block=st.booleans(),
    )
)
def test_flags_roundtrip(status: PointStatus) -> None:
    assert NOTIFIER.decode_point(NOTIFIER.encode_point(status)) == status


@given(
    st.sampled_from(
        [
            PointStatus(),
            PointStatus(alarm=Alarm.FIRE),
            PointStatus(trouble=True),
            PointStatus(disabled=True),
        ]
    ),
    st.integers(0, 7),
)
def test_bits2_roundtrip(status: PointStatus, index: int) -> None:
    fields = [None] * index + [status]
    assert GST.decode_word(GST.encode_word(fields), index + 1)[index] == status


@given(st.fixed_dictionaries({f: st.booleans() for f in PANEL_FLAGS}))
def test_panel_status_roundtrip(flags: dict[str, bool]) -> None:
    status = PanelStatus(**flags)
    assert NOTIFIER.decode_panel_status(NOTIFIER.encode_panel_status(status)) == status


def test_panel_status_bits_cover_every_flag() -> None:
    assert set(StatusBits.model_fields) == set(PANEL_FLAGS)


@given(st.floats(-3000.0, 3000.0, allow_nan=False))
def test_temperature_roundtrip(value: float) -> None:
    ch = NOTIFIER.channel("temperature")
    decoded = NOTIFIER.decode_analog(ch, NOTIFIER.encode_analog(ch, value))
    assert decoded is not None
    assert abs(decoded - value) <= 0.051


def test_analog_scaling_clamping_and_absent() -> None:
    smoke, heat = NOTIFIER.channel("obscuration"), NOTIFIER.channel("temperature")
    assert NOTIFIER.encode_analog(smoke, 3.5) == 350
    assert NOTIFIER.encode_analog(smoke, -1.0) == 0  # clamped to the unsigned range
    assert NOTIFIER.encode_analog(smoke, 1e9) == 0xFFFE  # never the 'absent' word
    assert NOTIFIER.encode_analog(heat, -10.0) == 0xFF9C
    assert NOTIFIER.encode_analog(heat, -1e9) == 0x8001
    assert NOTIFIER.decode_analog(heat, 0x8000) is None
    assert NOTIFIER.decode_analog(smoke, 0xFFFF) is None
    assert (smoke.unit, heat.unit, smoke.scale, heat.scale) == ("%/m", "Cel", 0.01, 0.1)


@pytest.mark.parametrize("profile", [NOTIFIER, GST], ids=["notifier-gw", "gst-compact"])
@pytest.mark.parametrize("limit", [125, 37, 1])
def test_read_blocks_cover_every_register_once_and_never_a_gap(
    profile: Profile, limit: int
) -> None:
    for kind in BlockKind:
        blocks = profile.read_blocks(limit, kind=kind)
        covered: list[tuple[Table, int]] = []
        for b in blocks:
            assert b.kind is kind
            assert 1 <= b.count <= limit
            covered += [(b.table, a) for a in range(b.address, b.address + b.count)]
        expected = {k for k, reg in profile.registers.items() if reg.kind is kind}
        assert len(covered) == len(set(covered))
        assert set(covered) == expected
    assert profile.read_blocks(limit) == profile.read_blocks(
        limit, kind=BlockKind.STATUS
    ) + profile.read_blocks(limit, kind=BlockKind.ANALOG)


def test_read_blocks_for_fewer_loops() -> None:
    blocks = NOTIFIER.read_blocks(kind=BlockKind.STATUS, loops=2)
    assert Block(3, 0, 125, BlockKind.STATUS) in blocks  # loop 1 detectors 1-125
    assert Block(3, 125, 34, BlockKind.STATUS) in blocks  # ... 126-159
    assert Block(3, 9499, 5, BlockKind.STATUS) in blocks  # status, heartbeat, 3 counters
    assert max(b.address for b in blocks if b.address < 9000) == 725  # loop 2 modules
    analog = NOTIFIER.read_blocks(kind=BlockKind.ANALOG, loops=1)
    assert {b.function for b in analog} == {4}
    assert sum(b.count for b in analog) == 318
    assert GST.read_blocks() == [
        Block(3, 0, 5, BlockKind.STATUS),
        Block(3, 10, 8, BlockKind.STATUS),
        Block(3, 30, 64, BlockKind.STATUS),
    ]
    with pytest.raises(ValueError):
        NOTIFIER.read_blocks(126)


def test_decode_block() -> None:
    block = Block(3, 9499, 5, BlockKind.STATUS)
    decoded = NOTIFIER.decode_block(block, [0b1_0000_0001, 42, 1, 2, 3])
    assert decoded.panel == PanelStatus(fire=True, silenced=True)
    assert decoded.heartbeat == 42
    assert decoded.counters == {"fire": 1, "trouble": 2, "total": 3}
    with pytest.raises(ProtocolError):
        NOTIFIER.decode_block(block, [0, 0])


def test_command_encodings() -> None:
    assert NOTIFIER.command_write("reset") == (9509, 0x0001)
    assert NOTIFIER.command_write("silence") == (9509, 0x0002)
    assert NOTIFIER.point_command_write(det(1, 3), "disable") == (2, 0x0200)
    assert NOTIFIER.point_command_write(mod(1, 1), "enable") == (200, 0x0400)
    assert NOTIFIER.point_command_write(det(2, 1), "acknowledge") == (400, 0x0100)
    write = NOTIFIER.decode_write(2, 0x0200)
    assert write.point == det(1, 3)
    assert write.command == "disable"
    assert NOTIFIER.decode_write(9509, 1).command == "reset"
    with pytest.raises(CommandError):
        NOTIFIER.decode_write(9509, 0x0100)
    with pytest.raises(CommandError):
        NOTIFIER.decode_write(9499, 1)  # the status word takes no writes
    with pytest.raises(CommandError, match="points take no"):
        GST.point_command_write(det(1, 1), "disable")
    with pytest.raises(CommandError, match="use one of"):
        GST.command_write("evacuate")
    assert GST.command_write("reset") == (8, 1)


# -- broken profile files ---------------------------------------------------------------
def broken(tmp_path: Path, old: str, new: str) -> ConfigError:
    text = SOURCE.read_text()
    assert old in text
    path = tmp_path / "broken.toml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    assert str(path) in str(info.value)
    return info.value


@pytest.mark.parametrize(
    ("old", "new", "key", "says"),
    [
        ("base = 40201", "base = 40100", "points.module.base", "also used by points.detector"),
        ("base = 49001", "base = 12345", "zones.base", "register number"),
        ("base = 49001", "base = 49950", "zones.base", "runs past"),
        ('vendor = "Notifier (Honeywell)"', "", "vendor", "add this key"),
        ("heartbeat = 49501", "heartbeat = 49501\ncolour = 1", "panel.colour", "remove this key"),
        ("spec = 1", "spec = 2", "spec", "reads spec 1"),
        ("slots = 159", "slots = 0", "points.detector.slots", "greater than or equal to 1"),
        ("register = 49510", "register = 39510", "commands.register", "holding register"),
        ("scale = 0.01", "scale = -1", "analog.channels[0].scale", "positive scale"),
        ('kind = "flags"', 'kind = "bits2"', "encoding.states", "add this key"),
        ("prealarm = 14", "prealarm = 15", "encoding.flags.prealarm", "also used by"),
        ("prealarm = 14", "prealarm = 3", "encoding.flags.prealarm", "event-type byte"),
        ("co = 0x14", "co = 0x10", "encoding.events.co", "also used by encoding.events.fire"),
        ("silenced = 8", "silenced = 0", "panel.status_bits.silenced", "bit 0 is also used"),
        ("enable = 0x0400", "enable = 0x0200", "point_commands.enable", "also used by"),
    ],
)
def test_broken_profile_names_file_key_and_fix(
    tmp_path: Path, old: str, new: str, key: str, says: str
) -> None:
    err = broken(tmp_path, old, new)
    assert err.key == key, err
    assert says in str(err)


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    err = broken(tmp_path, "loops = 10", "loops = = 10")
    assert err.line is not None
    assert (
        "loops = = 10"
        in SOURCE.read_text().replace("loops = 10", "loops = = 10").splitlines()[err.line - 1]
    )


def test_unknown_profile_name_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_profile("siemens-magic")
    assert info.value.key == "profile"
    assert "notifier-gw" in str(info.value)
    with pytest.raises(ConfigError, match="cannot read"):
        load_profile(tmp_path / "missing.toml")
