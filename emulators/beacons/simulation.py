"""The receiver and its beacons in simulated time: events in, frames out, no I/O.

:class:`Simulation` keeps a queue of timed events (a beacon's telemetry tick, an alarm
repeat, the receiver's status, a scenario's turning point) and :meth:`Simulation.advance`
runs them in time order, returning the frames the receiver would send. Nothing here reads a
clock: the emulator maps wall time to simulated time, so the same seed gives the same frames
at any time scale, and tests can drive it directly.

Each :class:`Beacon` is the firmware around one :class:`~emulators.beacons.physiology.
Firefighter`: its sequence counter, flags, PASS timer and alarms. An alarm is sent when
raised and repeated every second until the gateway acks one of its repeats (``0x81`` with
type ``0x02`` and that repeat's seq) or the wearer resets the beacon.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from dataclasses import dataclass, field

from drivers.beacon_serial.codec import (
    RECEIVER_ID,
    Alarm,
    AlarmCause,
    Frame,
    FrameType,
    Message,
    ReceiverStatus,
    TelemetryFlags,
)
from edgesdk.errors import CommandError, ConfigError
from emulators.beacons.physiology import RATED_PRESSURE, STILL_MG, Firefighter, make_profile

__all__ = [
    "SCENARIOS",
    "ActiveAlarm",
    "Beacon",
    "Simulation",
]

SCENARIOS = (
    "patrol",
    "man-down",
    "fall",
    "distress",
    "low-air",
    "heat-stress",
    "lost-contact",
)
"""Scenario names; every one but ``patrol`` happens to one victim at ``event_at``."""

STATUS_INTERVAL = 10.0
ALARM_REPEAT = 1.0
THERMAL_AMBIENT = 150.0  # °C, sustained THERMAL_HOLD seconds
THERMAL_HOLD = 5.0
THERMAL_SKIN = 39.0  # °C
FADE_BEFORE = 10.0  # lost-contact: RSSI fades this long before silence
_KEEP_SEQS = 32  # repeats of one alarm an ack may still name


@dataclass(slots=True)
class ActiveAlarm:
    """One alarm occurrence: its id, cause, and the seqs of the frames that carried it."""

    alarm_id: int
    cause: AlarmCause
    raised_at: float
    seqs: deque[int] = field(default_factory=lambda: deque(maxlen=_KEEP_SEQS))
    acked: bool = False
    ended: bool = False


class Beacon:
    """A beacon's firmware: seq counter, flags, PASS and thermal timers, alarms."""

    def __init__(self, index: int, body: Firefighter, rng: random.Random) -> None:
        self.index = index
        self.body = body
        self.rng = rng
        self.id = body.profile.beacon
        self._seq = rng.randrange(256)
        self._next_alarm_id = rng.randint(1, 255)
        self.last_tick = 0.0
        self.joined = False
        self.silent = False
        self.distress = False
        self.fell = False
        self.pass_latched = False
        self.still_for = 0.0
        self.hot_for = 0.0
        self.alarms: list[ActiveAlarm] = []
        self.evacuations = 0
        self.last_evacuated: float | None = None

    def next_seq(self) -> int:
        seq = self._seq
        self._seq = (seq + 1) & 0xFF
        return seq

    def new_alarm(self, cause: AlarmCause, now: float) -> ActiveAlarm:
        alarm = ActiveAlarm(alarm_id=self._next_alarm_id, cause=cause, raised_at=now)
        self._next_alarm_id = self._next_alarm_id % 255 + 1  # 1..255
        self.alarms = [a for a in self.alarms if not a.ended]
        self.alarms.append(alarm)
        return alarm

    def alarm(self, alarm_id: int) -> ActiveAlarm | None:
        return next((a for a in self.alarms if a.alarm_id == alarm_id), None)

    def active(self, cause: AlarmCause) -> ActiveAlarm | None:
        return next((a for a in self.alarms if a.cause == cause and not a.ended), None)

    @property
    def flags(self) -> TelemetryFlags:
        flags = TelemetryFlags(0)
        if self.distress:
            flags |= TelemetryFlags.DISTRESS
        if self.fell:
            flags |= TelemetryFlags.FALL
        return flags


