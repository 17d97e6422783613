"""The beacon receiver emulator: a simulated crew behind a USB serial port on a pty.

::

    async with BeaconEmulator(crew=4, scenario="man-down", seed=7, time_scale=10) as emu:
        print(emu.path)                      # open it like /dev/ttyUSB0 (115200 8N1)
        emu.press_distress(emu.beacon_ids[1])
        emu.inject("bad-crc")
        emu.unplug(); emu.replug()
        print(emu.counters)

Simulated time runs ``time_scale`` times faster than the wall clock; the frames themselves
come from :class:`~emulators.beacons.simulation.Simulation` and depend only on the seed (and
on what the gateway and the control API do), not on timing. Bytes the gateway writes are
parsed with the same codec: acks stop alarm repeats, evacuations are recorded per beacon.
A pty has no baud rate: the 115200 8N1 a client sets is accepted and ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from drivers.beacon_serial.codec import (
    Ack,
    Evacuate,
    Frame,
    FrameDecoder,
    FrameType,
    encode,
)
from edgesdk.errors import CommandError, ConfigError
from emulators.beacons.faults import Fault, FaultInjector
from emulators.beacons.simulation import Simulation
from emulators.pty import PtyPort

__all__ = ["BAUDRATE", "BeaconEmulator", "Counters", "FirefighterView"]

BAUDRATE = 115200
_MAX_SLEEP = 0.25  # wall seconds between looks at the clock when nothing is due


@dataclass(frozen=True, slots=True)
class FirefighterView:
    """A snapshot of one crew member and their beacon (``emu.firefighters``)."""

    index: int
    beacon: int
    age: int
    max_heart_rate: int
    scba: bool
    activity: str
    heart_rate: float
    skin_temperature: float
    ambient_temperature: float
    motion: int
    scba_pressure: float | None
    battery: float
    down: bool
    silent: bool
    distress: bool
    fell: bool
    alarms: tuple[tuple[int, int, bool], ...]  # (cause, alarm id, acked), not yet reset
    evacuations: int
    evacuating: bool


@dataclass(frozen=True, slots=True)
class Counters:
    """What the emulator did so far (``emu.counters``)."""

    sent: dict[str, int] = field(default_factory=dict)  # frames written, by type name
    frames_dropped: int = 0  # frames produced while unplugged
    alarms_raised: int = 0
    alarms_acked: int = 0
    acks_unmatched: int = 0
    evacuations: int = 0
    gateway_frames: int = 0  # frames the gateway wrote
    gateway_decoder: dict[str, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)


class BeaconEmulator:
    """A USB beacon receiver on a pty, with a simulated crew (see the module docstring).

    ``link`` makes a stable symlink to the pty that follows it across unplug/replug.
    ``seed`` ``None`` picks one (``emu.seed`` tells which). See
    :class:`~emulators.beacons.simulation.Simulation` for ``scenario``, ``event_at``,
    ``victim``, ``pass_alarm_after`` and ``ids``.
    """

    def __init__(
        self,
        *,
        crew: int = 4,
        scenario: str = "patrol",
        seed: int | None = None,
        time_scale: float = 1.0,
        link: str | os.PathLike[str] | None = None,
        event_at: float = 10.0,
        victim: int = 0,
        pass_alarm_after: float | None = 30.0,
        ids: list[int] | None = None,
    ) -> None:
        if not time_scale > 0.0:
            raise ConfigError(f"must be > 0 (got {time_scale})", key="time_scale")
        self.seed = secrets.randbelow(2**31) if seed is None else seed
        self.time_scale = time_scale
        self._sim = Simulation(
            crew=crew,
            scenario=scenario,
            seed=self.seed,
            event_at=event_at,
            victim=victim,
            pass_alarm_after=pass_alarm_after,
            ids=ids,
        )
        self._faults = FaultInjector(random.Random(f"beacons:{self.seed}:faults"))
        if link is not None:
            _check_link(Path(link))
        self._port = PtyPort(link=link, on_data=self._on_data)
        self._gateway = FrameDecoder()
        self._sent: Counter[str] = Counter()
        self._dropped = 0
        self._gateway_frames = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # --- what to connect to ---------------------------------------------------------------

    @property
    def path(self) -> str:
        """Where a client opens the port: the link if one was asked for, else the pty."""
        return self._port.path

    @property
    def device_path(self) -> str:
        """The current pty (``/dev/pts/N``); it changes on every replug."""
        return self._port.device_path

    @property
    def link(self) -> str | None:
        return None if self._port.link is None else str(self._port.link)

    @property
    def plugged(self) -> bool:
        return self._port.is_open

    @property
    def scenario(self) -> str:
        return self._sim.scenario

    @property
    def beacon_ids(self) -> list[int]:
        return [b.id for b in self._sim.beacons]

    @property
    def victim(self) -> int | None:
        """The beacon id the scenario happens to (``None`` in patrol)."""
        return None if self._sim.scenario == "patrol" else self._sim.beacons[self._sim.victim].id

    @property
    def sim_time(self) -> float:
        """Simulated seconds since start."""
        return self._sim.now

    @property
    def firefighters(self) -> list[FirefighterView]:
        views = []
        for b in self._sim.beacons:
            body, p = b.body, b.body.profile
            views.append(
                FirefighterView(
                    index=b.index,
                    beacon=b.id,
                    age=p.age,
                    max_heart_rate=p.max_hr,
                    scba=p.scba,
                    activity="down" if body.down else body.activity,
                    heart_rate=body.heart_rate,
                    skin_temperature=body.skin,
                    ambient_temperature=body.ambient,
                    motion=body.motion,
                    scba_pressure=body.pressure,
                    battery=body.battery,
                    down=body.down,
                    silent=b.silent,
                    distress=b.distress,
                    fell=b.fell,
                    alarms=tuple((int(a.cause), a.alarm_id, a.acked) for a in b.alarms),
                    evacuations=b.evacuations,
                    evacuating=body.evacuating,
                )
            )
        return views

    @property
    def counters(self) -> Counters:
        sim = self._sim
        return Counters(
            sent=dict(self._sent),
            frames_dropped=self._dropped,
            alarms_raised=sim.alarms_raised,
            alarms_acked=sim.alarms_acked,
            acks_unmatched=sim.acks_unmatched,
            evacuations=sim.evacuations,
            gateway_frames=self._gateway_frames,
            gateway_decoder=self._gateway.counters(),
            faults={str(f): n for f, n in self._faults.applied.items()},
        )

    # --- control --------------------------------------------------------------------------

    def set_motion(self, beacon: int, milli_g: int | None) -> None:
        """Force the beacon's accelerometer reading (``None``: back to the simulation).

        Below 50 milli-g counts as still: the beacon's PASS alarm follows after
        ``pass_alarm_after`` seconds.
        """
        if milli_g is not None and not 0 <= milli_g <= 0xFFFF:
            raise CommandError(f"motion must be 0..65535 milli-g (got {milli_g})")
        self._sim.beacon(beacon).body.motion_override = milli_g

    def press_distress(self, beacon: int) -> None:
        """The wearer presses the distress button (flag bit0, alarm cause 1)."""
        self._sim.press_distress(beacon)
        self._wake.set()

    def reset(self, beacon: int) -> None:
        """The wearer resets the beacon: latched flags and alarms clear, they get up."""
        self._sim.reset(beacon)

    def set_silent(self, beacon: int, silent: bool = True) -> None:
        """The beacon goes out of range (or comes back and says hello again)."""
        self._sim.set_silent(beacon, silent)
        self._wake.set()

    def set_battery(self, beacon: int, percent: float) -> None:
        """Set the beacon's battery level (15% or less sets the low-battery flag)."""
        if not 0.0 <= percent <= 100.0:
            raise CommandError(f"battery must be 0..100 % (got {percent})")
        self._sim.beacon(beacon).body.battery = percent

    def inject(self, fault: Fault | str, count: int = 1) -> None:
        """Damage the next ``count`` frames with ``fault`` (noise, truncate, bad-crc, burst)."""
        self._faults.inject(fault, count)

    def set_fault_rate(self, fault: Fault | str, rate: float) -> None:
        """Damage each frame with probability ``rate`` from now on (0 switches it off)."""
        self._faults.set_rate(fault, rate)

    def unplug(self) -> None:
        """Pull the receiver out: the pty and the link vanish; the crew carries on."""
        self._port.write(self._faults.release())
        self._port.unplug()

    def replug(self) -> None:
        """Plug it back: a new pty, the link follows, the receiver restarts (uptime 0,
        every beacon says hello again)."""
        if self._port.is_open:
            return
        self._gateway.flush()
        self._port.replug()
        self._sim.restart_receiver()
        self._wake.set()

    # --- the loop -------------------------------------------------------------------------

    def _on_data(self, data: bytes) -> None:
        for frame in self._gateway.feed(data):
            self._gateway_frames += 1
            message = frame.message
            if isinstance(message, Ack):
                self._sim.ack(frame.beacon, int(message.acked_type), message.acked_seq)
            elif isinstance(message, Evacuate):
                self._sim.evacuate(frame.beacon)

    def _send(self, frames: list[Frame]) -> None:
        if not frames:
            return
        if not self._port.is_open:
            self._dropped += len(frames)
            return
        out = bytearray()
        for frame in frames:
            out += self._faults.apply(encode(frame.message, frame.seq, frame.beacon))
            self._sent[FrameType(frame.type).name.lower()] += 1
        if out:
            self._port.write(bytes(out))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        wall0, sim0 = loop.time(), self._sim.now
        while True:
            target = sim0 + (loop.time() - wall0) * self.time_scale
            self._send(self._sim.advance(target))
            delay = (self._sim.next_event() - sim0) / self.time_scale - (loop.time() - wall0)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=min(max(delay, 0.0), _MAX_SLEEP))

    async def __aenter__(self) -> BeaconEmulator:
        self._port.open()
        self._task = asyncio.create_task(self._run(), name="beacon-emulator")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task, self._task = self._task, None
        try:
            if task is not None:
                if task.done():
                    task.result()  # surface a crash of the loop instead of hiding it
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        finally:
            self._port.close()


def _check_link(link: Path) -> None:
    """Refuse a link that cannot be made, or that would replace something not a symlink."""
    if not link.parent.is_dir():
        raise ConfigError(
            f"directory {link.parent} does not exist", key="link", fix="create it or pick another"
        )
    if link.exists() and not link.is_symlink():
        raise ConfigError(
            f"{link} exists and is not a symlink; it would be replaced",
            key="link",
            fix="remove it or pick another path",
        )
