"""The beacon driver's frame-to-item translation (CrewTracker), sans-I/O: real codec frames
in, items and ack targets out. The cases the emulator cannot be made to produce on demand
(a lost first alarm frame, unknown causes, a wrapped sequence) are driven here."""

from __future__ import annotations

from collections import Counter

from drivers.beacon_serial.codec import (
    Ack,
    Alarm,
    AlarmCause,
    Evacuate,
    FrameType,
    Hello,
    ReceiverStatus,
    TelemetryFlags,
    decode,
    encode,
)
from drivers.beacon_serial.tracker import AckTarget, CrewTracker, Output
from edgesdk.model import Event, EventState, Reading
from tests.drivers.cases_beacon_serial import tele

B = 0x0A0B0C0D


class Crew:
    """A tracker fed through the codec (encode, then decode), with a clock."""

    def __init__(self, memory: float = 600.0) -> None:
        self.counters: Counter[str] = Counter()
        self.tracker = CrewTracker("crew", self.counters, alarm_memory=memory)
        self.now = 1000.0
        self.seq: Counter[int] = Counter()

    def send(self, message: object, beacon: int = B, seq: int | None = None) -> Output:
        if seq is None:
            seq = self.seq[beacon] % 256
        self.seq[beacon] = seq + 1
        frame = decode(encode(message, seq, beacon))  # type: ignore[arg-type]
        self.now += 1.0
        return self.tracker.feed(frame, self.now, 1.7e9 + self.now)


def events(out: Output) -> list[Event]:
    return [i for i in out.items if isinstance(i, Event)]


def names(out: Output) -> dict[str, tuple[object, str | None]]:
    return {i.name: (i.value, i.unit) for i in out.items if isinstance(i, Reading)}


def test_telemetry_readings_in_physical_units() -> None:
    crew = Crew()
    out = crew.send(tele())
    assert names(out) == {
        f"{B}/heart_rate": (142, "1/min"),
        f"{B}/skin_temp": (36.55, "Cel"),
        f"{B}/ambient_temp": (48.2, "Cel"),
        f"{B}/motion": (734, "mg"),
        f"{B}/scba_pressure": (241.3, "bar"),
        f"{B}/battery": (87, "%"),
        f"{B}/rssi": (-67, "dBm"),
    }
    [joined] = events(out)  # never said hello: the telemetry is its join
    assert joined.kind == "beacon-joined" and dict(joined.data) == {"beacon": B}
    assert all(isinstance(i, Reading) and i.device == "crew" for i in out.items[1:])
    assert out.items[0] is joined and crew.counters["joins_without_hello"] == 1
    assert not events(crew.send(tele()))  # one join only


def test_unknown_heart_rate_and_no_cylinder_are_absent_not_zero() -> None:
    crew = Crew()
    got = names(crew.send(tele(heart_rate=None, scba_pressure=None)))
    assert f"{B}/heart_rate" not in got and f"{B}/scba_pressure" not in got
    assert got[f"{B}/skin_temp"] == (36.55, "Cel")


def test_hello_and_receiver_status() -> None:
    crew = Crew()
    out = crew.send(Hello(firmware=0x0203, model=7, wearer_age=34, rated_pressure=300.0))
    assert names(out) == {f"{B}/wearer_age": (34, "a"), f"{B}/rated_pressure": (300.0, "bar")}
    [joined] = events(out)
    assert joined.severity == "info" and joined.state is EventState.ACTIVE
    assert dict(joined.data) == {
        "beacon": B,
        "firmware": "2.3",
        "model": 7,
        "wearer_age": 34,
        "rated_pressure": 300.0,
    }
    assert not events(crew.send(tele()))  # joined by its hello already
    status = crew.send(ReceiverStatus(uptime=3600, frames_received=14400, noise_floor=-101), 0)
    assert names(status) == {
        "receiver/uptime": (3600, "s"),
        "receiver/frames": (14400, None),
        "receiver/noise_floor": (-101, "dBm"),
    }
    assert crew.counters["joins"] == 1


def test_frames_the_receiver_should_not_send_give_nothing() -> None:
    crew = Crew()
    assert crew.send(Ack(FrameType.ALARM, 3)) == Output([], [])
    assert crew.send(Evacuate()) == Output([], [])
    assert crew.send(tele(), beacon=0) == Output([], [])  # beacon 0 is the receiver
    assert crew.tracker.beacons == frozenset()


