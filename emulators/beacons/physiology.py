"""A firefighter's body, air and surroundings, stepped about once a second.

Plausible rather than clinical: enough for the gateway's rules to see what they would see on
a fireground. Effort drives everything: heart rate climbs towards a target set by effort and
heat (cardiovascular drift), skin temperature follows effort and ambient heat over minutes,
the SCBA empties at 40-100 l/min of free air from a 6.8 l, 300 bar cylinder, and the
accelerometer reads hundreds of milli-g while working, tens during a short pause, almost
nothing when the wearer lies still. Every random draw comes from the firefighter's own
seeded generator, so a seed replays the same shift.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from drivers.beacon_serial.codec import Hello, Telemetry, TelemetryFlags

__all__ = [
    "ACTIVITIES",
    "CYLINDER_LITRES",
    "LOW_BATTERY",
    "RATED_PRESSURE",
    "STILL_MG",
    "Firefighter",
    "Profile",
    "make_profile",
]

RATED_PRESSURE = 300.0
"""Rated SCBA cylinder pressure, bar."""

CYLINDER_LITRES = 6.8
"""Water volume of the cylinder: 300 bar x 6.8 l = 2040 l of free air."""

STILL_MG = 50
"""Motion below this (milli-g RMS) counts as no motion for the beacon's PASS timer."""

LOW_BATTERY = 15.0
"""Battery percentage at or below which the beacon sets its low-battery flag."""

ROTATE_AT = 120.0
"""Pressure (bar) at which a healthy firefighter leaves to change cylinder (above 33%)."""

BATTERY_HOURS = 10.0

# name, effort (0 rest .. 1 maximal), ambient temperature where it happens (°C), weight
ACTIVITIES: tuple[tuple[str, float, float, float], ...] = (
    ("rest", 0.10, 24.0, 1.0),
    ("walk", 0.35, 30.0, 3.0),
    ("search", 0.55, 55.0, 3.0),
    ("stairs", 0.75, 38.0, 2.0),
    ("hose", 0.85, 75.0, 2.0),
)


@dataclass(frozen=True, slots=True)
class Profile:
    """Who wears a beacon, and the kit they carry."""

    beacon: int
    age: int
    resting_hr: float
    scba: bool
    start_pressure: float
    battery: float
    base_rssi: float
    firmware: int = 0x0203
    model: int = 7

    @property
    def max_hr(self) -> int:
        return 220 - self.age

    def hello(self) -> Hello:
        return Hello(
            firmware=self.firmware,
            model=self.model,
            wearer_age=self.age,
            rated_pressure=RATED_PRESSURE if self.scba else 0.0,
        )


def make_profile(beacon: int, rng: random.Random, *, scba: bool = True) -> Profile:
    """A seeded crew member: age 24-55, resting 55-75 bpm, a nearly full cylinder."""
    return Profile(
        beacon=beacon,
        age=rng.randint(24, 55),
        resting_hr=rng.uniform(55.0, 75.0),
        scba=scba,
        start_pressure=rng.uniform(275.0, 300.0),
        battery=rng.uniform(60.0, 100.0),
        base_rssi=rng.uniform(-80.0, -58.0),
    )


def _approach(value: float, target: float, dt: float, tau: float) -> float:
    """First-order lag: move ``value`` towards ``target`` with time constant ``tau``."""
    return value + (target - value) * (1.0 - math.exp(-dt / tau))


