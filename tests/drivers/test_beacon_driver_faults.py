"""The beacon-serial driver under every fault the emulator can inject, on a real pty:
damaged bytes, a burst, the receiver unplugged and replugged, the receiver gone silent."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Mapping
from pathlib import Path

import pytest

from drivers.beacon_serial import BeaconSerialDriver
from edgesdk.driver import DriverState
from edgesdk.errors import ConnectionLostError
from edgesdk.model import EventState, Reading, Severity
from emulators.beacons.emulator import BeaconEmulator
from emulators.beacons.faults import Fault, FaultInjector
from tests.drivers.cases_beacon_serial import Feed, eventually, open_driver, state

DAMAGE = ("noise_bytes", "bad_length", "bad_crc", "truncated", "unknown_type", "bad_payload_length")
SEED = 31


def delta(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in (*DAMAGE, "frames_missed", "frames_decoded")}


def expected_noise(seed: int, count: int) -> tuple[int, int, int]:
    """The junk an emulator seeded ``seed`` writes before its next ``count`` frames,
    replayed from its seeded fault generator: (bytes, false syncs, false syncs with a len
    below 6). Each false sync is rejected exactly once: a len below 6 as a bad length, any
    other as a bad CRC or a truncated candidate, depending on where its len points."""
    replica = FaultInjector(random.Random(f"beacons:{seed}:faults"))
    junk = [replica.noise() for _ in range(count)]
    syncs = short = 0
    for chunk in junk:
        at = chunk.find(b"\xaa\x55")
        while at >= 0:
            syncs += 1
            # a sync at the very end takes the next frame's first byte (AA) as its len
            short += (chunk[at + 2] if at + 2 < len(chunk) else 0xAA) < 6
            at = chunk.find(b"\xaa\x55", at + 2)
    return sum(map(len, junk)), syncs, short


async def steady(feed: Feed, frames: int) -> None:
    start = feed.drv.health.counters["frames_decoded"]
    await feed.until(
        lambda: feed.drv.health.counters["frames_decoded"] >= start + frames,
        what=f"{frames} more frames",
    )


@pytest.mark.parametrize("seed", [38, 39])
async def test_noise_is_counted_and_skipped(seed: int) -> None:
    noise, syncs, short = expected_noise(seed, 3)
    assert syncs >= 1  # these seeds hide false syncs in the noise: the decoder must resync
    async with (
        BeaconEmulator(crew=2, seed=seed, time_scale=20) as emu,
        open_driver(emu.path) as drv,
        Feed(drv) as feed,
    ):
        await feed.until(lambda: len(feed.events("beacon-joined")) == 2, what="joins")
        await steady(feed, 6)
        before, mark = dict(drv.health.counters), len(feed.items)
        emu.inject(Fault.NOISE, 3)
        await feed.until(
            lambda: delta(before, drv.health.counters)["noise_bytes"] >= noise,
            what="noise counted",
        )
        await steady(feed, 10)  # every false candidate is settled by now
        got = delta(before, drv.health.counters)
        assert emu.counters.faults == {"noise": 3}
        assert got["noise_bytes"] == noise
        assert got["bad_length"] == short
        assert got["bad_length"] + got["bad_crc"] + got["truncated"] == syncs
        assert got["frames_missed"] == 0  # noise between frames costs no frame
        assert got["unknown_type"] == got["bad_payload_length"] == 0
        assert_no_bogus_items(feed, mark, emu)
        assert state(drv) is DriverState.ONLINE


@pytest.mark.parametrize("fault", [Fault.TRUNCATE, Fault.BAD_CRC])
async def test_damaged_frames_are_counted_and_skipped(fault: Fault) -> None:
    counter = "truncated" if fault is Fault.TRUNCATE else "bad_crc"
    async with (
        BeaconEmulator(crew=2, seed=SEED, time_scale=20) as emu,
        open_driver(emu.path) as drv,
        Feed(drv) as feed,
    ):
        await feed.until(lambda: len(feed.events("beacon-joined")) == 2, what="joins")
        await steady(feed, 6)
        before, mark = dict(drv.health.counters), len(feed.items)
        emu.inject(fault, 3)
        await feed.until(
            lambda: delta(before, drv.health.counters)["frames_missed"] >= 3,
            what="the three damaged frames missed",
        )
        await steady(feed, 10)
        got = delta(before, drv.health.counters)
        assert emu.counters.faults == {str(fault): 3}
        assert got[counter] == 3
        assert got["frames_missed"] == 3  # exactly the damaged frames are lost
        others = [k for k in DAMAGE if k not in (counter, "noise_bytes")]
        assert {k: got[k] for k in others} == dict.fromkeys(others, 0)
        # the bytes of the rejected frames (cut: 3..len-1 of them; corrupt: all) are noise
        low, high = (3 * 3, 3 * 22) if fault is Fault.TRUNCATE else (3 * 11, 3 * 23)
        assert low <= got["noise_bytes"] <= high
        assert_no_bogus_items(feed, mark, emu)
        assert state(drv) is DriverState.ONLINE


def assert_no_bogus_items(feed: Feed, mark: int, emu: BeaconEmulator) -> None:
    """Only readings of the crew's beacons and the receiver since ``mark``; no event."""
    window = feed.items[mark:]
    assert window and all(isinstance(i, Reading) for i in window), feed.events(since=mark)
    heads = {i.name.partition("/")[0] for i in window if isinstance(i, Reading)}
    assert heads <= {str(b) for b in emu.beacon_ids} | {"receiver"}
    assert feed.drv.health.counters["receiver_faults"] == 0