class Simulation:
    """A receiver with ``crew`` beacons, one scenario, one seed.

    ``victim`` is the crew index the scenario happens to, at ``event_at`` simulated seconds;
    ``pass_alarm_after`` is the beacon firmware's own PASS full-alarm delay (``None``: the
    beacon sends no motion alarm, the gateway must judge from motion alone).
    """

    def __init__(
        self,
        *,
        crew: int = 4,
        scenario: str = "patrol",
        seed: int = 0,
        event_at: float = 10.0,
        victim: int = 0,
        pass_alarm_after: float | None = 30.0,
        ids: list[int] | None = None,
    ) -> None:
        _validate(crew, scenario, event_at, victim, pass_alarm_after, ids)
        self.scenario = scenario
        self.seed = seed
        self.event_at = event_at
        self.victim = victim
        self.pass_alarm_after = pass_alarm_after
        self.now = 0.0
        self._rng = random.Random(f"beacons:{seed}:receiver")
        self._queue: list[tuple[float, int, str, int, int]] = []
        self._order = 0
        if ids is None:
            ids = []
            while len(ids) < crew:
                candidate = self._rng.randrange(0x00010000, 0xFFFFFFFF)
                if candidate not in ids:
                    ids.append(candidate)
        self.beacons: list[Beacon] = []
        for index, beacon_id in enumerate(ids):
            rng = random.Random(f"beacons:{seed}:{index}")
            # a crew of four or more has a pump operator outside, with no cylinder
            scba = not (crew >= 4 and index == crew - 1 and index != victim)
            body = Firefighter(make_profile(beacon_id, rng, scba=scba), rng)
            self.beacons.append(Beacon(index, body, rng))
        self._by_id = {b.id: b for b in self.beacons}
        self.boot = 0.0
        self.frames_received = 0
        self._status_seq = self._rng.randrange(256)
        self.alarms_raised = 0
        self.alarms_acked = 0
        self.acks_unmatched = 0
        self.evacuations = 0
        self._setup_scenario()
        self._push(0.0, "status")
        for b in self.beacons:
            self._push(self._rng.uniform(0.0, 1.0), "join", b.index)

    # --- queue --------------------------------------------------------------------------

    def _push(self, when: float, kind: str, index: int = -1, alarm_id: int = 0) -> None:
        self._order += 1
        heapq.heappush(self._queue, (when, self._order, kind, index, alarm_id))

    def next_event(self) -> float:
        """Simulated time of the next queued event."""
        return self._queue[0][0] if self._queue else self.now + 1.0

    def advance(self, until: float) -> list[Frame]:
        """Run every event due at or before ``until``; the frames sent, in order."""
        out: list[Frame] = []
        while self._queue and self._queue[0][0] <= until:
            when, _, kind, index, alarm_id = heapq.heappop(self._queue)
            self.now = max(self.now, when)
            self._run(kind, index, alarm_id, out)
        self.now = max(self.now, until)
        return out

    def _run(self, kind: str, index: int, alarm_id: int, out: list[Frame]) -> None:
        if kind == "status":
            self._send_status(out)
            self._push(self.now + STATUS_INTERVAL, "status")
            return
        beacon = self.beacons[index]
        if kind == "join":
            self._join(beacon, out)
        elif kind == "tick":
            self._tick(beacon, out)
        elif kind == "repeat":
            self._repeat(beacon, alarm_id, out)
        else:
            self._scenario_event(kind, beacon, out)

    def _emit(self, beacon: Beacon, message: Message, out: list[Frame]) -> int:
        seq = beacon.next_seq()
        if not beacon.silent:
            out.append(Frame(seq=seq, beacon=beacon.id, message=message))
            self.frames_received += 1
        return seq

    def _send_status(self, out: list[Frame]) -> None:
        noise = max(-128, min(127, round(-100.0 + self._rng.gauss(0.0, 1.5))))
        status = ReceiverStatus(
            uptime=int(self.now - self.boot),
            frames_received=self.frames_received & 0xFFFFFFFF,
            noise_floor=noise,
        )
        out.append(Frame(seq=self._status_seq, beacon=RECEIVER_ID, message=status))
        self._status_seq = (self._status_seq + 1) & 0xFF

    def _join(self, beacon: Beacon, out: list[Frame]) -> None:
        first = not beacon.joined
        beacon.joined = True
        self._emit(beacon, beacon.body.profile.hello(), out)
        if first:
            beacon.last_tick = self.now
            self._push(self.now + 0.2, "tick", beacon.index)

    def _tick(self, beacon: Beacon, out: list[Frame]) -> None:
        dt = max(0.0, self.now - beacon.last_tick)
        beacon.last_tick = self.now
        body = beacon.body
        body.step(dt)
        self._firmware(beacon, dt, out)
        self._emit(beacon, body.telemetry(beacon.flags), out)
        self._push(self.now + 1.0 + beacon.rng.uniform(-0.05, 0.05), "tick", beacon.index)

    def _firmware(self, beacon: Beacon, dt: float, out: list[Frame]) -> None:
        """The beacon's own alarms: PASS (no motion) and thermal."""
        body = beacon.body
        beacon.still_for = beacon.still_for + dt if body.motion < STILL_MG else 0.0
        limit = self.pass_alarm_after
        if limit is not None and beacon.still_for >= limit and not beacon.pass_latched:
            beacon.pass_latched = True  # a full PASS alarm latches until the wearer resets
            self.raise_alarm(beacon, AlarmCause.MOTION, out)
        beacon.hot_for = beacon.hot_for + dt if body.ambient >= THERMAL_AMBIENT else 0.0
        hot = beacon.hot_for >= THERMAL_HOLD or body.skin >= THERMAL_SKIN
        thermal = beacon.active(AlarmCause.THERMAL)
        if hot and thermal is None:
            self.raise_alarm(beacon, AlarmCause.THERMAL, out)
        elif thermal is not None and body.ambient < THERMAL_AMBIENT - 10 and body.skin < 38.8:
            thermal.ended = True  # cleared with hysteresis; a new occurrence gets a new id

    def raise_alarm(self, beacon: Beacon, cause: AlarmCause, out: list[Frame]) -> ActiveAlarm:
        """Raise an alarm now: its first frame goes out at once, repeats every second."""
        alarm = beacon.new_alarm(cause, self.now)
        self.alarms_raised += 1
        alarm.seqs.append(self._emit(beacon, Alarm(cause=cause, alarm_id=alarm.alarm_id), out))
        self._push(self.now + ALARM_REPEAT, "repeat", beacon.index, alarm.alarm_id)
        return alarm

    def _repeat(self, beacon: Beacon, alarm_id: int, out: list[Frame]) -> None:
        alarm = beacon.alarm(alarm_id)
        if alarm is None or alarm.acked or alarm.ended:
            return  # acked or reset: the repeats stop
        msg = Alarm(cause=alarm.cause, alarm_id=alarm.alarm_id)
        alarm.seqs.append(self._emit(beacon, msg, out))
        self._push(self.now + ALARM_REPEAT, "repeat", beacon.index, alarm.alarm_id)

    # --- scenarios ----------------------------------------------------------------------

    def _setup_scenario(self) -> None:
        if self.scenario == "patrol":
            return
        victim = self.beacons[self.victim]
        body = victim.body
        if self.scenario == "low-air":
            # working hard without rotating out; crosses 33% of rated pressure near event_at
            body.effort = body.effort_override = 0.85
            body.rotate = False
            per_second = (40.0 + 60.0 * 0.85) / 60.0 / 6.8
            body.pressure = 0.33 * RATED_PRESSURE + per_second * self.event_at
        if self.scenario == "lost-contact" and self.event_at > FADE_BEFORE:
            self._push(self.event_at - FADE_BEFORE, "fade", victim.index)
        self._push(self.event_at, self.scenario, victim.index)

    def _scenario_event(self, kind: str, beacon: Beacon, out: list[Frame]) -> None:
        body = beacon.body
        if kind == "fade":
            body.fading = True
        elif kind == "man-down":
            body.down = True
        elif kind == "fall":
            body.down = body.impact = True
            beacon.fell = True
            self.raise_alarm(beacon, AlarmCause.FALL, out)
        elif kind == "distress":
            beacon.distress = True
            active = beacon.active(AlarmCause.DISTRESS)
            if active is None or active.acked:
                self.raise_alarm(beacon, AlarmCause.DISTRESS, out)
        elif kind == "heat-stress":
            body.heat = True
            body.effort_override = 0.8
        elif kind == "lost-contact":
            body.fading = True
            beacon.silent = True

    # --- control ------------------------------------------------------------------------

    def beacon(self, beacon_id: int) -> Beacon:
        """The beacon with this id; :class:`CommandError` if the crew has none."""
        try:
            return self._by_id[beacon_id]
        except KeyError:
            known = ", ".join(f"0x{b:08X}" for b in self._by_id)
            raise CommandError(f"no beacon 0x{beacon_id:08X} in this crew ({known})") from None

    def press_distress(self, beacon_id: int) -> None:
        """The wearer presses the distress button: flag set, alarm cause 1 now."""
        self._push(self.now, "distress", self.beacon(beacon_id).index)

    def reset(self, beacon_id: int) -> None:
        """The wearer resets the beacon: latched flags and alarms clear, the body gets up."""
        beacon = self.beacon(beacon_id)
        beacon.distress = beacon.fell = beacon.pass_latched = False
        beacon.still_for = 0.0
        for alarm in beacon.alarms:
            alarm.ended = True
        beacon.body.down = False
        beacon.body.motion_override = None

    def set_silent(self, beacon_id: int, silent: bool) -> None:
        """Out of range (or back): a returning beacon says hello again."""
        beacon = self.beacon(beacon_id)
        if beacon.silent and not silent:
            beacon.body.fading = False
            self._push(self.now, "join", beacon.index)
        beacon.silent = silent

    def ack(self, beacon_id: int, acked_type: int, acked_seq: int) -> bool:
        """The gateway acked a frame; True if it stopped an alarm's repeats."""
        beacon = self._by_id.get(beacon_id)
        if beacon is not None and acked_type == FrameType.ALARM:
            for alarm in beacon.alarms:
                if acked_seq in alarm.seqs and not alarm.acked:
                    alarm.acked = True
                    self.alarms_acked += 1
                    return True
        self.acks_unmatched += 1
        return False

    def evacuate(self, beacon_id: int) -> int:
        """The gateway orders an evacuation (beacon 0: everyone); how many beacons got it."""
        targets = self.beacons if beacon_id == RECEIVER_ID else [self._by_id.get(beacon_id)]
        count = 0
        for beacon in targets:
            if beacon is None:
                continue
            beacon.evacuations += 1
            beacon.last_evacuated = self.now
            beacon.body.evacuating = not beacon.body.down  # a downed wearer cannot walk out
            count += 1
        self.evacuations += count
        return count

    def restart_receiver(self) -> None:
        """The receiver was replugged: uptime and counts restart, every beacon rejoins."""
        self.boot = self.now
        self.frames_received = 0
        self._push(self.now, "status")
        for beacon in self.beacons:
            if beacon.joined:
                self._push(self.now + self._rng.uniform(0.0, 0.5), "join", beacon.index)


