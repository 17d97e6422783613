"""The ``beacon-serial`` driver: firefighters' beacons through a USB serial receiver.

::

    crew = driver.create("beacon-serial", {"port": "/dev/serial/by-id/usb-rx"}, instance="crew")
    async with crew:
        async for item in crew.stream():       # readings and events, per firefighter
            await store(item)
            await crew.confirm(item)          # acks an alarm to the receiver, only now
        await crew.write("all", "evacuate")

Three layers: :mod:`~drivers.beacon_serial.link` moves bytes (pyserial-asyncio-fast),
:class:`~drivers.beacon_serial.codec.FrameDecoder` finds frames in them (resynchronising
after noise, cut frames and bad CRCs), :class:`~drivers.beacon_serial.tracker.CrewTracker`
turns frames into readings and events. This module owns the life of the port: a port that
vanishes (USB unplugged) or a receiver that goes silent raises one ``receiver-fault``
trouble event; the driver polls the path with capped, jittered exponential backoff, reopens
it when it is back and clears the event when frames flow again, all inside ``stream()``.
No background task is started: everything runs in the task that iterates ``stream()``,
and ``write()``/``confirm()`` only write.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator

import serial

from drivers.beacon_serial.codec import (
    RECEIVER_ID,
    Ack,
    Evacuate,
    Frame,
    FrameDecoder,
    FrameType,
    encode,
)
from drivers.beacon_serial.config import BeaconSerialConfig
from drivers.beacon_serial.link import LINK_ERRORS, SerialLink, port_present
from drivers.beacon_serial.tracker import AckTarget, CrewTracker
from edgesdk.driver import Driver, DriverState
from edgesdk.errors import CommandError, ConnectionLostError, EdgeError
from edgesdk.model import (
    Event,
    EventKind,
    EventState,
    Item,
    RawItem,
    Reading,
    ReadingBlock,
    Severity,
    Value,
)

__all__ = ["COUNTERS", "EVACUATE", "BeaconSerialConfig", "BeaconSerialDriver"]

EVACUATE = "evacuate"
"""The one value ``write()`` takes."""

_PATH_CHECK = 1.0  # seconds between looks at the port path while no byte arrives
# what opening may raise; ValueError: settings pyserial refuses
_OPEN_ERRORS: tuple[type[Exception], ...] = (serial.SerialException, OSError, EdgeError, ValueError)

# the decoder's counter names -> the names in health (the rest keep theirs)
_DECODER_NAMES = {
    "bytes_fed": "bytes_received",
    "frames": "frames_decoded",
    "noise_bytes": "noise_bytes",
    "bad_length": "bad_length",
    "bad_crc": "bad_crc",
    "truncated": "truncated",
    "unknown_type": "unknown_type",
    "bad_payload_length": "bad_payload_length",
}
_FRAME_COUNTERS = {
    FrameType.TELEMETRY: "frames_telemetry",
    FrameType.ALARM: "frames_alarm",
    FrameType.RECEIVER_STATUS: "frames_receiver_status",
    FrameType.HELLO: "frames_hello",
}

COUNTERS = (
    *_FRAME_COUNTERS.values(),
    "frames_unexpected",  # gateway-to-receiver types coming from the receiver
    "frames_missed",  # gaps in the senders' sequence numbers
    "frame_errors",  # valid frames that could not become items
    *_DECODER_NAMES.values(),
    "readings",
    "events",
    "joins",
    "joins_without_hello",
    "alarm_repeats",
    "acks_sent",
    "ack_errors",
    "evacuations_sent",
    "disconnects",
    "reconnects",
    "reopen_attempts",
    "silences",
    "receiver_faults",
)
"""Every counter in ``health.counters`` besides the base class's (``items``,
``commands``, ``command_errors``, ``errors``); all start at 0."""


class BeaconSerialDriver(Driver[BeaconSerialConfig]):
    """Readings and events from a crew's beacons; acks and evacuations back to them.

    Commands: ``write("<beacon id in decimal>", "evacuate")`` or ``write("all",
    "evacuate")`` (beacon id 0: every beacon). See ``docs/drivers.md`` for the readings,
    events and counters.
    """

    name = "beacon-serial"
    config_type = BeaconSerialConfig

    def __init__(self, config: BeaconSerialConfig, *, instance: str | None = None) -> None:
        super().__init__(config, instance=instance)
        self._decoder = FrameDecoder(max_length=config.max_frame_length)
        self._tracker = CrewTracker(
            self.instance, self._counters, alarm_memory=config.alarm_memory, blocks=True
        )
        self._link: SerialLink | None = None
        self._fault: Event | None = None  # the active receiver-fault occurrence
        self._reason = "port not open yet"
        self._silent = False
        self._deadline = 0.0  # loop time by which a frame must arrive
        self._attempts = 0  # failed reopen attempts since the port was lost
        self._stop = asyncio.Event()  # set by close(): ends stream() and its waits
        self._tx_seq = 0
        self._jitter = random.Random()
        for counter in ("items", "commands", "command_errors", "errors", *COUNTERS):
            self._counters[counter] = 0  # every counter shows in health from the start

    # -- life cycle ---------------------------------------------------------------------
    async def _open(self) -> None:
        self._stop = asyncio.Event()
        self._silent = False
        self._decoder.flush()
        try:
            link = await self._open_link()
        except _OPEN_ERRORS as exc:
            # not fatal: stream() raises receiver-fault and keeps trying
            self._port_down(exc)
            return
        self._link_up(link)

    async def _close(self) -> None:
        self._stop.set()
        link, self._link = self._link, None
        if link is not None:
            await link.close()

    # -- data ---------------------------------------------------------------------------
    async def _stream(self) -> AsyncIterator[RawItem]:
        while not self._stop.is_set():
            link = self._link
            items = await (self._reopen() if link is None else self._receive(link))
            for item in items:
                if type(item) is ReadingBlock:  # a telemetry frame's readings
                    self._count("readings", len(item.values))
                else:
                    self._count("readings" if isinstance(item, Reading) else "events")
                yield item

    async def _receive(self, link: SerialLink) -> list[RawItem]:
        """Read one chunk (or time out) and turn what it completes into items."""
        loop = asyncio.get_running_loop()
        wait = _PATH_CHECK if self._silent else min(_PATH_CHECK, self._deadline - loop.time())
        try:
            async with asyncio.timeout(max(wait, 0.0)):
                data = await link.read()
        except TimeoutError:
            if self._link is not link:
                return []
            if not port_present(self.config.port):
                return await self._lost(link, f"port {self.config.port} vanished")
            if not self._silent and loop.time() >= self._deadline:
                return self._went_silent()
            return []
        except LINK_ERRORS as exc:
            return [] if self._link is not link else await self._lost(link, exc)
        if self._link is not link:
            return []  # closed meanwhile
        if not data:
            return await self._lost(link, "end of stream")
        return await self._frames(self._decoder.feed(data))

    async def _frames(self, frames: list[Frame]) -> list[RawItem]:
        """Items for decoded frames; acks the repeats of alarms already confirmed."""
        self._sync_decoder()
        if not frames:
            return []
        items: list[RawItem] = []
        now, wall = asyncio.get_running_loop().time(), time.time()
        self._deadline = now + self.config.silence_timeout
        if self._silent or self._fault is not None:
            self._silent = False
            items += self._clear_fault()
        self._set_state(DriverState.ONLINE)
        acks: list[AckTarget] = []
        for frame in frames:
            self._count(_FRAME_COUNTERS.get(frame.type, "frames_unexpected"))
            try:
                out = self._tracker.feed(frame, now, wall)
            except (ValueError, TypeError) as exc:
                # a CRC-valid frame the model refuses must cost that frame, not the stream
                self._count("frame_errors")
                self._record_error(exc)
                continue
            items += out.items
            acks += out.acks
        for target in acks:
            await self._send_ack(target)
        return items

    def _sync_decoder(self) -> None:
        for source, value in self._decoder.counters().items():
            self._counters[_DECODER_NAMES[source]] = value

    # -- faults and reconnection --------------------------------------------------------
    async def _lost(self, link: SerialLink, why: BaseException | str) -> list[RawItem]:
        """The port failed or vanished: close it, raise receiver-fault, start polling."""
        self._link = None
        await link.close()
        items = await self._frames(self._decoder.flush())  # what the stream's end completes
        self._count("disconnects")
        self._port_down(why)
        return items + self._raise_fault()

    def _went_silent(self) -> list[RawItem]:
        self._silent = True
        self._count("silences")
        self._reason = f"no frame from the receiver for {self.config.silence_timeout:g}s"
        self._record_error(self._reason)
        self._set_state(DriverState.DEGRADED)
        return self._raise_fault()

    def _port_down(self, why: BaseException | str) -> None:
        self._record_error(why)
        self._reason = f"port {self.config.port}: {self._last_error}"
        self._attempts = 0
        self._set_state(DriverState.OFFLINE)

    async def _reopen(self) -> list[RawItem]:
        """One step of the reconnection loop: raise the fault, or wait and try once."""
        if self._fault is None:
            return self._raise_fault()
        await self._sleep(self._backoff())
        if self._stop.is_set():
            return []
        self._count("reopen_attempts")
        if not port_present(self.config.port):
            self._attempts += 1
            return []
        try:
            link = await self._open_link()
        except _OPEN_ERRORS as exc:
            self._attempts += 1
            self._record_error(exc)
            return []
        if self._stop.is_set():
            await link.close()
            return []
        self._count("reconnects")
        self._link_up(link)
        return []  # the fault clears with the first frame, proof the receiver talks

    async def _open_link(self) -> SerialLink:
        cfg = self.config
        return await SerialLink.open(cfg.port, baudrate=cfg.baudrate, within=cfg.open_timeout)

    def _link_up(self, link: SerialLink) -> None:
        self._link = link
        self._attempts = 0
        self._silent = False
        self._deadline = asyncio.get_running_loop().time() + self.config.silence_timeout
        self._set_state(DriverState.ONLINE)

    def _backoff(self) -> float:
        """Exponential from reconnect_min, capped at reconnect_max, jittered to 50-100%."""
        cfg = self.config
        ceiling = min(cfg.reconnect_max, cfg.reconnect_min * 2.0 ** min(self._attempts, 32))
        return self._jitter.uniform(ceiling / 2.0, ceiling)

    async def _sleep(self, delay: float) -> None:
        """Sleep ``delay`` s, or less if the driver closes meanwhile."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._stop.wait()

    def _raise_fault(self) -> list[RawItem]:
        if self._fault is not None:
            return []  # one occurrence until the receiver talks again
        self._count("receiver_faults")
        self._fault = Event(
            kind=EventKind.RECEIVER_FAULT,
            severity=Severity.TROUBLE,
            state=EventState.ACTIVE,
            source=self.instance,
            data={"error": self._reason, "port": self.config.port},
        )
        return [self._fault]

    def _clear_fault(self) -> list[RawItem]:
        fault, self._fault = self._fault, None
        return [] if fault is None else [fault.with_state(EventState.CLEARED)]

    # -- to the receiver ----------------------------------------------------------------
    def _next_seq(self) -> int:
        seq, self._tx_seq = self._tx_seq, (self._tx_seq + 1) & 0xFF
        return seq

    async def _send(self, data: bytes) -> None:
        link = self._link
        if link is None:
            raise ConnectionLostError(
                f"{self.instance}: receiver port {self.config.port} is not open ({self._reason})"
            )
        await link.write(data, within=self.config.write_timeout)

    async def _send_ack(self, target: AckTarget) -> None:
        """Ack one alarm frame; a failure is counted, the receiver's next repeat retries."""
        frame = encode(Ack(FrameType.ALARM, target.seq), self._next_seq(), target.beacon)
        try:
            await self._send(frame)
        except EdgeError as exc:
            self._count("ack_errors")
            self._record_error(exc)
            return
        self._count("acks_sent")

    async def _confirm(self, item: Item) -> None:
        if isinstance(item, Event):
            for target in self._tracker.confirm(item):
                await self._send_ack(target)

    async def _write(self, point: str, value: Value) -> None:
        beacon = self._target(point)
        if not isinstance(value, str) or value != EVACUATE:
            raise CommandError(
                f"{self.instance}: point {point!r} takes only the value {EVACUATE!r} "
                f"(got {value!r})"
            )
        await self._send(encode(Evacuate(), self._next_seq(), beacon))
        self._count("evacuations_sent")

    def _target(self, point: str) -> int:
        """``all`` -> 0 (every beacon); a decimal beacon id the receiver reported -> it."""
        if point == "all":
            return RECEIVER_ID
        known = self._tracker.beacons
        if point.isascii() and point.isdigit() and int(point) in known:
            return int(point)
        listed = ", ".join(str(b) for b in sorted(known)[:10]) or "none yet"
        raise CommandError(
            f"{self.instance}: unknown point {point!r}; use 'all' or the decimal id of a "
            f"beacon the receiver has reported (known: {listed})"
        )
