"""The beacon driver against a hand-made receiver on a real pty: exact bytes both ways,
including frames the emulator never sends (unknown types, wrong payload lengths)."""

from __future__ import annotations

import struct

from drivers.beacon_serial.codec import (
    SYNC,
    Ack,
    Alarm,
    AlarmCause,
    Evacuate,
    Frame,
    FrameDecoder,
    FrameType,
    Hello,
    Telemetry,
    TelemetryFlags,
    crc16,
    encode,
)
from edgesdk.model import Event, EventState
from emulators.pty import PtyPort
from tests.drivers.cases_beacon_serial import Feed, eventually, open_driver

B = 0x0A0B0C0D


def raw_frame(ftype: int, seq: int, beacon: int, payload: bytes) -> bytes:
    """A CRC-valid frame of any type and payload, as a newer receiver might send."""
    body = struct.pack("<BBBI", 6 + len(payload), ftype, seq, beacon) + payload
    return SYNC + body + crc16(body).to_bytes(2, "little")


class Receiver:
    """The device side of a pty: writes frames, decodes what the driver writes back."""

    def __init__(self) -> None:
        self.decoder = FrameDecoder()
        self.got: list[Frame] = []
        self.port = PtyPort(on_data=lambda data: self.got.extend(self.decoder.feed(data)))

    def send(self, message: object, seq: int, beacon: int = B) -> None:
        self.port.write(encode(message, seq, beacon))  # type: ignore[arg-type]


async def test_exact_frames_both_ways() -> None:
    rx = Receiver()
    async with rx.port, open_driver(rx.port.path) as drv, Feed(drv) as feed:
        rx.send(Hello(firmware=0x0105, model=3, wearer_age=51, rated_pressure=200.0), 0)
        no_contact = Telemetry(
            heart_rate=None,
            skin_temperature=33.1,
            ambient_temperature=-4.5,
            motion=12,
            scba_pressure=None,
            battery=14,
            flags=TelemetryFlags.LOW_BATTERY,
            rssi=-91,
        )
        rx.send(no_contact, 1)
        rx.port.write(raw_frame(0x05, 2, B, b"\x01\x02\x03"))  # a type from the future
        rx.port.write(raw_frame(FrameType.TELEMETRY, 3, B, b"\x00" * 5))  # wrong length
        rx.send(Ack(FrameType.ALARM, 9), 4)  # wrong direction
        await feed.until(lambda: drv.health.counters["frames_unexpected"] == 1, what="5 frames")
        c = drv.health.counters
        assert (c["unknown_type"], c["bad_payload_length"], c["frames_decoded"]) == (1, 1, 3)
        assert c["frames_missed"] == 2  # seq 2 and 3 never became frames
        got = {r.name: r.value for r in feed.readings()}
        assert got == {
            f"{B}/wearer_age": 51,
            f"{B}/rated_pressure": 200.0,
            f"{B}/skin_temp": 33.1,
            f"{B}/ambient_temp": -4.5,
            f"{B}/motion": 12,
            f"{B}/battery": 14,
            f"{B}/rssi": -91,
        }
        [joined] = feed.events()
        assert joined.data["firmware"] == "1.5"

        # an alarm repeated with seqs 10, 11, 12; acked with the latest, after confirm only
        for seq in (10, 11):
            rx.send(Alarm(cause=AlarmCause.DISTRESS, alarm_id=33), seq)
        await feed.until(lambda: bool(feed.events("distress")), what="distress")
        rx.send(Alarm(cause=AlarmCause.DISTRESS, alarm_id=33), 12)
        await feed.until(lambda: drv.health.counters["alarm_repeats"] == 2, what="repeats")
        assert rx.got == []
        [event] = feed.events("distress")
        await drv.confirm(event)
        await eventually(lambda: len(rx.got) == 1, what="the ack on the wire")
        [ack] = rx.got
        assert (ack.type, ack.beacon, ack.message) == (FrameType.ACK, B, Ack(FrameType.ALARM, 12))

        await drv.write(str(B), "evacuate")
        await drv.write("all", "evacuate")
        await eventually(lambda: len(rx.got) == 3, what="two evacuations on the wire")
        assert [(f.message, f.beacon) for f in rx.got[1:]] == [(Evacuate(), B), (Evacuate(), 0)]
        assert [f.seq for f in rx.got] == [0, 1, 2]  # the gateway numbers its own frames
        assert rx.decoder.bad_crc == rx.decoder.noise_bytes == 0

        # telemetry without the flag (it never rose here) is no falling edge: still active
        rx.send(no_contact, 13)
        await feed.until(lambda: feed.count(f"{B}/motion") == 2, what="telemetry")
        assert all(e.state is EventState.ACTIVE for e in feed.events() if isinstance(e, Event))
        assert drv.health.counters["acks_sent"] == 1
        assert drv.health.counters["evacuations_sent"] == 2


async def test_a_small_max_frame_length_rejects_long_frames() -> None:
    rx = Receiver()
    async with rx.port, open_driver(rx.port.path, max_frame_length=12) as drv, Feed(drv) as feed:
        rx.send(Hello(firmware=0x0203, model=7, wearer_age=30, rated_pressure=300.0), 0)  # 12
        rx.send(Telemetry(90, 36.0, 30.0, 400, 250.0, 80, TelemetryFlags(0), -60), 1)  # 18
        rx.send(Hello(firmware=0x0203, model=7, wearer_age=30, rated_pressure=300.0), 2)
        await feed.until(lambda: drv.health.counters["frames_hello"] == 2, what="hellos")
        assert drv.health.counters["bad_length"] == 1
        assert drv.health.counters["frames_telemetry"] == 0
        assert not feed.readings(f"{B}/motion")
