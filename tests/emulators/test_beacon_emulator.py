"""The beacon receiver emulator on a real pty, read and written with pyserial."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import serial

from drivers.beacon_serial.codec import (
    Ack,
    AlarmCause,
    Evacuate,
    Frame,
    FrameDecoder,
    FrameType,
    Hello,
    Message,
    ReceiverStatus,
    Telemetry,
    encode,
)
from edgesdk.errors import CommandError, ConfigError
from emulators.beacons.emulator import BeaconEmulator
from emulators.beacons.faults import Fault


def bitwise_crc(data: bytes) -> int:
    """CRC-16/CCITT-FALSE as the protocol document states it, bit by bit."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


class Client:
    """The gateway's side of the port: pyserial, non-blocking, polled from asyncio."""

    def __init__(self, path: str) -> None:
        self.port = serial.Serial(path, 115200, timeout=0)
        self.decoder = FrameDecoder()
        self.frames: list[Frame] = []
        self.raw = bytearray()
        self.frames_per_read: list[int] = []

    def send(self, message: Message, seq: int, beacon: int) -> None:
        self.port.write(encode(message, seq, beacon))
        self.port.flush()

    async def pump(
        self, until: Callable[[Client], bool], *, within: float = 10.0, what: str = ""
    ) -> None:
        """Read until ``until(self)`` holds; fail after ``within`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while loop.time() < deadline:
            data = self.port.read(65536)
            if data:
                self.raw += data
                got = self.decoder.feed(data)
                self.frames_per_read.append(len(got))
                self.frames += got
            if until(self):
                return
            if not data:
                await asyncio.sleep(0.01)
        raise AssertionError(
            f"{what or 'condition'} not met in {within}s: {len(self.frames)} frames, "
            f"decoder {self.decoder.counters()}"
        )

    def of(self, beacon: int, kind: FrameType | None = None) -> list[Frame]:
        return [f for f in self.frames if f.beacon == beacon and (kind is None or f.type is kind)]


@contextmanager
def client(path: str) -> Iterator[Client]:
    c = Client(path)
    try:
        yield c
    finally:
        c.port.close()


async def wait_for(check: Callable[[], bool], *, within: float = 5.0, what: str = "") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"{what or 'condition'} not met in {within}s")
        await asyncio.sleep(0.01)


async def test_frames_on_the_pty_carry_the_documented_crc() -> None:
    async with BeaconEmulator(crew=3, seed=1, time_scale=20) as emu:
        assert emu.path == emu.device_path
        with client(emu.path) as c:
            await c.pump(lambda c: len(c.frames) >= 40, what="40 frames")
    # split the raw bytes by the documented layout alone, checking every CRC bit by bit
    raw, i, checked = bytes(c.raw), 0, 0
    while i + 3 <= len(raw) and i + raw[i + 2] + 5 <= len(raw):
        assert raw[i : i + 2] == b"\xaa\x55"
        size = raw[i + 2] + 5
        assert bitwise_crc(raw[i + 2 : i + size - 2]) == int.from_bytes(
            raw[i + size - 2 : i + size], "little"
        )
        i += size
        checked += 1
    assert checked == len(c.frames) >= 40
    assert c.decoder.noise_bytes == c.decoder.bad_crc == c.decoder.truncated == 0
    assert isinstance(c.frames[0].message, ReceiverStatus)
    assert c.frames[0].beacon == 0
    for beacon in emu.beacon_ids:
        mine = c.of(beacon)
        assert isinstance(mine[0].message, Hello)  # a beacon says hello before anything else
        assert any(isinstance(f.message, Telemetry) for f in mine)


async def test_ack_stops_alarm_repeats_and_the_flag_shows_in_telemetry() -> None:
    async with BeaconEmulator(crew=2, seed=2, time_scale=20) as emu:
        victim, other = emu.beacon_ids
        with client(emu.path) as c:
            await c.pump(lambda c: len(c.of(victim, FrameType.TELEMETRY)) >= 2)
            emu.press_distress(victim)
            await c.pump(lambda c: len(c.of(victim, FrameType.ALARM)) >= 3, what="3 alarms")
            alarms = c.of(victim, FrameType.ALARM)
            assert {f.message.cause for f in alarms} == {AlarmCause.DISTRESS}  # type: ignore[union-attr]
            assert len({f.message.alarm_id for f in alarms}) == 1  # type: ignore[union-attr]
            c.send(Ack(FrameType.ALARM, alarms[1].seq), 0, victim)
            await wait_for(lambda: emu.counters.alarms_acked == 1, what="ack processed")
            sent = emu.counters.sent["alarm"]
            ticks = len(c.of(victim, FrameType.TELEMETRY))
            # four more simulated seconds: no further repeat is sent
            await c.pump(lambda c: len(c.of(victim, FrameType.TELEMETRY)) >= ticks + 4)
            assert emu.counters.sent["alarm"] == sent
            assert len(c.of(victim, FrameType.ALARM)) == sent  # and every one was received
            last = c.of(victim, FrameType.TELEMETRY)[-1].message
            assert isinstance(last, Telemetry)
            assert last.distress
            assert not c.of(other, FrameType.ALARM)
            assert emu.firefighters[0].alarms[0][1:] == (alarms[0].message.alarm_id, True)  # type: ignore[union-attr]


async def test_evacuate_is_recorded_per_beacon() -> None:
    async with BeaconEmulator(crew=3, seed=3, time_scale=20) as emu:
        a, b, _ = emu.beacon_ids
        with client(emu.path) as c:
            await c.pump(lambda c: len(c.frames) >= 5)
            c.port.write(b"\x00\xaa\x55\x03garbage")  # the emulator parses, it does not crash
            c.send(Evacuate(), 1, b)
            c.send(Evacuate(), 2, 0)  # beacon 0: every beacon
            await wait_for(lambda: emu.counters.evacuations == 4, what="evacuations")
        ff = emu.firefighters
        assert [f.evacuations for f in ff] == [1, 2, 1]
        assert all(f.evacuating for f in ff)
        assert ff[0].beacon == a
        counters = emu.counters
        assert counters.gateway_frames == 2
        assert counters.gateway_decoder["bad_length"] == 1
        assert counters.gateway_decoder["noise_bytes"] > 0


def counted(counter: str, at_least: int) -> Callable[[Client], bool]:
    return lambda c: c.decoder.counters()[counter] >= at_least


def has_frames(at_least: int) -> Callable[[Client], bool]:
    return lambda c: len(c.frames) >= at_least


async def test_each_fault_is_seen_by_the_decoder() -> None:
    async with BeaconEmulator(crew=2, seed=4, time_scale=10) as emu:
        with client(emu.path) as c:
            await c.pump(lambda c: len(c.frames) >= 5)
            for fault, counter in [
                (Fault.NOISE, "noise_bytes"),
                (Fault.TRUNCATE, "truncated"),
                (Fault.BAD_CRC, "bad_crc"),
            ]:
                want = c.decoder.counters()[counter] + 3
                emu.inject(fault, 3)
                await c.pump(counted(counter, want), what=f"{fault} counted")
                await c.pump(has_frames(len(c.frames) + 3), what="recovered")
            reads = len(c.frames_per_read)
            emu.inject(Fault.BURST, 8)
            await c.pump(lambda c: max(c.frames_per_read[reads:], default=0) >= 8)
        assert emu.counters.faults == {"noise": 3, "truncate": 3, "bad-crc": 3, "burst": 1}


async def test_unplug_and_replug_through_the_link(tmp_path: Path) -> None:
    link = tmp_path / "beacon-receiver"
    async with BeaconEmulator(crew=2, seed=5, time_scale=20, link=link) as emu:
        assert emu.path == str(link) == emu.link
        assert str(link.resolve()) == emu.device_path
        with client(emu.path) as c:
            await c.pump(lambda c: len(c.frames) >= 5)
            emu.unplug()
            plugged = emu.plugged
            assert not plugged
            assert not link.is_symlink()
            with pytest.raises(serial.SerialException):
                await c.pump(lambda c: False, within=3.0)
        await wait_for(lambda: emu.counters.frames_dropped > 0, what="frames dropped")
        emu.replug()
        assert emu.plugged
        assert str(link.resolve()) == emu.device_path
        with client(str(link)) as c2:
            ids = set(emu.beacon_ids)
            await c2.pump(
                lambda c: {f.beacon for f in c.frames if isinstance(f.message, Hello)} == ids,
                what="hellos after replug",
            )
            status = [f.message for f in c2.frames if isinstance(f.message, ReceiverStatus)]
            assert status[0].uptime <= 1  # the receiver restarted


async def test_same_seed_same_frames_at_different_time_scales() -> None:
    async with (
        BeaconEmulator(crew=3, seed=6, time_scale=20, scenario="fall", event_at=2.0) as one,
        BeaconEmulator(crew=3, seed=6, time_scale=40, scenario="fall", event_at=2.0) as two,
    ):
        with client(one.path) as c1, client(two.path) as c2:
            await asyncio.gather(
                c1.pump(lambda c: len(c.frames) >= 60), c2.pump(lambda c: len(c.frames) >= 60)
            )
    first = [f.to_bytes() for f in c1.frames[:60]]
    assert first == [f.to_bytes() for f in c2.frames[:60]]
    assert any(f.type is FrameType.ALARM for f in c1.frames[:60])


async def test_man_down_ends_in_the_beacons_pass_alarm() -> None:
    async with BeaconEmulator(
        crew=2, seed=7, time_scale=50, scenario="man-down", event_at=5.0, pass_alarm_after=30.0
    ) as emu:
        victim = emu.victim
        assert victim == emu.beacon_ids[0]
        with client(emu.path) as c:
            await c.pump(lambda c: bool(c.of(victim, FrameType.ALARM)), what="PASS alarm")
    alarm = c.of(victim, FrameType.ALARM)[0].message
    assert alarm.cause == AlarmCause.MOTION  # type: ignore[union-attr]
    tele = [f.message for f in c.of(victim, FrameType.TELEMETRY)]
    assert len(tele) >= 30  # at least 30 still seconds first
    assert all(t.motion < 50 for t in tele[-25:])  # type: ignore[union-attr]


async def test_control_api() -> None:
    async with BeaconEmulator(crew=2, seed=8, time_scale=50, pass_alarm_after=5.0) as emu:
        a, b = emu.beacon_ids
        emu.set_motion(a, 0)
        emu.set_battery(b, 10.0)
        with client(emu.path) as c:
            await c.pump(lambda c: bool(c.of(a, FrameType.ALARM)), what="PASS alarm")
            await c.pump(lambda c: len(c.of(b, FrameType.TELEMETRY)) >= 3)
        assert c.of(a, FrameType.ALARM)[0].message.cause == AlarmCause.MOTION  # type: ignore[union-attr]
        assert c.of(a, FrameType.TELEMETRY)[-1].message.motion == 0  # type: ignore[union-attr]
        assert c.of(b, FrameType.TELEMETRY)[-1].message.low_battery  # type: ignore[union-attr]
        with pytest.raises(CommandError, match="no beacon"):
            emu.press_distress(0xDEADBEEF)
        with pytest.raises(CommandError, match="motion"):
            emu.set_motion(a, -1)
        with pytest.raises(ConfigError, match="fault"):
            emu.inject("smoke")
    with pytest.raises(ConfigError, match="time_scale"):
        BeaconEmulator(time_scale=0)


def test_a_link_must_not_replace_a_file(tmp_path: Path) -> None:
    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    with pytest.raises(ConfigError, match="not a symlink"):
        BeaconEmulator(link=precious)
    assert precious.read_text() == "keep me"
    with pytest.raises(ConfigError, match="does not exist"):
        BeaconEmulator(link=tmp_path / "missing" / "rx")
