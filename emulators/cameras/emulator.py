"""The camera emulator: Frigate, Axis and generic cameras publishing to a real broker.

Everything the cameras do runs through one scheduler task in scenario time, drawing from
one seeded random generator, so the same seed publishes the same sequence. Payload times
of scheduled actions are the start time plus their scenario time, not the wall clock at
the moment they ran, so a run's timestamps do not depend on how busy the machine was.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import random
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import urlsplit

from edgesdk.errors import CommandError, ConfigError, EdgeError
from emulators.cameras import formats, jpeg
from emulators.cameras.faults import fault_messages, flood_messages
from emulators.cameras.link import Link
from emulators.cameras.model import (
    AXIS_LABELS,
    DEFAULT_CAMERAS,
    CameraSpec,
    Counters,
    Fault,
    Kind,
    Message,
)
from emulators.cameras.scenarios import Detect, End, Offline, Online, Step, scenario_steps

__all__ = ["CameraEmulator", "parse_broker_url"]

_log = logging.getLogger(__name__)
_NVR = "frigate-nvr"  # link key of the Frigate NVR, which all Frigate cameras share


def parse_broker_url(url: str) -> tuple[str, int]:
    """``mqtt://host[:port]`` (or ``tcp://``) -> (host, port)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
        raise ConfigError(
            f"unsupported broker URL {url!r}", key="broker", fix="use mqtt://127.0.0.1:1883"
        )
    try:
        port = parts.port or 1883
    except ValueError:
        raise ConfigError(f"bad port in {url!r}", key="broker") from None
    return parts.hostname, port


@dataclass
class _Generic:
    score: float
    chain: int  # which repeat chain is current (older chains stop)


