"""The panel model and its scenarios, without any transport: latching, commands, drift,
counters, and seeded reproducibility (same seed, same recorded sequence of states)."""

from __future__ import annotations

import pytest

from drivers.modbus_panel.profile import Alarm, PointAddress, PointKind, Quantity
from edgesdk.errors import CommandError, ConfigError
from emulators.panel.model import Panel
from emulators.panel.scenarios import SCENARIOS, build_scenario


def det(loop: int, slot: int) -> PointAddress:
    return PointAddress(loop, PointKind.DETECTOR, slot)


def mod(loop: int, slot: int) -> PointAddress:
    return PointAddress(loop, PointKind.MODULE, slot)


def record(name: str, seed: int, ticks: int = 220) -> list[tuple[object, ...]]:
    panel = Panel(seed=seed)
    scenario = build_scenario(name, panel, seed=seed)
    states = []
    for _ in range(ticks):
        scenario.tick(panel)
        states.append(panel.snapshot())
    return states


def test_layout_zones_and_sensors() -> None:
    panel = Panel(loops=2, detectors=20, modules=10)
    assert len(panel.points) == 60
    assert panel.zone_count == 4
    assert panel.point(det(1, 5)).sensor is Quantity.HEAT
    assert panel.point(det(1, 4)).sensor is Quantity.SMOKE
    assert panel.point(mod(1, 1)).sensor is None
    assert panel.point(det(2, 11)).zone == 4
    assert panel.point(det(1, 10)).zone == 1
    with pytest.raises(CommandError, match="L3D001"):
        panel.point(det(3, 1))
    with pytest.raises(CommandError):
        Panel(detectors=0)


def test_fire_latches_until_a_reset_finds_the_cause_gone() -> None:
    panel = Panel()
    panel.set_point(det(1, 3), alarm="fire")
    assert panel.point_status(det(1, 3)).alarm is Alarm.FIRE
    panel.command("reset")  # smoke still there: stays in fire
    assert panel.point_status(det(1, 3)).alarm is Alarm.FIRE
    panel.set_point(det(1, 3), alarm="none")
    assert panel.point_status(det(1, 3)).alarm is Alarm.FIRE  # latched
    panel.command("reset")
    assert panel.point_status(det(1, 3)).alarm is Alarm.NONE
    assert panel.counters == {"fire": 1, "trouble": 0, "total": 1}


def test_supervisory_tracks_its_cause() -> None:
    panel = Panel()
    panel.set_point(mod(1, 2), alarm="supervisory")
    assert panel.panel_status().supervisory
    panel.set_point(mod(1, 2), alarm="none")
    assert not panel.panel_status().supervisory


def test_analog_thresholds_prealarm_then_fire() -> None:
    panel = Panel()
    smoke = det(1, 1)
    panel.set_analog(smoke, 2.2)
    st = panel.point_status(smoke)
    assert st.prealarm
    assert st.alarm is Alarm.NONE
    panel.set_analog(smoke, 3.6)
    assert panel.point_status(smoke).alarm is Alarm.FIRE
    heat = det(1, 5)
    panel.set_analog(heat, 56.9)
    assert panel.point_status(heat).alarm is Alarm.NONE
    assert panel.point_status(heat).prealarm
    panel.set_analog(heat, 57.0)
    assert panel.point_status(heat).alarm is Alarm.FIRE
    assert panel.analog(heat, Quantity.HEAT) == 57.0
    assert panel.analog(heat, Quantity.SMOKE) is None
    with pytest.raises(CommandError, match="module"):
        panel.set_analog(mod(1, 1), 1.0)


def test_trend_builds_smoke_until_fire() -> None:
    panel = Panel(seed=2)
    panel.set_trend(det(1, 2), 0.5)
    for _ in range(12):
        panel.step()
    assert panel.point_status(det(1, 2)).alarm is Alarm.FIRE
    assert panel.point_status(det(1, 2)).prealarm


def test_silence_and_a_new_fire_resounds() -> None:
    panel = Panel()
    panel.set_point(det(1, 3), alarm="fire")
    panel.command("silence")
    assert panel.panel_status().silenced
    panel.set_point(det(1, 4), alarm="fire")
    assert not panel.panel_status().silenced
    panel.command("silence")
    panel.set_point(det(1, 3), alarm="none")
    panel.set_point(det(1, 4), alarm="none")
    panel.command("reset")
    assert panel.panel_status() == type(panel.panel_status())()  # all quiet again


def test_disable_hides_a_point_and_enable_restores_it() -> None:
    panel = Panel()
    panel.set_point(det(1, 3), alarm="fire", trouble=True)
    panel.point_command(det(1, 3), "disable")
    st = panel.point_status(det(1, 3))
    assert st.disabled
    assert st.alarm is Alarm.NONE
    assert not st.trouble
    ps = panel.panel_status()
    assert ps.disablements
    assert not ps.fire
    assert not ps.trouble
    panel.point_command(det(1, 3), "enable")
    st = panel.point_status(det(1, 3))
    assert not st.disabled
    assert st.alarm is Alarm.FIRE
    assert st.trouble