async def test_a_burst_is_read_whole() -> None:
    async with (
        BeaconEmulator(crew=2, seed=SEED, time_scale=20) as emu,
        open_driver(emu.path) as drv,
        Feed(drv) as feed,
    ):
        await steady(feed, 6)
        before, mark = dict(drv.health.counters), len(feed.items)
        emu.inject(Fault.BURST, 8)
        await eventually(lambda: emu.counters.faults.get("burst") == 1, what="burst started")
        await feed.until(
            lambda: drv.health.counters["frames_decoded"] >= before["frames_decoded"] + 12,
            what="the held frames and more",
        )
        got = delta(before, drv.health.counters)
        assert {k: got[k] for k in (*DAMAGE, "frames_missed")} == dict.fromkeys(
            (*DAMAGE, "frames_missed"), 0
        )
        assert not feed.events(since=mark)
        assert state(drv) is DriverState.ONLINE


async def test_unplug_raises_receiver_fault_and_replug_clears_it(tmp_path: Path) -> None:
    link = tmp_path / "beacon-receiver"
    async with (
        BeaconEmulator(crew=2, seed=32, time_scale=20, link=link) as emu,
        open_driver(str(link)) as drv,
        Feed(drv) as feed,
    ):
        a, b = emu.beacon_ids
        await feed.until(lambda: feed.count(f"{a}/motion") >= 2, what="readings")
        assert state(drv) is DriverState.ONLINE

        emu.unplug()
        await feed.until(lambda: bool(feed.events("receiver-fault")), what="receiver-fault")
        [fault] = feed.events("receiver-fault")
        assert fault.severity is Severity.TROUBLE and fault.state is EventState.ACTIVE
        assert fault.source == "crew" and fault.data["port"] == str(link)
        assert isinstance(fault.data["error"], str) and fault.data["error"]
        assert state(drv) is DriverState.OFFLINE
        assert drv.health.counters["disconnects"] == 1
        assert drv.health.last_error is not None
        with pytest.raises(ConnectionLostError):
            await drv.write("all", "evacuate")
        # it keeps polling the vanished path, quietly
        await eventually(
            lambda: drv.health.counters["reopen_attempts"] >= 2, what="polling the path"
        )
        assert state(drv) is DriverState.OFFLINE
        assert len(feed.events("receiver-fault")) == 1
        mark = len(feed.items)

        emu.replug()
        await feed.until(lambda: len(feed.events("receiver-fault")) == 2, what="fault cleared")
        cleared = feed.events("receiver-fault")[1]
        assert cleared.state is EventState.CLEARED and cleared.id == fault.id
        assert state(drv) is DriverState.ONLINE
        assert drv.health.counters["reconnects"] == 1
        await feed.until(
            lambda: all(feed.readings(f"{x}/motion", since=mark) for x in (a, b)),
            what="readings again",
        )
        await drv.write("all", "evacuate")  # commands work again
        await eventually(lambda: emu.counters.evacuations == 2, what="evacuation after replug")
        assert drv.health.counters["receiver_faults"] == 1


