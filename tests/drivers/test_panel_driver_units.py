"""The modbus-panel driver's pure parts: options, command parsing, the fixed-rate schedule
and the word-diffing state, without any I/O."""

from __future__ import annotations

from typing import Any

import pytest

from drivers.modbus_panel.commands import RegisterWrite, parse_command
from drivers.modbus_panel.config import (
    ModbusPanelConfig,
    RtuEndpoint,
    TcpEndpoint,
    default_gap,
    parse_url,
)
from drivers.modbus_panel.poller import Schedule
from drivers.modbus_panel.profile import (
    Alarm,
    BlockKind,
    PanelStatus,
    PointAddress,
    PointKind,
    PointStatus,
    load_profile,
)
from drivers.modbus_panel.state import UnitState
from edgesdk import driver
from edgesdk.errors import CommandError, ConfigError
from edgesdk.model import Event, EventKind, EventState, Reading

NOTIFIER = load_profile("notifier-gw")
GST = load_profile("gst-compact")
BASE = {"url": "tcp://127.0.0.1:502", "profile": "notifier-gw"}


def config(**options: Any) -> ModbusPanelConfig:
    drv = driver.create("modbus-panel", {**BASE, **options}, instance="p")
    assert isinstance(drv.config, ModbusPanelConfig)
    return drv.config


# -- options ------------------------------------------------------------------------------
def test_defaults() -> None:
    cfg = config()
    assert cfg.units == [1]
    assert (cfg.status_interval, cfg.analog_interval, cfg.full_report_interval) == (1, 5, 300)
    assert cfg.analog_deadband == {"smoke": 0.05, "heat": 0.5}
    assert (cfg.offline_after, cfg.heartbeat_timeout, cfg.max_registers) == (3, 10, 125)
    assert cfg.loops_for(1, NOTIFIER) == 10  # every loop the map holds
    assert cfg.gap() == 0.0  # TCP


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("tcp://10.0.0.5", TcpEndpoint("10.0.0.5", 502)),
        ("tcp://panel.local:5020", TcpEndpoint("panel.local", 5020)),
        ("rtu:///dev/ttyUSB0", RtuEndpoint("/dev/ttyUSB0", 19200, "E", 1, 8)),
        (
            "rtu:///dev/ttyUSB0?baudrate=9600&parity=n&stopbits=2&bytesize=8",
            RtuEndpoint("/dev/ttyUSB0", 9600, "N", 2, 8),
        ),
    ],
)
def test_urls(url: str, endpoint: object) -> None:
    assert parse_url(url) == endpoint


def test_the_rtu_gap_is_three_and_a_half_characters() -> None:
    assert default_gap(RtuEndpoint("/x", 9600, "E", 1)) == pytest.approx(3.5 * 11 / 9600)
    assert default_gap(RtuEndpoint("/x", 9600, "N", 1)) == pytest.approx(3.5 * 10 / 9600)
    assert default_gap(RtuEndpoint("/x", 115200, "N", 1)) == 0.00175  # fixed above 19200
    assert config(url="rtu:///dev/ttyS0?baudrate=19200").gap() == pytest.approx(3.5 * 11 / 19200)
    assert config(url="rtu:///dev/ttyS0", inter_frame_gap=0.01).gap() == 0.01