def test_alarm_repeats_are_one_event_acked_after_confirm_with_the_latest_seq() -> None:
    crew = Crew()
    crew.send(tele())
    first = crew.send(Alarm(cause=AlarmCause.DISTRESS, alarm_id=5), seq=40)
    [event] = events(first)
    assert event.kind == "distress" and event.severity == "alarm"
    assert dict(event.data) == {"beacon": B, "alarm_id": 5, "cause": 1}
    assert first.acks == []  # not before the gateway stored it
    assert crew.send(Alarm(cause=AlarmCause.DISTRESS, alarm_id=5), seq=41) == Output([], [])
    assert crew.counters["alarm_repeats"] == 1
    assert crew.tracker.confirm(event) == [AckTarget(B, 41)]
    assert crew.tracker.confirm(event) == []  # once
    # a repeat after the ack (it crossed the ack, or the ack was lost) is acked again
    assert crew.send(Alarm(cause=AlarmCause.DISTRESS, alarm_id=5), seq=42).acks == [
        AckTarget(B, 42)
    ]
    # the flag in telemetry is the same occurrence; its fall clears it
    assert not events(crew.send(tele(TelemetryFlags.DISTRESS)))
    [cleared] = events(crew.send(tele()))
    assert cleared.id == event.id and cleared.state is EventState.CLEARED
    assert crew.tracker.confirm(cleared) == []


def test_a_flag_before_its_alarm_frame_is_one_occurrence() -> None:
    crew = Crew()
    crew.send(tele())
    [raised] = events(crew.send(tele(TelemetryFlags.FALL)))  # the first alarm frame was lost
    assert raised.kind == "fall" and dict(raised.data) == {"beacon": B}
    assert crew.tracker.confirm(raised) == []  # no alarm frame to ack yet
    # the repeat arrives: same occurrence, already stored, so acked at once
    late = crew.send(Alarm(cause=AlarmCause.FALL, alarm_id=9), seq=77)
    assert late == Output([], [AckTarget(B, 77)])
    assert not events(crew.send(tele(TelemetryFlags.FALL)))
    [cleared] = events(crew.send(tele()))
    assert cleared.id == raised.id and cleared.state is EventState.CLEARED


def test_a_new_alarm_id_is_a_new_occurrence_and_the_flag_clears_them_all() -> None:
    crew = Crew()
    joined, raised = events(crew.send(tele(TelemetryFlags.DISTRESS)))  # set when first heard
    assert joined.kind == "beacon-joined" and raised.kind == "distress"
    assert events(crew.send(Alarm(cause=AlarmCause.DISTRESS, alarm_id=1))) == []  # the same
    [second] = events(crew.send(Alarm(cause=AlarmCause.DISTRESS, alarm_id=2)))  # pressed again
    assert second.data["alarm_id"] == 2
    cleared = events(crew.send(tele()))
    assert {e.id for e in cleared} == {raised.id, second.id}
    assert {e.state for e in cleared} == {EventState.CLEARED}


def test_causes_map_to_kinds_and_latched_ones_stay_active() -> None:
    crew = Crew()
    crew.send(tele())
    kinds = {}
    for alarm_id, cause in enumerate((3, 4, 9), start=1):
        [event] = events(crew.send(Alarm(cause=cause, alarm_id=alarm_id)))
        kinds[cause] = (event.kind, event.data["cause"])
    assert kinds == {3: ("beacon-alarm", 3), 4: ("thermal", 4), 9: ("beacon-alarm", 9)}
    for _ in range(3):  # motion back, flags clear: the beacon's latched alarms stay active
        assert not events(crew.send(tele(motion=900)))


def test_alarm_ids_are_forgotten_after_the_memory() -> None:
    crew = Crew(memory=60.0)
    crew.send(tele())
    [first] = events(crew.send(Alarm(cause=AlarmCause.MOTION, alarm_id=7)))
    crew.now += 30.0
    assert not events(crew.send(Alarm(cause=AlarmCause.MOTION, alarm_id=7)))  # a repeat
    crew.now += 120.0
    crew.send(tele())  # the sweep runs
    [again] = events(crew.send(Alarm(cause=AlarmCause.MOTION, alarm_id=7)))
    assert again.id != first.id  # the id came round again: a new occurrence
    assert crew.tracker.confirm(first) == []  # forgotten: nothing left to ack


def test_sequence_gaps_count_missed_frames_across_the_wrap() -> None:
    crew = Crew()
    crew.send(tele(), seq=250)
    crew.send(tele(), seq=251)
    crew.send(tele(), seq=254)  # 252, 253 missed
    crew.send(tele(), seq=1)  # 255, 0 missed
    crew.send(ReceiverStatus(uptime=1, frames_received=1, noise_floor=-100), 0, seq=9)
    crew.send(ReceiverStatus(uptime=2, frames_received=2, noise_floor=-100), 0, seq=10)
    assert crew.counters["frames_missed"] == 4
