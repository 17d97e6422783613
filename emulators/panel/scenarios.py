"""Seeded, reproducible scenarios: timed actions applied to a :class:`Panel`.

A scenario is a list of actions at whole emulated seconds, drawn once from its own seeded
generator (which detector catches fire, which loop breaks), so the same seed, layout and
scenario give the same sequence of panel states whatever the wall clock does. The emulator
scales emulated seconds to wall time with its ``time_scale``; tests step it directly.

- ``quiet``: nothing happens but sensor noise and one detector slowly getting dirty.
- ``fire-drill``: smoke builds at one detector (prealarm, then fire), spreads to its
  neighbours in the same zone, heat rises at a heat detector there, the panel is silenced,
  the smoke clears and the panel is reset.
- ``fault-storm``: a loop fault, mains failure, battery fault, three detectors disabled,
  an earth fault; then everything is restored and re-enabled.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from drivers.modbus_panel.profile import PanelCommand, PointCommand, Quantity
from edgesdk.errors import ConfigError
from emulators.panel.model import Panel, Point

__all__ = ["SCENARIOS", "Action", "Scenario", "build_scenario"]


@dataclass(frozen=True, slots=True)
class Action:
    """Something that happens at emulated second ``at``."""

    at: int
    label: str
    apply: Callable[[Panel], None] = field(compare=False)


@dataclass(slots=True)
class Scenario:
    """Actions applied in order as the panel's clock passes them."""

    name: str
    actions: list[Action]
    log: list[tuple[int, str]] = field(default_factory=list)
    _next: int = 0

    @property
    def done(self) -> bool:
        return self._next >= len(self.actions)

    def tick(self, panel: Panel) -> None:
        """Apply what is due at the panel's current second, then step the panel."""
        while self._next < len(self.actions) and self.actions[self._next].at <= panel.ticks:
            action = self.actions[self._next]
            action.apply(panel)
            self.log.append((panel.ticks, action.label))
            self._next += 1
        panel.step()


def _quiet(panel: Panel, rng: random.Random) -> list[Action]:
    smoke = [p for p in panel.points.values() if p.sensor is Quantity.SMOKE]
    dirty = rng.choice(smoke)
    rate = 0.5 / 24  # %/m per emulated hour: dirty after about two emulated days
    return [Action(0, f"{dirty.address.label} starts drifting", _drift(dirty, rate))]


def _fire_drill(panel: Panel, rng: random.Random) -> list[Action]:
    smoke_by_zone: dict[int, list[Point]] = {}
    for p in panel.points.values():
        if p.sensor is Quantity.SMOKE:
            smoke_by_zone.setdefault(p.zone, []).append(p)
    zones = sorted(z for z, pts in smoke_by_zone.items() if len(pts) >= 2) or sorted(smoke_by_zone)
    zone = rng.choice(zones)
    origin = rng.choice(smoke_by_zone[zone])
    others = [p for p in smoke_by_zone[zone] if p is not origin]
    neighbours = sorted(
        others, key=lambda p: (abs(p.address.slot - origin.address.slot), p.address)
    )[:2]
    heat = [p for p in panel.points.values() if p.zone == zone and p.sensor is Quantity.HEAT][:1]
    t0 = 5 + rng.randint(0, 5)
    actions = [Action(t0, f"smoke builds at {origin.address.label}", _trend([origin], 0.1))]
    if neighbours:
        label = f"smoke spreads to {', '.join(p.address.label for p in neighbours)}"
        actions.append(Action(t0 + 45, label, _trend(neighbours, 0.15)))
    if heat:
        actions.append(Action(t0 + 50, f"heat rises at {heat[0].address.label}", _trend(heat, 1.2)))
    involved = [origin, *neighbours, *heat]
    actions += [
        Action(t0 + 90, "silence", lambda panel: panel.command(PanelCommand.SILENCE)),
        Action(t0 + 120, "smoke clears", _trend(involved, -1.0, heat=-3.0)),
        Action(t0 + 150, "reset", lambda panel: panel.command(PanelCommand.RESET)),
    ]
    return actions


def _fault_storm(panel: Panel, rng: random.Random) -> list[Action]:
    loop = rng.randint(1, panel.loops)
    detectors = [p for p in panel.points.values() if p.sensor is not None]
    chosen = sorted(rng.sample(detectors, k=min(3, len(detectors))), key=lambda p: p.address)
    names = ", ".join(p.address.label for p in chosen)
    return [
        Action(5, f"loop {loop} fault", lambda panel: panel.set_loop_fault(loop, True)),
        Action(15, "mains fail", _flag("mains_fail", True)),
        Action(25, "battery fault", _flag("battery_fault", True)),
        Action(30, f"disable {names}", _command(chosen, PointCommand.DISABLE)),
        Action(40, "earth fault", _flag("earth_fault", True)),
        Action(60, f"loop {loop} restored", lambda panel: panel.set_loop_fault(loop, False)),
        Action(75, "mains restored", _flag("mains_fail", False)),
        Action(80, "battery restored", _flag("battery_fault", False)),
        Action(90, "earth fault cleared", _flag("earth_fault", False)),
        Action(120, f"enable {names}", _command(chosen, PointCommand.ENABLE)),
    ]


def _trend(points: list[Point], smoke: float, heat: float | None = None) -> Callable[[Panel], None]:
    """Set the build-up rate per emulated second: %/m for smoke, °C for heat detectors."""

    def apply(panel: Panel) -> None:
        for p in points:
            rate = smoke if p.sensor is Quantity.SMOKE or heat is None else heat
            panel.set_trend(p.address, rate)

    return apply


def _drift(point: Point, per_hour: float) -> Callable[[Panel], None]:
    return lambda panel: panel.set_drift(point.address, per_hour)


def _flag(name: str, value: bool) -> Callable[[Panel], None]:
    return lambda panel: panel.set_panel_flag(name, value)


def _command(points: list[Point], command: PointCommand) -> Callable[[Panel], None]:
    def apply(panel: Panel) -> None:
        for p in points:
            panel.point_command(p.address, command)

    return apply


SCENARIOS: dict[str, Callable[[Panel, random.Random], list[Action]]] = {
    "quiet": _quiet,
    "fire-drill": _fire_drill,
    "fault-storm": _fault_storm,
}


def build_scenario(name: str, panel: Panel, *, seed: int = 0, unit: int = 1) -> Scenario:
    """The scenario ``name`` for ``panel``, drawn from ``seed`` (and the unit id)."""
    try:
        make = SCENARIOS[name]
    except KeyError:
        raise ConfigError(
            f"unknown scenario {name!r}",
            key="scenario",
            fix=f"use one of {', '.join(SCENARIOS)}",
        ) from None
    rng = random.Random(f"scenario:{name}:{seed}:{unit}")
    return Scenario(name, sorted(make(panel, rng), key=lambda a: a.at))
