"""The emulated fire alarm panel: loops of detectors and modules, zones, panel conditions.

The model knows nothing about Modbus: it holds causes (smoke at a detector, a pressed call
point, a loop break) and the state a panel shows for them (latched alarms, troubles,
disablements, silenced sounders), and answers "what is point L1D003's state now?" in the
codec's types (:class:`~drivers.modbus_panel.profile.PointStatus`,
:class:`~drivers.modbus_panel.profile.PanelStatus`). Time advances in whole emulated
seconds through :meth:`Panel.step`, and all randomness comes from one seeded generator, so
the same seed and the same calls give the same sequence of states.

Panel logic (ours, modelled on common practice):

- Fire and CO alarms and prealarms **latch** until a reset finds their cause gone;
  supervisory and non-fire activations track their cause.
- A smoke detector prealarms at 2.0 %/m and alarms at 3.5 %/m; a heat detector prealarms at
  50 °C and alarms at 57 °C (fixed temperature). A smoke detector whose clean-air value has
  drifted to 1.5 %/m reports trouble (dirty, needs service).
- A loop fault puts every point of that loop in trouble.
- A disabled point reports nothing (no alarm, no trouble) until enabled.
- A new fire un-silences the panel (the sounders resound).
- Counters (u16, wrapping): ``fire`` counts new fire alarms, ``trouble`` new troubles
  (points and panel faults), ``total`` every new event (alarms, prealarms, troubles,
  disablements, panel faults).
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field
from typing import TypeVar

from drivers.modbus_panel.profile import (
    Alarm,
    PanelCommand,
    PanelStatus,
    PointAddress,
    PointCommand,
    PointKind,
    PointStatus,
    Quantity,
)
from edgesdk.errors import CommandError

__all__ = ["SETTABLE_FLAGS", "Panel", "Point", "Thresholds"]

SETTABLE_FLAGS = ("mains_fail", "battery_fault", "earth_fault", "test_mode", "silenced")
"""Panel flags a test or rig sets directly (the others follow from the points)."""

E = TypeVar("E", bound=enum.StrEnum)

_FAULT_FLAGS = ("mains_fail", "battery_fault", "earth_fault")
_LATCHING = (Alarm.FIRE, Alarm.CO)
_NOT_PRESENT = PointStatus(present=False)
_PRIORITY = (Alarm.FIRE, Alarm.CO, Alarm.SUPERVISORY, Alarm.NON_FIRE, Alarm.OTHER)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Detector behaviour (values in %/m for smoke, °C for heat)."""

    smoke_clean: float = 0.2
    smoke_prealarm: float = 2.0
    smoke_fire: float = 3.5
    smoke_dirty: float = 1.5
    smoke_noise: float = 0.02
    heat_ambient: float = 21.0
    heat_prealarm: float = 50.0
    heat_fire: float = 57.0
    heat_noise: float = 0.1


@dataclass(slots=True)
class Point:
    """One device: its causes (``input_*``, analog), and the state the panel shows."""

    address: PointAddress
    zone: int
    sensor: Quantity | None  # what a detector measures; None for modules
    present: bool = True
    input_alarm: Alarm = Alarm.NONE
    input_prealarm: bool = False
    input_trouble: bool = False
    alarm: Alarm = Alarm.NONE
    prealarm: bool = False
    trouble: bool = False
    disabled: bool = False
    acknowledged: bool = False
    ack_block: bool = False
    baseline: float = 0.0  # clean-air value (smoke) or ambient (heat)
    excess: float = 0.0  # what the environment adds (smoke, heat) above the baseline
    trend: float = 0.0  # change of ``excess`` per emulated second
    drift: float = 0.0  # change of ``baseline`` per emulated hour (a dirty detector)
    noise: float = 0.0
    held: float | None = None  # a value pinned by set_analog (no noise, no trend)

    @property
    def value(self) -> float | None:
        if self.sensor is None:
            return None
        if self.held is not None:
            return self.held
        v = self.baseline + self.excess + self.noise
        return max(v, 0.0) if self.sensor is Quantity.SMOKE else v

    def status(self) -> PointStatus:
        if not self.present:
            return _NOT_PRESENT
        return PointStatus(
            alarm=self.alarm,
            prealarm=self.prealarm,
            trouble=self.trouble,
            disabled=self.disabled,
            acknowledged=self.acknowledged,
            ack_block=self.ack_block,
        )


