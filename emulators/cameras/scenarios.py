"""Scenarios: seeded scripts of what the cameras see, in scenario seconds.

A scenario is a generator of :class:`Step` (time since start, action) in time order,
drawn from the emulator's seeded random generator, so one seed gives one run. The
emulator turns scenario seconds into real seconds with its ``time_scale``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from edgesdk.errors import ConfigError
from emulators.cameras.model import CameraSpec, Kind

__all__ = ["SCENARIOS", "Detect", "End", "Offline", "Online", "Step", "scenario_steps"]


@dataclass(frozen=True)
class Detect:
    camera: str
    label: str
    score: float
    zones: tuple[str, ...]


@dataclass(frozen=True)
class End:
    camera: str
    label: str


@dataclass(frozen=True)
class Offline:
    camera: str
    clean: bool = False


@dataclass(frozen=True)
class Online:
    camera: str


Action = Detect | End | Offline | Online


@dataclass(frozen=True)
class Step:
    at: float  # scenario seconds since the emulator started
    action: Action


def _idle(cameras: Sequence[CameraSpec], rng: random.Random) -> Iterator[Step]:
    """Nothing happens unless the control API says so."""
    return iter(())


def _quiet(cameras: Sequence[CameraSpec], rng: random.Random) -> Iterator[Step]:
    """Now and then (every 8-30 s) someone walks past one camera for a few seconds."""
    t = 0.0
    while True:
        t += rng.uniform(8.0, 30.0)
        cam = rng.choice(list(cameras))
        score = round(rng.uniform(0.6, 0.8), 2)
        yield Step(t, Detect(cam.id, "person", score, cam.zones))
        for _ in range(rng.randint(1, 3)):
            t += 1.0
            score = round(min(0.97, score + rng.uniform(0.0, 0.1)), 2)
            yield Step(t, Detect(cam.id, "person", score, cam.zones))
        t += rng.uniform(2.0, 6.0)
        yield Step(t, End(cam.id, "person"))


def _lobby(cameras: Sequence[CameraSpec]) -> CameraSpec:
    for test in (
        lambda c: c.kind is Kind.FRIGATE and c.id == "lobby",
        lambda c: c.kind is Kind.FRIGATE and "lobby" in c.zones,
        lambda c: c.kind is Kind.FRIGATE,
    ):
        for cam in cameras:
            if test(cam):
                return cam
    raise ConfigError(
        "scenario smoke-in-lobby needs a Frigate camera",
        key="scenario",
        fix="add a camera of kind frigate (ideally named lobby)",
    )


def _smoke_in_lobby(cameras: Sequence[CameraSpec], rng: random.Random) -> Iterator[Step]:
    """Smoke grows in the lobby (scores rising), then flames appear; it never goes away."""
    return _smoke_steps(_lobby(cameras).id, rng)  # picked now: a bad camera set fails early


def _smoke_steps(lobby: str, rng: random.Random) -> Iterator[Step]:
    zones = ("lobby",)
    t = 2.0
    score = 0.52
    yield Step(t, Detect(lobby, "smoke", score, zones))
    for _ in range(6):
        t += 1.0
        score = round(min(0.95, score + 0.06 + rng.uniform(0.0, 0.02)), 2)
        yield Step(t, Detect(lobby, "smoke", score, zones))
    fire = 0.58
    t += 1.0
    yield Step(t, Detect(lobby, "fire", fire, zones))
    for _ in range(5):
        t += 1.0
        fire = round(min(0.97, fire + 0.07 + rng.uniform(0.0, 0.02)), 2)
        yield Step(t, Detect(lobby, "fire", fire, zones))
    while True:  # the fire stays: periodic updates near the top scores
        t += 5.0
        yield Step(t, Detect(lobby, "fire", round(fire - rng.uniform(0.0, 0.03), 2), zones))
        yield Step(t, Detect(lobby, "smoke", round(score - rng.uniform(0.0, 0.03), 2), zones))


def _camera_offline(cameras: Sequence[CameraSpec], rng: random.Random) -> Iterator[Step]:
    """Cameras are busy, then every kind drops off the network its own way at t=6 s.

    Frigate: the NVR's connection dies, the broker publishes its last will ``offline``.
    Axis and generic: they simply stop publishing (no clear, no will).
    """
    steps: list[Step] = []
    for cam in cameras:
        if cam.kind is Kind.GENERIC:
            steps.append(Step(1.0, Detect(cam.id, "person", 0.8, cam.zones)))
        elif cam.kind is Kind.AXIS:
            steps.append(Step(1.0, Detect(cam.id, "motion", 1.0, cam.zones)))
    frigate = [c for c in cameras if c.kind is Kind.FRIGATE]
    if frigate:
        cam = frigate[0]
        score = round(rng.uniform(0.65, 0.75), 2)
        steps.append(Step(2.0, Detect(cam.id, "person", score, cam.zones)))
        steps.append(Step(3.0, Detect(cam.id, "person", round(score + 0.1, 2), cam.zones)))
    steps.extend(Step(6.0, Offline(cam.id, clean=False)) for cam in cameras)
    return iter(sorted(steps, key=lambda s: s.at))


SCENARIOS: dict[str, Callable[[Sequence[CameraSpec], random.Random], Iterator[Step]]] = {
    "idle": _idle,
    "quiet": _quiet,
    "smoke-in-lobby": _smoke_in_lobby,
    "camera-offline": _camera_offline,
}


def scenario_steps(name: str, cameras: Sequence[CameraSpec], rng: random.Random) -> Iterator[Step]:
    """The steps of scenario ``name`` (ConfigError for an unknown name)."""
    try:
        make = SCENARIOS[name]
    except KeyError:
        raise ConfigError(
            f"unknown scenario {name!r}",
            key="scenario",
            fix=f"one of {', '.join(sorted(SCENARIOS))}",
        ) from None
    return make(cameras, rng)