def _validate(
    crew: int,
    scenario: str,
    event_at: float,
    victim: int,
    pass_alarm_after: float | None,
    ids: list[int] | None,
) -> None:
    if not 1 <= crew <= 255:
        raise ConfigError(f"must be 1..255 (got {crew})", key="crew")
    if scenario not in SCENARIOS:
        raise ConfigError(
            f"unknown scenario {scenario!r}", key="scenario", fix=f"one of {', '.join(SCENARIOS)}"
        )
    if not event_at >= 0.0:
        raise ConfigError(f"must be >= 0 seconds (got {event_at})", key="event_at")
    if not 0 <= victim < crew:
        raise ConfigError(f"must be a crew index 0..{crew - 1} (got {victim})", key="victim")
    if pass_alarm_after is not None and not pass_alarm_after > 0.0:
        raise ConfigError(
            f"must be > 0 seconds (got {pass_alarm_after})",
            key="pass_alarm_after",
            fix="use None to switch the beacon's own PASS alarm off",
        )
    if ids is not None:
        if len(ids) != crew or len(set(ids)) != crew:
            raise ConfigError(f"must be {crew} distinct beacon ids", key="ids")
        if any(not 1 <= i <= 0xFFFFFFFF for i in ids):
            raise ConfigError("beacon ids must be 1..0xFFFFFFFF (0 is the receiver)", key="ids")
