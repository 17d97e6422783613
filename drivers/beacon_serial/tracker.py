"""Frames in, readings and events out: what the crew's beacons say, without any I/O.

:class:`CrewTracker` holds the little state the translation needs, so it can be tested
with real codec frames and no port:

* **joins**: a hello is a join (readings ``wearer_age`` and ``rated_pressure`` for the
  rules, and a ``beacon-joined`` info event). Telemetry or an alarm from a beacon never
  heard before is a join too: pyserial discards unread input when the port opens, so a
  gateway that starts late misses the hellos.
* **alarm occurrences**: the receiver repeats each alarm frame every second until one
  repeat is acked, so one ``(beacon, alarm id)`` is one event however many repeats arrive.
  The ack goes out only when the gateway confirms the event is durably stored
  (:meth:`CrewTracker.confirm`); a repeat that arrives after that is acked again, which
  covers an ack lost on the wire.
* **telemetry flags**: the distress (bit 0) and fall (bit 1) flags stay set until the
  wearer resets the beacon. A rising edge raises the event when no alarm frame did already,
  a falling edge clears every active event of that kind for the beacon. An alarm frame
  that arrives after its flag (the first alarm frame was lost) joins the flag's event.

The beacon's own motion (PASS) and thermal alarms latch in the beacon until the wearer
resets it and no frame says so, so their events stay active: a person acknowledges them.

With ``blocks=True`` (the driver's setting) a telemetry frame's readings come as one
:class:`~edgesdk.model.ReadingBlock` (one layout per beacon and set of sensors, reused
frame after frame) instead of up to seven :class:`~edgesdk.model.Reading` objects: the
gateway seals blocks straight into SenML and routes them to its rules once per layout.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

from drivers.beacon_serial.codec import (
    RECEIVER_ID,
    Alarm,
    AlarmCause,
    Frame,
    Hello,
    ReceiverStatus,
    Telemetry,
)
from edgesdk.model import (
    Event,
    EventKind,
    EventState,
    Item,
    RawItem,
    Reading,
    ReadingBlock,
    ReadingLayout,
    Severity,
)

__all__ = ["AckTarget", "CrewTracker", "Output", "cause_kind"]

_KIND_BY_CAUSE: dict[int, EventKind] = {
    AlarmCause.DISTRESS: EventKind.DISTRESS,
    AlarmCause.FALL: EventKind.FALL,
    AlarmCause.MOTION: EventKind.BEACON_ALARM,
    AlarmCause.THERMAL: EventKind.THERMAL,
}
_FLAG_KINDS = (EventKind.DISTRESS, EventKind.FALL)  # cleared by the telemetry flags
_PRUNE_EVERY = 30.0  # seconds between sweeps of forgotten alarms
_MAX_LAYOUTS = 4096  # telemetry layouts kept (4 per beacon at most); beyond, built per frame


def cause_kind(cause: int) -> EventKind:
    """The event kind for an alarm cause; a cause this driver does not know is a
    ``beacon-alarm`` (the beacon alarmed, we cannot say why)."""
    return _KIND_BY_CAUSE.get(int(cause), EventKind.BEACON_ALARM)


class AckTarget(NamedTuple):
    """An alarm frame to ack: the beacon that sent it and the seq of one of its repeats."""

    beacon: int
    seq: int


class Output(NamedTuple):
    """What one frame produced: items to hand on, and alarm frames to ack now."""

    items: list[RawItem]
    acks: list[AckTarget]


@dataclass(slots=True, eq=False)
class _Occurrence:
    """One event occurrence the driver raised, and the alarm frames that carry it."""

    event: Event
    beacon: int
    confirmed: bool = False
    alarms: list[_AlarmEntry] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class _AlarmEntry:
    """One ``(beacon, alarm id)``: the latest repeat's seq, for the ack."""

    beacon: int
    alarm_id: int
    seq: int
    last_seen: float
    occurrence: _Occurrence