@pytest.mark.parametrize(
    ("options", "key", "text"),
    [
        ({"url": "udp://h:1"}, "url", "unknown scheme"),
        ({"url": "tcp://:502"}, "url", "missing host"),
        ({"url": "tcp://h:99999"}, "url", "1..65535"),
        ({"url": "rtu://dev/ttyUSB0"}, "url", "three /"),
        ({"url": "rtu:///dev/ttyUSB0?speed=9600"}, "url", "unknown rtu option"),
        ({"url": "rtu:///dev/ttyUSB0?baudrate=fast"}, "url", "whole numbers"),
        ({"url": "rtu:///dev/ttyUSB0?parity=X"}, "url", "parity must be N, E or O"),
        ({"url": "rtu:///dev/ttyUSB0?bytesize=7"}, "url", "8 data bits"),
        ({"profile": "acme"}, "profile", "unknown panel profile"),
        ({"profile": "/nonexistent/panel.toml"}, "profile", "cannot read profile"),
        ({"units": []}, "units", "at least 1"),
        ({"units": [1, 1]}, "units", "duplicate"),
        ({"units": [248]}, "units", "1..247"),
        ({"loops": 11}, "", "loops must be 1..10"),
        ({"loops": {"2": 1}}, "", "not in units"),
        ({"status_interval": 0.05}, "status_interval", "greater than or equal to 0.1"),
        ({"timeout": 0}, "timeout", "greater than 0"),
        ({"retries": 11}, "retries", "less than or equal to 10"),
        ({"analog_deadband": {"smoke": -1}}, "analog_deadband", ">= 0"),
        ({"analog_deadband": {"co2": 1}}, "", "unknown channel 'co2'"),
        ({"full_report_interval": 1, "analog_interval": 5}, "", "must be >= analog_interval"),
        ({"backoff_min": 5, "backoff_max": 1}, "", "backoff_max"),
        ({"heartbeat_timeout": 0.2}, "heartbeat_timeout", "0 (off) or at least 0.5"),
        ({"point_zones": {"loop1": 1}}, "", "not a point or range"),
        ({"point_zones": {"l1/d001-d010": 1, "l1/d005": 2}}, "", "overlaps"),
        ({"point_zones": {"l1/d010-d001": 1}}, "", "backwards"),
        ({"point_zones": {"l1/d001": 0}}, "", "zone must be 1..65535"),
        ({"poll_interval": 1}, "poll_interval", "remove this key"),
    ],
)
def test_bad_options_name_the_key_and_the_fix(options: dict[str, Any], key: str, text: str) -> None:
    with pytest.raises(ConfigError) as info:
        driver.create("modbus-panel", {**BASE, **options}, prefix="devices.panel1")
    message = str(info.value)
    assert text in message
    assert info.value.key is not None and info.value.key.startswith("devices.panel1")
    if key:
        assert info.value.key == f"devices.panel1.{key}"
    assert info.value.fix


def test_point_zones_and_per_unit_loops() -> None:
    cfg = config(
        units=[1, 2],
        loops={"2": 1},
        point_zones={"l1/d001-d003": 4, "u2/l1/m002": 9, "u2/l1/d003": 5},
    )
    assert (cfg.loops_for(1, NOTIFIER), cfg.loops_for(2, NOTIFIER)) == (10, 1)
    zones = cfg.zone_map()
    d3, m2 = PointAddress(1, PointKind.DETECTOR, 3), PointAddress(1, PointKind.MODULE, 2)
    assert zones[(0, d3)] == 4  # every unit
    assert zones[(2, d3)] == 5  # unit 2 only, wins over the general range
    assert zones[(2, m2)] == 9
    assert len(zones) == 5


# -- commands -----------------------------------------------------------------------------
def test_panel_and_point_commands_become_register_writes() -> None:
    units = [1, 2]
    assert parse_command("reset", True, NOTIFIER, units) == [
        RegisterWrite(1, 9509, 0x0001, "reset"),
        RegisterWrite(2, 9509, 0x0001, "reset"),
    ]
    assert parse_command("u2/silence", 1, NOTIFIER, units) == [
        RegisterWrite(2, 9509, 0x0002, "silence")
    ]
    assert parse_command("u1/l2/m007", "Disable", NOTIFIER, units) == [
        RegisterWrite(1, 40607 - 40001, 0x0200, "disable L2M007")
    ]
    assert parse_command("l1/d001", "ack", NOTIFIER, [3]) == [
        RegisterWrite(3, 0, 0x0100, "acknowledge L1D001")
    ]
    assert parse_command("acknowledge", True, GST, [1]) == [
        RegisterWrite(1, 8, 0x0004, "acknowledge")
    ]


@pytest.mark.parametrize(
    ("point", "value", "profile", "text"),
    [
        ("evacuate", True, NOTIFIER, "unknown command target"),
        ("u1/reset/now", True, NOTIFIER, "unknown command target"),
        ("reset", "yes", NOTIFIER, "written True"),
        ("reset", 2, NOTIFIER, "written True"),
        ("u5/reset", True, NOTIFIER, "not polled"),
        ("l1/d001", "disable", NOTIFIER, "name the unit"),
        ("u1/l1/d001", True, NOTIFIER, "takes one of"),
        ("u1/l1/d160", "disable", NOTIFIER, "not in the map"),
        ("u1/l1/d001", "disable", GST, "points take no"),
    ],
)
def test_bad_commands(point: str, value: Any, profile: Any, text: str) -> None:
    units = [1, 2] if point.startswith("l") else [1]
    with pytest.raises(CommandError, match=text):
        parse_command(point, value, profile, units)