class CameraEmulator:
    """Emulated cameras publishing to ``broker_url``; see docs/emulators.md.

    ``time_scale`` speeds scenario time up (10 = ten times faster than real time).
    ``faults`` are switched on from the start and injected every ``fault_interval``
    scenario seconds; switch them at run time with :meth:`enable_fault`.
    """

    def __init__(
        self,
        broker_url: str = "mqtt://127.0.0.1:1883",
        cameras: Sequence[CameraSpec] | None = None,
        scenario: str = "quiet",
        seed: int | None = None,
        time_scale: float = 1.0,
        *,
        frigate_prefix: str = "frigate",
        faults: Iterable[Fault | str] = (),
        fault_interval: float = 5.0,
        repeat_interval: float = 1.0,
        flood_count: int = 200,
        flood_rate: float = 500.0,
        journal_size: int = 10_000,
    ) -> None:
        self.host, self.port = parse_broker_url(broker_url)
        self.broker_url = f"mqtt://{self.host}:{self.port}"
        self.cameras: tuple[CameraSpec, ...] = tuple(cameras or DEFAULT_CAMERAS)
        ids = [c.id for c in self.cameras]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"duplicate camera ids in {ids}", key="cameras")
        if not time_scale > 0:
            raise ConfigError(f"must be > 0 (got {time_scale})", key="time_scale")
        if not (repeat_interval > 0 and fault_interval > 0 and flood_rate > 0):
            raise ConfigError("intervals and rates must be > 0", key="cameras")
        if not 1 <= flood_count <= 100_000:
            raise ConfigError(f"must be 1..100000 (got {flood_count})", key="flood_count")
        self.seed = seed if seed is not None else secrets.randbelow(2**31)
        self.scenario = scenario
        self.time_scale = float(time_scale)
        self.prefix = frigate_prefix
        self.fault_interval = fault_interval
        self.repeat_interval = repeat_interval
        self.flood_count = flood_count
        self.flood_rate = flood_rate
        self._rng = random.Random(self.seed)
        self._steps: Iterator[Step] = scenario_steps(scenario, self.cameras, self._rng)
        self._faults: set[Fault] = {Fault(f) for f in faults}
        self.counters = Counters()
        self.journal: deque[Message] = deque(maxlen=journal_size)
        self._by_id = {c.id: c for c in self.cameras}
        self._links: dict[str, Link] = {}
        self._tracks: dict[tuple[str, str], formats.FrigateObject] = {}
        self._axis_active: set[tuple[str, str]] = set()
        self._generic: dict[tuple[str, str], _Generic] = {}
        self._heap: list[tuple[float, int, Callable[[float], Awaitable[None]]]] = []
        self._seq = itertools.count()
        self._next_step: Step | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._t0_wall = 0.0
        self._t0_mono = 0.0

    # ------------------------------------------------------------------ lifecycle

    def _link_key(self, spec: CameraSpec) -> str:
        return _NVR if spec.kind is Kind.FRIGATE else spec.id

    def _make_links(self) -> None:
        token = secrets.token_hex(3)  # unique per run, not from the seeded generator
        if any(c.kind is Kind.FRIGATE for c in self.cameras):
            self._links[_NVR] = Link(
                self.host,
                self.port,
                f"frigate-{token}",
                will=formats.frigate_available(self.prefix, online=False),
                birth=formats.frigate_available(self.prefix, online=True),
            )
        for cam in self.cameras:
            if cam.kind is not Kind.FRIGATE:
                self._links[cam.id] = Link(self.host, self.port, f"{cam.kind}-{cam.id}-{token}")

    async def __aenter__(self) -> Self:
        self._t0_wall = time.time()
        self._t0_mono = time.monotonic()
        self._make_links()
        try:
            for key, link in self._links.items():
                await link.connect()
                if link.birth is not None:
                    self._count(key, link.birth, "frigate:available")
        except BaseException:
            await self._close_links(clean=True)
            raise
        for fault in sorted(self._faults):
            self._schedule(self.fault_interval, self._fault_tick(fault))
        self._task = asyncio.create_task(self._run(), name="camera-emulator")
        return self

    async def __aexit__(self, *exc: object) -> None:
        task, self._task = self._task, None
        self._stopping = True
        self._wake.set()
        if task is not None:
            # The flag ends the loop at its next turn; cancel too, repeatedly, because
            # on 3.11 asyncio.wait_for (used inside aiomqtt) can swallow one cancel.
            for _ in range(20):
                await asyncio.wait({task}, timeout=0.5)
                if task.done():
                    break
                task.cancel()
            if task.done() and not task.cancelled() and task.exception() is not None:
                _log.warning("camera emulator loop failed: %r", task.exception())
        nvr = self._links.get(_NVR)
        if nvr is not None and nvr.connected:
            # Frigate announces its own clean shutdown; the will covers the unclean one.
            await self._publish(_NVR, formats.frigate_available(self.prefix, False), "")
        await self._close_links(clean=True)

    async def _close_links(self, *, clean: bool) -> None:
        for link in self._links.values():
            await (link.close() if clean else link.abort())

    # ------------------------------------------------------------------ clock & scheduler

    def elapsed(self) -> float:
        """Scenario seconds since the emulator started."""
        return (time.monotonic() - self._t0_mono) * self.time_scale

    def _epoch(self, at: float | None = None) -> float:
        """Wall-clock time of scenario time ``at`` (default: now)."""
        return self._t0_wall + (self.elapsed() if at is None else at)

    def _schedule(self, at: float, action: Callable[[float], Awaitable[None]]) -> None:
        heapq.heappush(self._heap, (at, next(self._seq), action))
        self._wake.set()

    def _pull_step(self) -> None:
        """Keep exactly one pending scenario step in the heap (scenarios may be endless)."""
        if self._next_step is not None:
            return
        step = next(self._steps, None)
        if step is not None:
            self._next_step = step
            self._schedule(step.at, self._run_step(step))

    def _run_step(self, step: Step) -> Callable[[float], Awaitable[None]]:
        async def run(at: float) -> None:
            self._next_step = None
            act = step.action
            if isinstance(act, Detect):
                await self._detect(act.camera, act.label, act.score, act.zones, at)
            elif isinstance(act, End):
                await self._end(act.camera, act.label, at)
            elif isinstance(act, Offline):
                await self.go_offline(act.camera, clean=act.clean)
            elif isinstance(act, Online):
                await self.go_online(act.camera)

        return run

    async def _run(self) -> None:
        while not self._stopping:
            self._pull_step()
            if not self._heap:
                self._wake.clear()
                await self._wake.wait()
                continue
            at = self._heap[0][0]
            delay = (at - self.elapsed()) / self.time_scale
            if delay > 0:
                self._wake.clear()
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel
                # that lands as the timeout fires, and this loop would never stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                continue
            _, _, action = heapq.heappop(self._heap)
            try:
                await action(at)
            except EdgeError as exc:
                self.counters.errors += 1
                _log.warning("camera emulator: %s", exc)

    # ------------------------------------------------------------------ publishing

    def _count(self, key: str, msg: Message, event: str) -> None:
        self.counters.messages += 1
        self.counters.bytes += len(msg.payload)
        self.counters.by_topic[msg.topic] += 1
        if event:
            self.counters.events[event] += 1
        self.journal.append(msg)

    async def _publish(self, key: str, msg: Message, event: str) -> bool:
        link = self._links[key]
        if not link.wanted:
            self.counters.suppressed += 1
            return False
        try:
            await link.publish(msg)
        except EdgeError as exc:
            self.counters.errors += 1
            _log.warning("camera emulator: %s", exc)
            return False
        self._count(key, msg, event)
        return True

    def _spec(self, camera: str) -> CameraSpec:
        try:
            return self._by_id[camera]
        except KeyError:
            raise CommandError(
                f"unknown camera {camera!r} (cameras: {', '.join(self._by_id)})"
            ) from None

    def online(self, camera: str) -> bool:
        """Whether ``camera`` is switched on (publishing)."""
        return self._links[self._link_key(self._spec(camera))].wanted

    # ------------------------------------------------------------------ control API

    async def detect(
        self, camera: str, label: str, score: float, zones: Sequence[str] | None = None
    ) -> str | None:
        """``camera`` sees ``label`` with ``score`` (0..1) in ``zones`` (default: its own).

        Returns the event id (Frigate id, ``<MAC>:<label>`` or ``<camera>:<label>``), or
        None when the camera is offline and nothing was published.
        """
        spec = self._spec(camera)
        if not 0.0 <= score <= 1.0:
            raise CommandError(f"score must be within 0..1 (got {score})")
        if spec.kind is Kind.AXIS and label not in AXIS_LABELS:
            raise CommandError(f"Axis camera {camera!r} cannot report {label!r}: {AXIS_LABELS}")
        return await self._detect(camera, label, score, tuple(zones or spec.zones), None)

    async def _detect(
        self, camera: str, label: str, score: float, zones: tuple[str, ...], at: float | None
    ) -> str | None:
        spec = self._spec(camera)
        key = self._link_key(spec)
        if not self._links[key].wanted:
            self.counters.suppressed += 1
            return None
        at = self.elapsed() if at is None else at
        now = self._epoch(at)
        if spec.kind is Kind.FRIGATE:
            return await self._frigate_detect(spec, label, score, list(zones), now)
        if spec.kind is Kind.AXIS:
            assert spec.mac is not None
            if (camera, label) not in self._axis_active:  # stateful: only changes publish
                self._axis_active.add((camera, label))
                msg = formats.axis_event(spec.mac, label, True, int(now * 1000), score)
                await self._publish(key, msg, "axis:start")
            return f"{spec.mac}:{label}"
        state = self._generic.get((camera, label))
        if state is not None:
            state.score = score  # the running repeat chain picks it up
        else:
            chain = next(self._seq)
            self._generic[(camera, label)] = _Generic(score, chain)
            await self._publish(
                key, formats.generic_event(camera, label, score, now), "generic:event"
            )
            self._schedule(at + self.repeat_interval, self._repeat(camera, label, chain))
        return f"{camera}:{label}"

    async def _frigate_detect(
        self, spec: CameraSpec, label: str, score: float, zones: list[str], now: float
    ) -> str:
        track = self._tracks.get((spec.id, label))
        if track is None:
            track = formats.FrigateObject(
                id=formats.event_id(now, self._rng),
                camera=spec.id,
                label=label,
                start_time=now,
                frame_time=now,
                score=score,
                box=formats.random_box(self._rng),
            )
            track.observe(now, score, zones, None)
            self._tracks[(spec.id, label)] = track
            after = track.as_dict()
            msg = formats.frigate_event(self.prefix, "new", after, after)
            await self._publish(_NVR, msg, "frigate:new")
            await self._snapshot(spec, track)
            return track.id
        before = track.as_dict()
        best = track.top_score
        track.observe(now, score, zones, self._nudge(track.box))
        msg = formats.frigate_event(self.prefix, "update", before, track.as_dict())
        await self._publish(_NVR, msg, "frigate:update")
        if track.top_score > best:  # Frigate republishes the snapshot on a better frame
            await self._snapshot(spec, track)
        return track.id

    def _nudge(self, box: list[int]) -> list[int]:
        dx, dy = self._rng.randint(-8, 8), self._rng.randint(-8, 8)
        dx = max(-box[0], min(formats.FRAME[0] - box[2], dx))
        dy = max(-box[1], min(formats.FRAME[1] - box[3], dy))
        return [box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy]

    async def _snapshot(self, spec: CameraSpec, track: formats.FrigateObject) -> None:
        w, h = formats.FRAME
        b = track.box
        image = jpeg.snapshot(track.label, (b[0] / w, b[1] / h, b[2] / w, b[3] / h))
        msg = formats.frigate_snapshot(self.prefix, spec.id, track.label, image)
        await self._publish(_NVR, msg, "frigate:snapshot")

    def _repeat(self, camera: str, label: str, chain: int) -> Callable[[float], Awaitable[None]]:
        async def run(at: float) -> None:
            state = self._generic.get((camera, label))
            if state is None or state.chain != chain:
                return  # ended, or offline: the chain stops
            msg = formats.generic_event(camera, label, state.score, self._epoch(at))
            await self._publish(camera, msg, "generic:event")
            self._schedule(at + self.repeat_interval, self._repeat(camera, label, chain))

        return run

    async def end(self, camera: str, label: str) -> bool:
        """The object leaves. Frigate: ``end``; Axis: state ``"0"``; generic: repeats stop
        and nothing is sent (Hikvision-style cameras never clear). False if not active."""
        self._spec(camera)
        return await self._end(camera, label, None)

    async def _end(self, camera: str, label: str, at: float | None) -> bool:
        spec = self._spec(camera)
        now = self._epoch(at)
        if spec.kind is Kind.FRIGATE:
            track = self._tracks.pop((camera, label), None)
            if track is None:
                return False
            before = track.as_dict()
            track.end_time = now
            msg = formats.frigate_event(self.prefix, "end", before, track.as_dict())
            await self._publish(_NVR, msg, "frigate:end")
            return True
        if spec.kind is Kind.AXIS:
            if (camera, label) not in self._axis_active:
                return False
            self._axis_active.discard((camera, label))
            assert spec.mac is not None
            msg = formats.axis_event(spec.mac, label, False, int(now * 1000), 0.0)
            await self._publish(camera, msg, "axis:stop")
            return True
        return self._generic.pop((camera, label), None) is not None

    async def go_offline(self, camera: str, *, clean: bool = False) -> None:
        """The camera drops off the network.

        Frigate cameras share the NVR, so the NVR goes: ``clean`` publishes ``offline`` and
        disconnects; otherwise the stream is cut and the broker sends the last will
        ``offline``. Axis and generic cameras just fall silent. Active events are dropped.
        """
        spec = self._spec(camera)
        key = self._link_key(spec)
        link = self._links[key]
        if not link.wanted:
            return
        if clean and spec.kind is Kind.FRIGATE:
            await self._publish(
                key, formats.frigate_available(self.prefix, False), "frigate:available"
            )
        await (link.close() if clean else link.abort())
        same = {c.id for c in self.cameras if self._link_key(c) == key}
        for store in (self._tracks, self._generic):
            for k in [k for k in store if k[0] in same]:
                del store[k]
        self._axis_active -= {k for k in self._axis_active if k[0] in same}

    async def go_online(self, camera: str) -> None:
        """The camera (Frigate: the NVR) comes back; Frigate publishes ``online``."""
        spec = self._spec(camera)
        key = self._link_key(spec)
        link = self._links[key]
        if link.wanted and link.connected:
            return
        await link.connect()
        if link.birth is not None:
            self._count(key, link.birth, "frigate:available")

    # ------------------------------------------------------------------ faults

    @property
    def faults(self) -> frozenset[Fault]:
        """Faults switched on (injected every ``fault_interval`` scenario seconds)."""
        return frozenset(self._faults)

    def enable_fault(self, fault: Fault | str) -> None:
        f = Fault(fault)
        if f not in self._faults:
            self._faults.add(f)
            if self._task is not None:
                self._schedule(self.elapsed() + self.fault_interval, self._fault_tick(f))

    def disable_fault(self, fault: Fault | str) -> None:
        self._faults.discard(Fault(fault))

    def _fault_tick(self, fault: Fault) -> Callable[[float], Awaitable[None]]:
        async def run(at: float) -> None:
            if fault not in self._faults:
                return
            camera = self._rng.choice(self.cameras).id
            await self._inject(fault, camera, at)
            self._schedule(at + self.fault_interval, self._fault_tick(fault))

        return run

    async def inject(self, fault: Fault | str, camera: str | None = None) -> int:
        """Publish one instance of ``fault`` on ``camera``'s event topic (default: the
        first camera). Returns how many messages went out."""
        try:
            f = Fault(fault)
        except ValueError:
            raise CommandError(
                f"unknown fault {fault!r}: {', '.join(x.value for x in Fault)}"
            ) from None
        return await self._inject(f, camera or self.cameras[0].id, None)

    async def _inject(self, fault: Fault, camera: str, at: float | None) -> int:
        spec = self._spec(camera)
        key = self._link_key(spec)
        now = self._epoch(at)
        self.counters.faults[fault.value] += 1
        sent = 0
        if fault is Fault.FLOOD:
            spacing = 1.0 / self.flood_rate
            msgs = flood_messages(spec, self.prefix, now, self._rng, self.flood_count, spacing)
            start = time.monotonic()
            for i, msg in enumerate(msgs):
                if self._stopping:
                    break
                sent += await self._publish(key, msg, f"fault:{fault.value}")
                # pace to flood_rate per real second; bounded by flood_count
                ahead = start + (i + 1) * spacing - time.monotonic()
                if ahead > 0:
                    await asyncio.sleep(ahead)
            return sent
        for msg in fault_messages(fault, spec, self.prefix, now, self._rng):
            sent += await self._publish(key, msg, f"fault:{fault.value}")
        return sent

    # ------------------------------------------------------------------ description

    def topics(self) -> dict[str, list[str]]:
        """Topic filters a consumer subscribes to, per camera."""
        out: dict[str, list[str]] = {}
        for cam in self.cameras:
            if cam.kind is Kind.FRIGATE:
                p = self.prefix
                out[cam.id] = [f"{p}/available", f"{p}/events", f"{p}/{cam.id}/+/snapshot"]
            elif cam.kind is Kind.AXIS:
                out[cam.id] = [f"{cam.mac}/event/#"]
            else:
                out[cam.id] = [formats.generic_topic(cam.id)]
        return out

    def info(self) -> dict[str, Any]:
        """What the CLI prints: broker, cameras, topics, scenario, seed."""
        filters = sorted({t for ts in self.topics().values() for t in ts})
        return {
            "broker": self.broker_url,
            "scenario": self.scenario,
            "seed": self.seed,
            "time_scale": self.time_scale,
            "topics": filters,
            "cameras": [
                {
                    "id": c.id,
                    "kind": c.kind.value,
                    "zones": list(c.zones),
                    "mac": c.mac,
                    "topics": self.topics()[c.id],
                }
                for c in self.cameras
            ],
        }