class CrewTracker:
    """Turns decoded frames into items for the device ``device`` (the driver instance).

    ``now`` arguments are the caller's clock in seconds (monotonic is best; only
    differences matter), ``wall`` the epoch time stamped on the items. ``counters`` is
    where ``alarm_repeats``, ``joins``, ``joins_without_hello`` and ``frames_missed`` are
    counted (the driver passes its health counters). ``alarm_memory`` is how long an alarm
    id is remembered after its last repeat. ``blocks``: telemetry readings as one
    :class:`~edgesdk.model.ReadingBlock` per frame (see the module doc).
    """

    def __init__(
        self,
        device: str,
        counters: Counter[str],
        *,
        alarm_memory: float = 600.0,
        blocks: bool = False,
    ) -> None:
        self.device = device
        self._blocks = blocks
        self._layouts: dict[tuple[int, bool, bool], ReadingLayout] = {}
        self._counters = counters
        self._alarm_memory = alarm_memory
        self._seen: set[int] = set()
        self._flags: dict[int, tuple[bool, bool]] = {}
        self._seqs: dict[int, int] = {}
        self._alarms: dict[tuple[int, int], _AlarmEntry] = {}
        self._occurrences: dict[str, _Occurrence] = {}
        self._flag_active: dict[tuple[int, EventKind], list[_Occurrence]] = {}
        self._last_prune: float | None = None

    # -- public -------------------------------------------------------------------------
    def feed(self, frame: Frame, now: float, wall: float) -> Output:
        """The items and acks one decoded frame calls for."""
        self._prune(now)
        self._sequence(frame)
        out = Output([], [])
        message = frame.message
        if isinstance(message, ReceiverStatus):
            out.items.extend(self._status(message, wall))
            return out
        if frame.beacon == RECEIVER_ID or not isinstance(message, Telemetry | Alarm | Hello):
            return out  # gateway-to-receiver types, or beacon 0 where a beacon belongs
        if isinstance(message, Hello):
            out.items.extend(self._hello(frame.beacon, message, wall))
            return out
        if frame.beacon not in self._seen:
            out.items.append(self._join(frame.beacon, None, wall))
        if isinstance(message, Telemetry):
            out.items.extend(self._telemetry(frame.beacon, message, wall))
        else:
            self._alarm(frame, message, now, wall, out)
        return out

    def confirm(self, event: Event) -> list[AckTarget]:
        """``event`` is durably stored: the alarm frames behind it may be acked now."""
        occ = self._occurrences.get(event.id)
        if occ is None or occ.confirmed or event.state is not EventState.ACTIVE:
            return []
        occ.confirmed = True
        return [AckTarget(a.beacon, a.seq) for a in occ.alarms]

    @property
    def beacons(self) -> frozenset[int]:
        """Every beacon heard so far (hello, telemetry or alarm)."""
        return frozenset(self._seen)

    # -- frames -------------------------------------------------------------------------
    def _sequence(self, frame: Frame) -> None:
        """Count ``frames_missed``: each beacon (and the receiver, id 0) numbers its frames
        +1 mod 256, so a gap is frames lost on the radio or on the serial line."""
        last = self._seqs.get(frame.beacon)
        self._seqs[frame.beacon] = frame.seq
        if last is not None:
            self._counters["frames_missed"] += (frame.seq - last - 1) & 0xFF

    def _reading(self, name: str, value: float | int, unit: str | None, wall: float) -> Reading:
        return Reading(self.device, name, value, unit, wall)

    def _status(self, status: ReceiverStatus, wall: float) -> list[Item]:
        return [
            self._reading("receiver/uptime", status.uptime, "s", wall),
            self._reading("receiver/frames", status.frames_received, None, wall),
            self._reading("receiver/noise_floor", status.noise_floor, "dBm", wall),
        ]

    def _join(self, beacon: int, hello: Hello | None, wall: float) -> Event:
        self._seen.add(beacon)
        self._counters["joins"] += 1
        data: dict[str, object] = {"beacon": beacon}
        if hello is None:
            self._counters["joins_without_hello"] += 1
        else:
            data.update(
                firmware=f"{hello.firmware >> 8}.{hello.firmware & 0xFF}",
                model=hello.model,
                wearer_age=hello.wearer_age,
                rated_pressure=hello.rated_pressure,
            )
        return Event(
            kind=EventKind.BEACON_JOINED,
            severity=Severity.INFO,
            state=EventState.ACTIVE,
            source=self.device,
            time=wall,
            data=data,
        )

    def _hello(self, beacon: int, hello: Hello, wall: float) -> list[Item]:
        return [
            self._reading(f"{beacon}/wearer_age", hello.wearer_age, "a", wall),
            self._reading(f"{beacon}/rated_pressure", hello.rated_pressure, "bar", wall),
            self._join(beacon, hello, wall),
        ]

    def _telemetry(self, beacon: int, t: Telemetry, wall: float) -> list[RawItem]:
        b = beacon
        # heart rate None (0 on the wire) means no sensor contact: no reading at all
        hr, scba = t.heart_rate, t.scba_pressure
        values: list[float | int] = [hr] if hr else []
        values += (t.skin_temperature, t.ambient_temperature, t.motion)
        if scba is not None:
            values.append(scba)
        values += (t.battery, t.rssi)
        block = ReadingBlock(self._layout(b, bool(hr), scba is not None), values, wall)
        items: list[RawItem] = [block] if self._blocks else list(block)
        before = self._flags.get(b, (False, False))
        now = (t.distress, t.fall)
        self._flags[b] = now
        for kind, was, is_set in zip(_FLAG_KINDS, before, now, strict=True):
            if is_set and not was:
                items.extend(self._flag_rose(b, kind, wall))
            elif was and not is_set:
                items.extend(self._flag_fell(b, kind, wall))
        return items

    def _layout(self, beacon: int, heart_rate: bool, scba: bool) -> ReadingLayout:
        """The names and units of a telemetry frame's readings, in frame order."""
        key = (beacon, heart_rate, scba)
        layout = self._layouts.get(key)
        if layout is None:
            b = beacon
            names, units = [], []
            for name, unit, present in (
                ("heart_rate", "1/min", heart_rate),
                ("skin_temp", "Cel", True),
                ("ambient_temp", "Cel", True),
                ("motion", "mg", True),
                ("scba_pressure", "bar", scba),
                ("battery", "%", True),
                ("rssi", "dBm", True),
            ):
                if present:
                    names.append(f"{b}/{name}")
                    units.append(unit)
            layout = ReadingLayout(self.device, names, units)
            if len(self._layouts) < _MAX_LAYOUTS:
                self._layouts[key] = layout
        return layout

    def _flag_rose(self, beacon: int, kind: EventKind, wall: float) -> list[Item]:
        if self._flag_active.get((beacon, kind)):
            return []  # an alarm frame raised it already
        occ = self._raise(beacon, kind, {"beacon": beacon}, wall)
        self._flag_active.setdefault((beacon, kind), []).append(occ)
        return [occ.event]

    def _flag_fell(self, beacon: int, kind: EventKind, wall: float) -> list[Item]:
        cleared: list[Item] = []
        for occ in self._flag_active.pop((beacon, kind), []):
            cleared.append(occ.event.with_state(EventState.CLEARED, time=wall))
            if not occ.alarms:
                self._occurrences.pop(occ.event.id, None)
        return cleared

    def _alarm(self, frame: Frame, alarm: Alarm, now: float, wall: float, out: Output) -> None:
        beacon = frame.beacon
        entry = self._alarms.get((beacon, alarm.alarm_id))
        if entry is not None:  # a repeat: never a new event
            self._counters["alarm_repeats"] += 1
            entry.seq = frame.seq
            entry.last_seen = now
            if entry.occurrence.confirmed:
                out.acks.append(AckTarget(beacon, frame.seq))
            return
        kind = cause_kind(alarm.cause)
        group = self._flag_active.get((beacon, kind), []) if kind in _FLAG_KINDS else []
        # the flag rose first (this alarm's earlier repeats were lost): same occurrence
        occ = next((o for o in group if not o.alarms), None)
        if occ is None:
            data = {"beacon": beacon, "alarm_id": alarm.alarm_id, "cause": int(alarm.cause)}
            occ = self._raise(beacon, kind, data, wall)
            out.items.append(occ.event)
            if kind in _FLAG_KINDS:  # the flag shows in telemetry (now or within a second)
                self._flag_active.setdefault((beacon, kind), []).append(occ)
        entry = _AlarmEntry(beacon, alarm.alarm_id, frame.seq, now, occ)
        occ.alarms.append(entry)
        self._alarms[(beacon, alarm.alarm_id)] = entry
        if occ.confirmed:
            out.acks.append(AckTarget(beacon, frame.seq))

    def _raise(
        self, beacon: int, kind: EventKind, data: dict[str, int], wall: float
    ) -> _Occurrence:
        event = Event(
            kind=kind,
            severity=Severity.ALARM,
            state=EventState.ACTIVE,
            source=self.device,
            time=wall,
            data=data,
        )
        occ = _Occurrence(event=event, beacon=beacon)
        self._occurrences[event.id] = occ
        return occ

    def _prune(self, now: float) -> None:
        """Forget alarms not repeated for ``alarm_memory`` s (an id may come back after
        255 more alarms), and occurrences nothing refers to any more."""
        if self._last_prune is None:
            self._last_prune = now
        if now - self._last_prune < _PRUNE_EVERY:
            return
        self._last_prune = now
        limit = now - self._alarm_memory
        for key, entry in list(self._alarms.items()):
            if entry.last_seen < limit:
                del self._alarms[key]
                entry.occurrence.alarms.remove(entry)
        live = {id(o) for group in self._flag_active.values() for o in group}
        for event_id, occ in list(self._occurrences.items()):
            if not occ.alarms and id(occ) not in live:
                del self._occurrences[event_id]