async def test_a_missing_port_at_start_is_a_fault_until_it_appears(tmp_path: Path) -> None:
    link = tmp_path / "late-receiver"
    async with open_driver(str(link)) as drv, Feed(drv) as feed:
        assert state(drv) is DriverState.OFFLINE  # opening did not fail the gateway
        await feed.until(lambda: bool(feed.events("receiver-fault")), what="receiver-fault")
        await eventually(lambda: drv.health.counters["reopen_attempts"] >= 1, what="polling")
        async with BeaconEmulator(crew=1, seed=33, time_scale=20, link=link) as emu:
            await feed.until(lambda: len(feed.events("receiver-fault")) == 2, what="cleared")
            await feed.until(lambda: bool(feed.readings(f"{emu.beacon_ids[0]}/motion")))
            assert state(drv) is DriverState.ONLINE
            assert [e.state for e in feed.events("receiver-fault")] == [
                EventState.ACTIVE,
                EventState.CLEARED,
            ]


async def test_a_silent_receiver_is_a_fault_until_frames_return() -> None:
    async with BeaconEmulator(crew=1, seed=34, time_scale=1) as emu:
        (beacon,) = emu.beacon_ids
        emu.set_silent(beacon, True)  # out of range from the start: only status every 10 s
        async with open_driver(emu.path, silence_timeout=0.4) as drv, Feed(drv) as feed:
            await feed.until(lambda: bool(feed.events("receiver-fault")), what="silence")
            [fault] = feed.events("receiver-fault")
            assert fault.state is EventState.ACTIVE
            assert "no frame" in fault.data["error"]
            assert state(drv) is DriverState.DEGRADED
            assert drv.health.counters["silences"] == 1
            await asyncio.sleep(0.6)  # still silent: still one occurrence
            assert len(feed.events("receiver-fault")) == 1
            emu.set_silent(beacon, False)  # back in range: it says hello
            await feed.until(lambda: len(feed.events("receiver-fault")) == 2, what="cleared")
            cleared = feed.events("receiver-fault")[1]
            assert cleared.state is EventState.CLEARED and cleared.id == fault.id
            assert state(drv) is DriverState.ONLINE
            assert feed.events("beacon-joined")


async def drain(drv: BeaconSerialDriver) -> int:
    count = 0
    async for _ in drv.stream():
        count += 1
    return count


@pytest.mark.parametrize("plugged", [True, False])
async def test_closing_the_driver_ends_a_running_stream(tmp_path: Path, plugged: bool) -> None:
    link = tmp_path / "receiver"
    async with contextlib.AsyncExitStack() as stack:
        if plugged:
            await stack.enter_async_context(
                BeaconEmulator(crew=1, seed=35, time_scale=20, link=link)
            )
        # a long backoff: closing must not wait for it
        async with open_driver(str(link), reconnect_min=30.0, reconnect_max=60.0) as drv:
            task = asyncio.create_task(drain(drv))
            # plugged: readings flow; unplugged: the receiver-fault event, then the wait
            await eventually(lambda: drv.health.counters["items"] >= (3 if plugged else 1))
        async with asyncio.timeout(3.0):
            count = await task  # the stream ended by itself: no task left behind
        assert count == drv.health.counters["items"] >= 1
        assert state(drv) is DriverState.CLOSED
        if not plugged:  # it was waiting out the backoff after raising receiver-fault
            assert drv.health.counters["receiver_faults"] == 1
            assert drv.health.counters["reopen_attempts"] == 0