# -- the schedule -------------------------------------------------------------------------
def test_the_schedule_keeps_its_rate_and_skips_missed_slots() -> None:
    s = Schedule(0.1)
    s.start(100.0)
    # cycles that finish early or late within the slot: deadlines stay on the 100 ms grid
    for finished in (100.03, 100.19, 100.21, 100.35):
        assert s.advance(finished) == 0
    assert s.next == pytest.approx(100.4)
    # a cycle that ends at 100.73 has missed the slots at 100.5, 100.6 and 100.7
    assert s.advance(100.73) == 3
    assert s.next == pytest.approx(100.8)
    assert s.advance(100.8) == 0  # exactly on time is not late
    assert s.next == pytest.approx(100.9)


# -- the state ----------------------------------------------------------------------------
def _blocks(kind: BlockKind, loops: int = 1) -> list[Any]:
    return NOTIFIER.read_blocks(kind=kind, loops=loops)


def _words(block: Any, statuses: dict[int, PointStatus] | None = None) -> list[int]:
    """A block of loop 1 detector words, all normal but ``statuses`` (by slot)."""
    normal = NOTIFIER.encode_point(PointStatus())
    words = [normal] * block.count
    for slot, status in (statuses or {}).items():
        words[slot - 1 - block.address] = NOTIFIER.encode_point(status)
    return words


def test_only_changed_words_raise_events_and_clears_reuse_the_id() -> None:
    state = UnitState(1, NOTIFIER, "p", zones={PointAddress(1, PointKind.DETECTOR, 3): 7})
    block = _blocks(BlockKind.STATUS)[0]  # loop 1 detectors 1..125
    assert (block.address, block.count) == (0, 125)
    assert state.status_block(block, _words(block), 0.0, 1.0) == []
    fire = PointStatus(alarm=Alarm.FIRE, prealarm=True)
    [first, second] = state.status_block(block, _words(block, {3: fire}), 0.0, 2.0)
    assert isinstance(first, Event) and isinstance(second, Event)
    assert (first.kind, second.kind) == (EventKind.FIRE, EventKind.PREALARM)  # fire first
    assert dict(first.data) == {
        "unit": 1,
        "loop": 1,
        "point": "d003",
        "address": 40003,
        "zone": 7,
        "code": 0x10,
    }
    assert first.time == 2.0
    # the same words again: nothing decoded, nothing raised (the shared empty list)
    again = state.status_block(block, _words(block, {3: fire}), 0.0, 3.0)
    assert again == [] and again is state.status_block(block, _words(block, {3: fire}), 0, 4)
    # acknowledged is no new condition; the prealarm ends alone
    acked = PointStatus(alarm=Alarm.FIRE, acknowledged=True)
    [pre_cleared] = state.status_block(block, _words(block, {3: acked}), 0.0, 5.0)
    assert isinstance(pre_cleared, Event)
    assert (pre_cleared.kind, pre_cleared.state, pre_cleared.id) == (
        EventKind.PREALARM,
        EventState.CLEARED,
        second.id,
    )
    [cleared] = state.status_block(block, _words(block), 0.0, 6.0)
    assert isinstance(cleared, Event)
    assert (cleared.state, cleared.id, cleared.time) == (EventState.CLEARED, first.id, 6.0)
    assert state.active == []


def test_co_and_other_alarms_map_to_fire_and_supervisory() -> None:
    state = UnitState(1, NOTIFIER, "p")
    block = _blocks(BlockKind.STATUS)[0]
    co = PointStatus(alarm=Alarm.CO)
    non_fire = PointStatus(alarm=Alarm.NON_FIRE)
    gone = PointStatus(present=False, alarm=Alarm.FIRE)
    items = state.status_block(block, _words(block, {1: co, 2: non_fire, 4: gone}), 0, 1)
    got = {(i.kind, i.data["point"], i.data["code"]) for i in items if isinstance(i, Event)}
    assert got == {(EventKind.FIRE, "d001", 0x14), (EventKind.SUPERVISORY, "d002", 0x71)}