def test_acknowledge_marks_off_normal_points() -> None:
    panel = Panel()
    panel.set_point(det(1, 3), alarm="fire")
    panel.set_point(det(1, 4), trouble=True)
    panel.command("acknowledge")
    assert panel.point_status(det(1, 3)).acknowledged
    assert panel.point_status(det(1, 4)).ack_block
    assert not panel.point_status(det(1, 5)).acknowledged
    zone = panel.zone_status(1)
    assert zone.alarm is Alarm.FIRE
    assert zone.acknowledged
    assert zone.trouble


def test_loop_fault_troubles_every_point_of_the_loop() -> None:
    panel = Panel()
    panel.set_loop_fault(2, True)
    assert all(panel.point_status(a).trouble for a in panel.points if a.loop == 2)
    assert not any(panel.point_status(a).trouble for a in panel.points if a.loop == 1)
    ps = panel.panel_status()
    assert ps.loop_fault
    assert ps.trouble
    panel.set_loop_fault(2, False)
    assert not panel.panel_status().trouble
    assert panel.counters["trouble"] == 31  # the loop fault and its 30 points
    with pytest.raises(CommandError):
        panel.set_loop_fault(3, True)


def test_drift_makes_a_detector_dirty() -> None:
    panel = Panel()
    panel.set_drift(det(1, 1), 3600.0)  # +1 %/m per emulated second
    panel.step()
    assert not panel.point_status(det(1, 1)).trouble
    panel.step()
    assert panel.point_status(det(1, 1)).trouble  # clean-air value past 1.5 %/m


def test_panel_flags_and_counters_wrap() -> None:
    panel = Panel()
    panel.set_panel_flag("mains_fail", True)
    panel.set_panel_flag("mains_fail", True)  # no new event
    panel.set_panel_flag("test_mode", True)
    ps = panel.panel_status()
    assert ps.mains_fail
    assert ps.trouble
    assert ps.test_mode
    assert panel.counters == {"fire": 0, "trouble": 1, "total": 1}
    with pytest.raises(CommandError, match="set_loop_fault"):
        panel.set_panel_flag("loop_fault", True)
    panel.counters["total"] = 0xFFFF
    panel.set_panel_flag("earth_fault", True)
    assert panel.counters["total"] == 0


def test_unknown_values_are_command_errors() -> None:
    panel = Panel()
    with pytest.raises(CommandError, match="fire"):
        panel.set_point(det(1, 1), alarm="smoke")
    with pytest.raises(CommandError):
        panel.command("evacuate")


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_same_seed_same_sequence_of_states(name: str) -> None:
    first = record(name, seed=42)
    second = record(name, seed=42)
    assert first == second
    assert len({s[1:] for s in first}) > 1  # the states do change over time


def test_different_seeds_differ() -> None:
    runs = [record("fire-drill", seed=s, ticks=120) for s in range(1, 6)]
    assert len({tuple(r) for r in runs}) > 1


def test_fire_drill_story() -> None:
    panel = Panel(seed=5)
    scenario = build_scenario("fire-drill", panel, seed=5)
    fires: set[PointAddress] = set()
    silenced = False
    for _ in range(250):
        scenario.tick(panel)
        fires |= {a for a, p in panel.points.items() if p.alarm is Alarm.FIRE}
        silenced = silenced or panel.panel_status().silenced
    zones = {panel.point(a).zone for a in fires}
    assert len(fires) >= 3
    assert len(zones) == 1
    assert silenced
    assert scenario.done
    assert [label for _, label in scenario.log][-2:] == ["smoke clears", "reset"]
    ps = panel.panel_status()
    assert not ps.fire
    assert not ps.prealarm
    assert not ps.silenced
    assert panel.counters["fire"] == len(fires)


def test_fault_storm_story() -> None:
    panel = Panel(seed=9)
    scenario = build_scenario("fault-storm", panel, seed=9)
    seen: set[str] = set()
    for _ in range(130):
        scenario.tick(panel)
        ps = panel.panel_status()
        seen |= {
            f
            for f in ("mains_fail", "battery_fault", "earth_fault", "loop_fault", "disablements")
            if getattr(ps, f)
        }
    assert seen == {"mains_fail", "battery_fault", "earth_fault", "loop_fault", "disablements"}
    assert scenario.done
    assert panel.panel_status() == type(panel.panel_status())()


def test_unknown_scenario_names_the_key() -> None:
    with pytest.raises(ConfigError) as info:
        build_scenario("party", Panel())
    assert info.value.key == "scenario"
    assert "fire-drill" in str(info.value)