class Firefighter:
    """The body and surroundings behind one beacon; :meth:`step` advances it.

    Scenario and control switches: ``down`` (lying still), ``impact`` (a fall this second),
    ``motion_override`` (milli-g, or None), ``effort_override`` (0..1, or None), ``heat``
    (in a heat-stress compartment), ``evacuating`` (walking out), ``fading`` (moving out of
    radio range), ``contact`` (heart-rate sensor on the skin).
    """

    def __init__(self, profile: Profile, rng: random.Random) -> None:
        self.profile = profile
        self._rng = rng
        self.activity = "walk"
        self.effort = 0.35
        self._phase_left = rng.uniform(10.0, 40.0)
        self._pause_left = 0.0
        self._hr = profile.resting_hr + 25.0
        self.skin = rng.uniform(33.0, 34.0)
        self.ambient = rng.uniform(18.0, 24.0)
        self.pressure: float | None = profile.start_pressure if profile.scba else None
        self.battery = profile.battery
        self._rssi = profile.base_rssi
        self.motion = 300
        self.down = False
        self.impact = False
        self.motion_override: int | None = None
        self.effort_override: float | None = None
        self.heat = False
        self.evacuating = False
        self.fading = False
        self.rotate = True
        self.contact = True

    @property
    def heart_rate(self) -> float:
        return self._hr

    def _next_activity(self) -> None:
        rng = self._rng
        names = [a for a in ACTIVITIES if a[0] != self.activity]
        pick = rng.choices(names, weights=[a[3] for a in names])[0]
        self.activity = pick[0]
        self._phase_left = rng.uniform(20.0, 90.0)

    def _target_effort_and_heat(self) -> tuple[float, float]:
        if self.down:
            return 0.0, self.ambient if not self.heat else 165.0
        if self.evacuating:
            return 0.4, 20.0
        current = next(a for a in ACTIVITIES if a[0] == self.activity)
        effort = current[1] if self.effort_override is None else self.effort_override
        return effort, 165.0 if self.heat else current[2]

    def _motion(self, dt: float) -> int:
        rng = self._rng
        if self.motion_override is not None:
            return self.motion_override
        if self.impact:
            self.impact = False
            return round(rng.uniform(2200.0, 3500.0))
        if self.down:
            return round(rng.uniform(0.0, 6.0))  # sensor noise only
        if self._pause_left > 0.0:
            self._pause_left -= dt
            return round(rng.uniform(12.0, 40.0))
        if not self.evacuating and rng.random() < 0.02 * dt:
            self._pause_left = rng.uniform(2.0, 6.0) - dt  # a short pause, never near 20 s
            return round(rng.uniform(12.0, 40.0))
        mg = (80.0 + 1100.0 * self.effort) * rng.lognormvariate(0.0, 0.25)
        return max(STILL_MG + 5, min(0xFFFF, round(mg)))

    def step(self, dt: float) -> None:
        """Advance ``dt`` seconds (about 1)."""
        rng = self._rng
        if not (self.down or self.evacuating):
            self._phase_left -= dt
            if self._phase_left <= 0.0:
                self._next_activity()
        effort, hot = self._target_effort_and_heat()
        self.effort = _approach(self.effort, effort, dt, 5.0)
        self.motion = self._motion(dt)
        self.ambient = _approach(self.ambient, hot, dt, 6.0 if self.heat else 20.0)
        self.ambient += rng.gauss(0.0, 0.3)
        # skin under turnout gear: effort and radiant heat, over minutes
        skin_target = min(41.0, 33.4 + 2.2 * self.effort + 0.03 * max(0.0, self.ambient - 30.0))
        self.skin = _approach(self.skin, skin_target, dt, 90.0) + rng.gauss(0.0, 0.02)
        # heart rate: effort share of the reserve, plus drift with skin temperature
        p = self.profile
        hr_target = p.resting_hr + (p.max_hr - p.resting_hr) * (0.15 + 0.7 * self.effort)
        hr_target = min(p.max_hr + 3.0, hr_target + 9.0 * max(0.0, self.skin - 34.5))
        self._hr = _approach(self._hr, hr_target, dt, 12.0 if hr_target > self._hr else 30.0)
        if self.pressure is not None:
            litres_per_min = 40.0 + 60.0 * self.effort + (10.0 if self.heat else 0.0)
            self.pressure = max(0.0, self.pressure - litres_per_min / 60.0 * dt / CYLINDER_LITRES)
            if self.rotate and self.pressure <= ROTATE_AT:
                # the crew rotates out to change cylinders well before the 33% alarm
                self.pressure = RATED_PRESSURE * rng.uniform(0.92, 0.99)
        self.battery = max(0.0, self.battery - dt * 100.0 / (BATTERY_HOURS * 3600.0))
        rssi_target = p.base_rssi - 6.0 * self.effort - (40.0 if self.fading else 0.0)
        self._rssi = _approach(self._rssi, rssi_target, dt, 10.0 if self.fading else 20.0)

    def telemetry(self, flags: TelemetryFlags) -> Telemetry:
        """What the beacon measures now (sensor noise added), with the firmware's flags."""
        rng = self._rng
        hr: int | None = None
        if self.contact:
            hr = max(30, min(250, round(self._hr + rng.gauss(0.0, 1.2))))
            flags |= TelemetryFlags.SENSOR_CONTACT
        if self.battery <= LOW_BATTERY:
            flags |= TelemetryFlags.LOW_BATTERY
        pressure = None if self.pressure is None else round(self.pressure, 1)
        return Telemetry(
            heart_rate=hr,
            skin_temperature=round(max(-300.0, min(300.0, self.skin)), 2),
            ambient_temperature=round(max(-300.0, min(3000.0, self.ambient)), 1),
            motion=max(0, min(0xFFFF, self.motion)),
            scba_pressure=pressure,
            battery=max(0, min(100, round(self.battery))),
            flags=flags,
            rssi=max(-128, min(-20, round(self._rssi + rng.gauss(0.0, 2.0)))),
        )