def test_panel_word_heartbeat_and_zones() -> None:
    state = UnitState(2, NOTIFIER, "p")
    panel_block = next(b for b in _blocks(BlockKind.STATUS) if b.address == 49500 - 40001)
    zone_block = next(b for b in _blocks(BlockKind.STATUS) if b.address == 49001 - 40001)
    status = NOTIFIER.encode_panel_status(PanelStatus(mains_fail=True, silenced=True))
    words = [status, 17, 0, 0, 0]
    items = state.status_block(panel_block, words, 5.0, 1.0)
    assert {(i.kind, i.severity.value) for i in items if isinstance(i, Event)} == {
        (EventKind.MAINS_FAIL, "trouble"),
        (EventKind.SILENCED, "info"),
    }
    # the heartbeat is reported when first seen, after the events
    assert isinstance(items[-1], Reading)
    assert (items[-1].name, items[-1].value) == ("u2/heartbeat", 17)
    assert (state.heartbeat, state.heartbeat_since) == (17, 5.0)
    assert state.status_block(panel_block, [status, 18, 0, 0, 1], 6.0, 2.0) == []
    assert (state.heartbeat, state.heartbeat_since) == (18, 6.0)
    zones = [NOTIFIER.encode_point(PointStatus())] * zone_block.count
    zones[3] = NOTIFIER.encode_point(PointStatus(alarm=Alarm.FIRE))
    [zone_fire] = state.status_block(zone_block, zones, 0, 3.0)
    assert isinstance(zone_fire, Event)
    assert (zone_fire.kind, dict(zone_fire.data)) == (EventKind.ZONE_FIRE, {"unit": 2, "zone": 4})


def test_bits2_words_carry_eight_points() -> None:
    state = UnitState(1, GST, "p")
    first = 40031 - 40001  # loop 1 detectors 1..8 in the first word
    block = next(b for b in GST.read_blocks(kind=BlockKind.STATUS, loops=1) if b.address == first)
    words = [0] * block.count
    words[0] = 0b11_00_00_00_00_10_01_00  # d002 fire, d003 fault, d008 disabled
    items = [i for i in state.status_block(block, words, 0, 1) if isinstance(i, Event)]
    got = {(i.kind, i.data["point"], i.data["code"], i.data["address"]) for i in items}
    assert got == {
        (EventKind.FIRE, "d002", 0b01, 40031),
        (EventKind.POINT_TROUBLE, "d003", 0b10, 40031),
        (EventKind.POINT_DISABLED, "d008", 0b11, 40031),
    }


def test_analog_deadband_absent_values_and_full_report() -> None:
    state = UnitState(1, NOTIFIER, "p", deadbands=[0.05, 0.5])
    block = _blocks(BlockKind.ANALOG)[0]
    smoke, heat = NOTIFIER.channel("obscuration"), NOTIFIER.channel("temperature")
    assert smoke.absent is not None
    assert heat.absent is not None
    words = ([smoke.absent, heat.absent] * block.count)[: block.count]  # the whole block
    words[0] = NOTIFIER.encode_analog(smoke, 0.20)  # d001 smoke
    words[3] = NOTIFIER.encode_analog(heat, 21.0)  # d002 heat
    first = state.analog_block(block, list(words), 1.0)
    assert [(r.name, r.value, r.unit) for r in first if isinstance(r, Reading)] == [
        ("u1/l1/d001/smoke", 0.2, "%/m"),
        ("u1/l1/d002/heat", 21.0, "Cel"),
    ]
    words[0] = NOTIFIER.encode_analog(smoke, 0.24)  # inside the band
    words[3] = NOTIFIER.encode_analog(heat, 21.4)
    assert state.analog_block(block, list(words), 2.0) == []
    words[0] = NOTIFIER.encode_analog(smoke, 0.25)  # 0.05 from the last reported 0.20
    words[3] = NOTIFIER.encode_analog(heat, 18.0)
    moved = {
        r.name: r.value
        for r in state.analog_block(block, list(words), 3.0)
        if isinstance(r, Reading)
    }
    assert moved == {"u1/l1/d001/smoke": 0.25, "u1/l1/d002/heat": 18.0}
    words[0] = smoke.absent  # the detector is gone: nothing to report
    assert state.analog_block(block, list(words), 4.0) == []
    report = state.full_report(5.0)
    assert [(r.name, r.value) for r in report if isinstance(r, Reading)] == [
        ("u1/l1/d002/heat", 18.0)
    ]