@dataclass(slots=True)
class _Flags:
    mains_fail: bool = False
    battery_fault: bool = False
    earth_fault: bool = False
    test_mode: bool = False
    silenced: bool = False
    loop_faults: set[int] = field(default_factory=set)


class Panel:
    """One panel: ``loops`` loops of ``detectors`` detectors and ``modules`` modules.

    Every fifth detector is a heat detector, the others smoke. Detectors are grouped in
    zones of ``zone_size`` per loop; modules share their loop's zones in turn.
    """

    def __init__(
        self,
        *,
        loops: int = 2,
        detectors: int = 20,
        modules: int = 10,
        zone_size: int = 10,
        seed: int = 0,
        unit: int = 1,
        thresholds: Thresholds | None = None,
    ) -> None:
        if loops < 1 or detectors < 1 or modules < 0 or zone_size < 1:
            raise CommandError("a panel needs >= 1 loop, >= 1 detector, >= 0 modules")
        self.loops, self.detectors, self.modules = loops, detectors, modules
        self.th = thresholds or Thresholds()
        self.rng = random.Random(f"panel:{seed}:{unit}")
        self.ticks = 0
        self.version = 0  # +1 on every change a reader could see (lets readers cache words)
        self.flags = _Flags()
        self.counters = {"fire": 0, "trouble": 0, "total": 0}
        per_loop = -(-detectors // zone_size)
        self.zone_count = loops * per_loop
        self.points: dict[PointAddress, Point] = {}
        for loop in range(1, loops + 1):
            first_zone = (loop - 1) * per_loop + 1
            for d in range(1, detectors + 1):
                sensor = Quantity.HEAT if d % 5 == 0 else Quantity.SMOKE
                p = Point(
                    PointAddress(loop, PointKind.DETECTOR, d),
                    first_zone + (d - 1) // zone_size,
                    sensor,
                )
                if sensor is Quantity.SMOKE:
                    p.baseline = round(self.th.smoke_clean + self.rng.uniform(-0.05, 0.05), 3)
                else:
                    p.baseline = self.th.heat_ambient
                self.points[p.address] = p
            for m in range(1, modules + 1):
                addr = PointAddress(loop, PointKind.MODULE, m)
                self.points[addr] = Point(addr, first_zone + (m - 1) % per_loop, None)
        self._zones: dict[int, list[Point]] = {z: [] for z in range(1, self.zone_count + 1)}
        for p in self.points.values():
            self._zones[p.zone].append(p)
        self._detectors = [p for p in self.points.values() if p.sensor is not None]

    # -- reading ------------------------------------------------------------------------
    @property
    def heartbeat(self) -> int:
        """+1 per emulated second, wrapping at 65535."""
        return self.ticks & 0xFFFF

    def point(self, address: PointAddress) -> Point:
        try:
            return self.points[address]
        except KeyError:
            raise CommandError(f"no point {address.label} on this panel") from None

    def point_status(self, address: PointAddress) -> PointStatus:
        p = self.points.get(address)
        return p.status() if p is not None else _NOT_PRESENT

    def zone_status(self, zone: int) -> PointStatus:
        members = self._zones.get(zone)
        if not members:
            return _NOT_PRESENT
        live = [p for p in members if p.present and not p.disabled]
        alarms = {p.alarm for p in live}
        alarm = next((a for a in _PRIORITY if a in alarms), Alarm.NONE)
        off_normal = [p for p in live if p.alarm is not Alarm.NONE or p.prealarm]
        troubled = [p for p in live if p.trouble]
        return PointStatus(
            alarm=alarm,
            prealarm=any(p.prealarm for p in live),
            trouble=bool(troubled),
            disabled=not live,
            acknowledged=bool(off_normal) and all(p.acknowledged for p in off_normal),
            ack_block=bool(troubled) and all(p.ack_block for p in troubled),
        )

    def analog(self, address: PointAddress, quantity: Quantity) -> float | None:
        p = self.points.get(address)
        if p is None or not p.present or p.sensor is not quantity:
            return None
        return p.value

    def panel_status(self) -> PanelStatus:
        f = self.flags
        pts = self.points.values()
        faults = f.mains_fail or f.battery_fault or f.earth_fault or bool(f.loop_faults)
        return PanelStatus(
            fire=any(p.alarm in _LATCHING for p in pts),
            prealarm=any(p.prealarm for p in pts),
            trouble=faults or any(p.trouble for p in pts),
            supervisory=any(p.alarm is Alarm.SUPERVISORY for p in pts),
            mains_fail=f.mains_fail,
            battery_fault=f.battery_fault,
            earth_fault=f.earth_fault,
            loop_fault=bool(f.loop_faults),
            silenced=f.silenced,
            disablements=any(p.disabled for p in pts),
            test_mode=f.test_mode,
        )

    def snapshot(self) -> tuple[object, ...]:
        """Everything a client could read, as one comparable value (for replay tests)."""
        return (
            self.ticks,
            tuple(p.status() for p in self.points.values()),
            tuple(None if p.value is None else round(p.value, 2) for p in self._detectors),
            self.panel_status(),
            tuple(self.counters.values()),
        )

    # -- time ---------------------------------------------------------------------------
    def step(self, dt: float = 1.0) -> None:
        """Advance one emulated tick of ``dt`` seconds: drift, trends, noise, thresholds."""
        self.version += 1
        self.ticks += 1
        for p in self._detectors:
            p.baseline += p.drift * dt / 3600.0
            p.excess = max(0.0, p.excess + p.trend * dt)
            if p.trend < 0 and p.excess == 0.0:
                p.trend = 0.0
            sigma = self.th.smoke_noise if p.sensor is Quantity.SMOKE else self.th.heat_noise
            p.noise = self.rng.gauss(0.0, sigma)
            self._refresh(p)

    # -- control (tests, rigs, scenarios) -----------------------------------------------
    def set_point(
        self,
        address: PointAddress,
        *,
        alarm: Alarm | str | None = None,
        prealarm: bool | None = None,
        trouble: bool | None = None,
        disabled: bool | None = None,
        present: bool | None = None,
    ) -> None:
        """Set a point's causes (``None`` leaves a field as it is).

        ``alarm`` is what the device signals ("fire", "co", "supervisory", "non-fire",
        "none"); a fire or CO alarm latches until a reset finds the cause gone.
        """
        self.version += 1
        p = self.point(address)
        if alarm is not None:
            p.input_alarm = _enum(Alarm, alarm)
        if prealarm is not None:
            p.input_prealarm = prealarm
        if trouble is not None:
            p.input_trouble = trouble
        if present is not None:
            p.present = present
        if disabled is not None:
            self.point_command(address, PointCommand.DISABLE if disabled else PointCommand.ENABLE)
        self._refresh(p)

    def set_analog(self, address: PointAddress, value: float | None) -> None:
        """Pin a detector's analog value (no noise or trend); ``None`` releases it."""
        self.version += 1
        p = self.point(address)
        if p.sensor is None:
            raise CommandError(f"{address.label} is a module and has no analog value")
        p.held = value
        self._refresh(p)

    def set_trend(self, address: PointAddress, per_second: float) -> None:
        """Let smoke or heat build up (or clear, when negative) at a detector."""
        p = self.point(address)
        if p.sensor is None:
            raise CommandError(f"{address.label} is a module and has no analog value")
        p.trend = per_second

    def set_drift(self, address: PointAddress, per_hour: float) -> None:
        """Let a detector's clean-air value creep (a detector getting dirty)."""
        p = self.point(address)
        if p.sensor is None:
            raise CommandError(f"{address.label} is a module and has no analog value")
        p.drift = per_hour

    def set_panel_flag(self, name: str, value: bool) -> None:
        self.version += 1
        if name not in SETTABLE_FLAGS:
            hint = "; use set_loop_fault for loop faults" if name == "loop_fault" else ""
            raise CommandError(f"unknown panel flag {name!r}; use one of {SETTABLE_FLAGS}{hint}")
        if name in _FAULT_FLAGS and value and not getattr(self.flags, name):
            self._count("trouble")
        setattr(self.flags, name, value)

    def set_loop_fault(self, loop: int, value: bool) -> None:
        self.version += 1
        if not 1 <= loop <= self.loops:
            raise CommandError(f"no loop {loop} on this panel (1..{self.loops})")
        if value and loop not in self.flags.loop_faults:
            self._count("trouble")
        (self.flags.loop_faults.add if value else self.flags.loop_faults.discard)(loop)
        for p in self.points.values():
            if p.address.loop == loop:
                self._refresh(p)

    def command(self, command: PanelCommand | str) -> None:
        """A panel command (from the keypad or the Modbus command register)."""
        self.version += 1
        cmd = _enum(PanelCommand, command)
        if cmd is PanelCommand.SILENCE:
            self.flags.silenced = True
        elif cmd is PanelCommand.ACKNOWLEDGE:
            for address in self.points:
                self.point_command(address, PointCommand.ACKNOWLEDGE)
        else:
            for p in self.points.values():
                alarm, pre = self._causes(p)
                if p.alarm in _LATCHING and alarm is Alarm.NONE:
                    p.alarm = Alarm.NONE
                if p.prealarm and not pre:
                    p.prealarm = False
                p.acknowledged = p.ack_block = False
                self._refresh(p)
            self.flags.silenced = False

    def point_command(self, address: PointAddress, command: PointCommand | str) -> None:
        self.version += 1
        p = self.point(address)
        cmd = _enum(PointCommand, command)
        if cmd is PointCommand.ACKNOWLEDGE:
            p.acknowledged = p.alarm is not Alarm.NONE or p.prealarm
            p.ack_block = p.trouble
        elif cmd is PointCommand.DISABLE:
            if not p.disabled:
                self._count(None)
            p.disabled = True
        else:
            p.disabled = False
        self._refresh(p)

    # -- internals ----------------------------------------------------------------------
    def _causes(self, p: Point) -> tuple[Alarm, bool]:
        alarm, pre = p.input_alarm, p.input_prealarm
        v = p.value
        if v is not None:
            fire_at, pre_at = (
                (self.th.smoke_fire, self.th.smoke_prealarm)
                if p.sensor is Quantity.SMOKE
                else (self.th.heat_fire, self.th.heat_prealarm)
            )
            if v >= fire_at and alarm is Alarm.NONE:
                alarm = Alarm.FIRE
            pre = pre or v >= pre_at
        return alarm, pre

    def _refresh(self, p: Point) -> None:
        """Bring a point's shown state in line with its causes, counting new events."""
        if not p.present or p.disabled:
            p.alarm, p.prealarm, p.trouble = Alarm.NONE, False, False
            p.acknowledged = p.ack_block = False
            return
        alarm, pre = self._causes(p)
        if alarm is not Alarm.NONE and (p.alarm is Alarm.NONE or p.alarm not in _LATCHING):
            if alarm is not p.alarm:
                p.alarm, p.acknowledged = alarm, False
                self._count("fire" if alarm is Alarm.FIRE else None)
                if alarm in _LATCHING:
                    self.flags.silenced = False
        elif alarm is Alarm.NONE and p.alarm not in _LATCHING:
            p.alarm = Alarm.NONE
        if pre and not p.prealarm:
            p.prealarm, p.acknowledged = True, False
            self._count(None)
        dirty = p.sensor is Quantity.SMOKE and p.baseline >= self.th.smoke_dirty
        trouble = p.input_trouble or dirty or p.address.loop in self.flags.loop_faults
        if trouble and not p.trouble:
            p.ack_block = False
            self._count("trouble")
        p.trouble = trouble

    def _count(self, kind: str | None) -> None:
        if kind is not None:
            self.counters[kind] = (self.counters[kind] + 1) & 0xFFFF
        self.counters["total"] = (self.counters["total"] + 1) & 0xFFFF


def _enum(cls: type[E], value: E | str) -> E:
    try:
        return cls(value)
    except ValueError:
        names = ", ".join(m.value for m in cls)
        raise CommandError(
            f"unknown {cls.__name__.lower()} {value!r}; use one of: {names}"
        ) from None
