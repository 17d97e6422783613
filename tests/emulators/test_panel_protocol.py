"""The panel emulator through the real protocol: pymodbus clients over TCP and over the pty.

Register numbers and bit positions are spelled out here from the domain reference (Notifier
MODBUS-GW: one word per point from 40001, Active = bit 11, fire = 10h...), not taken from
the emulator, so a wrong map fails these tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerRTU

from drivers.modbus_panel.profile import BlockKind, PointAddress, PointKind, load_profile
from emulators.panel.emulator import PanelEmulator

Client = AsyncModbusTcpClient | AsyncModbusSerialClient
DOCS_EXAMPLE = (Path(__file__).resolve().parents[2] / "docs" / "profiles.md").read_text()
TRANSPORTS = ["tcp", "rtu"]

# Notifier MODBUS-GW facts (docs/profiles.md, the domain reference)
ACK_BLOCK, PREALARM, TROUBLE, INACTIVE, ACTIVE, ENABLE, DISABLE, ACK_FIRE = range(15, 7, -1)
FIRE, NOT_PRESENT = 0x10, 0xFF
COMMAND_REGISTER, PANEL_STATUS = 49510 - 40001, 49500 - 40001
FIRE_BIT, SILENCED_BIT, DISABLEMENTS_BIT = 0, 8, 9


def bit(word: int, n: int) -> bool:
    return bool(word >> n & 1)


@contextlib.asynccontextmanager
async def connect(
    emu: PanelEmulator,
    transport: str,
    *,
    wait: float = 1.0,
    trace: Callable[[bool, bytes], bytes] | None = None,
) -> AsyncIterator[Client]:
    client: Client
    if transport == "tcp":
        assert emu.tcp_address is not None
        host, port = emu.tcp_address
        client = AsyncModbusTcpClient(host, port=port, timeout=wait, retries=0, trace_packet=trace)
    else:
        assert emu.rtu_path is not None
        client = AsyncModbusSerialClient(
            emu.rtu_path, baudrate=115200, timeout=wait, retries=0, trace_packet=trace
        )
    try:
        assert await client.connect()
        yield client
    finally:
        client.close()


async def read(
    client: Client, address: int, count: int = 1, unit: int = 1, fc: int = 3
) -> list[int]:
    if fc == 3:
        rr = await client.read_holding_registers(address, count=count, device_id=unit)
    else:
        rr = await client.read_input_registers(address, count=count, device_id=unit)
    assert not rr.isError(), rr
    return list(rr.registers)


async def write(client: Client, address: int, value: int, unit: int = 1) -> Any:
    return await client.write_register(address, value, device_id=unit)


@pytest.fixture
async def emu() -> AsyncIterator[PanelEmulator]:
    async with PanelEmulator(units=2, rtu=True, time_scale=0) as e:
        yield e


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_point_on_fire_reads_active_with_fire_code(
    emu: PanelEmulator, transport: str
) -> None:
    emu.set_point(1, 1, 3, alarm="fire")
    emu.set_point(2, 2, 4, kind="module", trouble=True)
    async with connect(emu, transport) as client:
        words = await read(client, 0, 25)  # loop 1 detectors 1..25 at 40001..40025
        fire = words[2]
        assert fire & 0xFF == FIRE
        assert bit(fire, ACTIVE)
        assert not bit(fire, INACTIVE)
        assert bit(fire, ENABLE)
        assert not bit(fire, DISABLE)
        normal = words[0]
        assert normal & 0xFF == 0
        assert bit(normal, INACTIVE)
        assert not bit(normal, ACTIVE)
        assert words[20] == NOT_PRESENT  # detector 21 is not fitted (20 per loop)
        # unit 2 is another panel: its loop 1 is quiet, loop 2 module 4 (40604) in trouble
        assert (await read(client, 2, unit=2))[0] & 0xFF == 0
        module = (await read(client, 40604 - 40001, unit=2))[0]
        assert bit(module, TROUBLE)
        assert not bit(module, ACTIVE)
        status = (await read(client, PANEL_STATUS))[0]
        assert bit(status, FIRE_BIT)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_unmapped_addresses_answer_exception_02(emu: PanelEmulator, transport: str) -> None:
    async with connect(emu, transport) as client:
        for address, count in ((159, 1), (150, 20), (8999, 1), (9100, 1), (9505, 5)):
            rr = await client.read_holding_registers(address, count=count, device_id=1)
            assert rr.isError(), (address, count)
            assert rr.exception_code == 2, (address, count, rr)
        rr = await client.read_input_registers(4000, count=1, device_id=1)
        assert rr.isError()
        assert rr.exception_code == 2
        rr = await client.write_register(PANEL_STATUS, 1, device_id=1)  # read-only
        assert rr.isError()
        assert rr.exception_code == 2
        rr = await client.write_register(COMMAND_REGISTER, 0x1234, device_id=1)
        assert rr.isError()
        assert rr.exception_code == 3
        # the mapped neighbours still read fine
        assert len(await read(client, 158, 1)) == 1
    assert emu.counters()["units"]["1"]["exceptions"] == 8


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_commands_by_register_writes(emu: PanelEmulator, transport: str) -> None:
    emu.set_point(1, 1, 3, alarm="fire")
    async with connect(emu, transport) as client:
        rr = await write(client, COMMAND_REGISTER, 0x0002)  # silence
        assert not rr.isError()
        assert rr.registers == [0x0002]
        assert bit((await read(client, PANEL_STATUS))[0], SILENCED_BIT)

        assert not (await write(client, 2, 0x0100)).isError()  # ack point 3
        assert bit((await read(client, 2))[0], ACK_FIRE)

        assert not (await write(client, 2, 0x0200)).isError()  # disable point 3
        word = (await read(client, 2))[0]
        assert bit(word, DISABLE)
        assert not bit(word, ENABLE)
        assert not bit(word, ACTIVE)
        assert bit((await read(client, PANEL_STATUS))[0], DISABLEMENTS_BIT)

        assert not (await write(client, 2, 0x0400)).isError()  # enable: the cause is still there
        word = (await read(client, 2))[0]
        assert bit(word, ENABLE)
        assert bit(word, ACTIVE)
        assert word & 0xFF == FIRE

        assert not (await write(client, COMMAND_REGISTER, 0x0001)).isError()  # reset
        assert (await read(client, 2))[0] & 0xFF == FIRE  # the cause persists: still in fire
        emu.set_point(1, 1, 3, alarm="none")  # smoke gone
        assert (await read(client, 2))[0] & 0xFF == FIRE  # latched until reset
        rr = await client.write_registers(COMMAND_REGISTER, [0x0001], device_id=1)  # FC16
        assert not rr.isError()
        word = (await read(client, 2))[0]
        assert word & 0xFF == 0
        assert bit(word, INACTIVE)
        status = (await read(client, PANEL_STATUS))[0]
        assert not bit(status, FIRE_BIT)
        assert not bit(status, SILENCED_BIT)
    assert emu.counters()["units"]["1"]["commands"] == 6


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_analog_values_in_input_registers(emu: PanelEmulator, transport: str) -> None:
    emu.set_analog(1, 1, 1, 2.5)  # smoke detector: obscuration x100 at 30001
    emu.set_analog(1, 1, 5, -10.0)  # every 5th is a heat detector: temperature x10 at 30010
    async with connect(emu, transport) as client:
        words = await read(client, 0, 10, fc=4)
        assert words[0] == 250
        assert words[1] == 0x8000
        assert words[8] == 0xFFFF
        assert words[9] == 0x10000 - 100
        loop2 = await read(client, 30401 - 30001, 2, fc=4)
        assert 10 <= loop2[0] <= 40  # clean air, about 0.2 %/m
    prof = load_profile("notifier-gw")
    assert prof.locate_analog(PointAddress(1, PointKind.DETECTOR, 5), "temperature").number == 30010


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_reading_every_block_decodes_the_panel_and_counts_a_status_cycle(
    emu: PanelEmulator, transport: str
) -> None:
    emu.set_point(1, 2, 7, alarm="fire")
    emu.set_point(1, 1, 2, kind="module", alarm="supervisory")
    emu.set_panel_flag(1, "mains_fail", True)
    prof = emu.profile
    async with connect(emu, transport) as client:
        points, panel, counters, analog = {}, None, {}, {}
        for block in prof.read_blocks(loops=2):
            words = await read(client, block.address, block.count, fc=block.function)
            decoded = prof.decode_block(block, words)
            points.update(decoded.points)
            panel = decoded.panel or panel
            counters.update(decoded.counters)
            analog.update(decoded.analog)
    model = emu.panel(1)
    for address, point in model.points.items():
        assert points[address] == point.status()
    assert points[PointAddress(1, PointKind.DETECTOR, 21)].present is False
    assert panel is not None
    assert panel.fire
    assert panel.supervisory
    assert panel.mains_fail
    assert panel.trouble
    assert not panel.silenced
    assert counters == {"fire": 1, "trouble": 1, "total": 3}
    assert analog[PointAddress(2, PointKind.DETECTOR, 5)]["temperature"] == 21.0
    snap = emu.counters()["units"]["1"]
    status_blocks = len(prof.read_blocks(loops=2, kind=BlockKind.STATUS))
    assert snap["status_cycles"] == 1
    assert snap["status_reads"] == status_blocks
    assert snap["reads"] == snap["requests"] == len(prof.read_blocks(loops=2))


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_fault_timeout_then_recovery(emu: PanelEmulator, transport: str) -> None:
    emu.set_fault(1, "timeout", count=1)
    async with connect(emu, transport, wait=0.5) as client:
        start = time.monotonic()
        with pytest.raises(ModbusException):
            await client.read_holding_registers(0, count=1, device_id=1)
        assert time.monotonic() - start >= 0.4  # the client waited for its timeout
        assert len(await read(client, 0, 2)) == 2  # only one request was swallowed
    assert emu.counters()["units"]["1"]["injected"] == {"timeout": 1}


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("code", [4, 6, 11])
async def test_fault_exception_code(emu: PanelEmulator, transport: str, code: int) -> None:
    emu.set_fault(2, "exception", code=code)
    async with connect(emu, transport) as client:
        for _ in range(2):
            rr = await client.read_holding_registers(0, count=1, device_id=2)
            assert rr.isError()
            assert rr.exception_code == code
        assert len(await read(client, 0, 1, unit=1)) == 1  # unit 1 is unaffected
        emu.clear_fault(2)
        assert len(await read(client, 0, 1, unit=2)) == 1
    assert emu.counters()["units"]["2"]["injected"] == {"exception": 2}


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_fault_delay(emu: PanelEmulator, transport: str) -> None:
    emu.set_fault(1, "delay", delay=0.4, count=2)
    async with connect(emu, transport, wait=2.0) as client:
        for _ in range(2):
            start = time.monotonic()
            assert len(await read(client, 0, 3)) == 3
            assert time.monotonic() - start >= 0.35
    assert emu.counters()["units"]["1"]["injected"] == {"delay": 2}


async def test_fault_crc_on_rtu(emu: PanelEmulator) -> None:
    received: list[bytes] = []

    def trace(sending: bool, data: bytes) -> bytes:
        if not sending:
            received.append(bytes(data))
        return data

    emu.set_fault(1, "crc", count=1)
    async with connect(emu, "rtu", wait=0.5, trace=trace) as client:
        with pytest.raises(ModbusException):
            await client.read_holding_registers(0, count=2, device_id=1)
        frame = received[-1]
        assert len(frame) == 1 + 1 + 1 + 4 + 2
        assert frame[:3] == bytes([1, 3, 4])
        good = FramerRTU.compute_CRC(frame[:-2]).to_bytes(2, "big")
        assert frame[-2:] != good  # the reply came, with a broken CRC
        assert len(await read(client, 0, 2)) == 2
    assert emu.counters()["units"]["1"]["injected"] == {"crc": 1}


async def test_fault_crc_leaves_tcp_replies_intact(emu: PanelEmulator) -> None:
    emu.set_fault(1, "crc")
    async with connect(emu, "tcp") as client:
        assert len(await read(client, 0, 2)) == 2  # TCP has no CRC to break
    assert emu.counters()["units"]["1"]["injected"] == {}


async def test_fault_drop_closes_the_tcp_connection(emu: PanelEmulator) -> None:
    emu.set_fault(1, "drop", count=1)
    async with connect(emu, "tcp", wait=1.0) as client:
        with pytest.raises(ModbusException):
            await client.read_holding_registers(0, count=1, device_id=1)
        assert emu.dropped == 1
        # the client connects again and is served
        deadline = time.monotonic() + 5.0
        while True:
            try:
                assert len(await read(client, 0, 1)) == 1
                break
            except ModbusException:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
        assert emu.drop_connections() == 1  # the control API drops it right away
    assert emu.counters()["tcp"]["dropped"] == 2


async def test_unknown_units(emu: PanelEmulator) -> None:
    async with connect(emu, "tcp") as client:  # a TCP gateway answers 0x0B
        rr = await client.read_holding_registers(0, count=1, device_id=9)
        assert rr.isError()
        assert rr.exception_code == 0x0B
    async with connect(emu, "rtu", wait=0.3) as client:  # on a line: another slave's
        with pytest.raises(ModbusException):
            await client.read_holding_registers(0, count=1, device_id=9)
        assert len(await read(client, 0, 1, unit=2)) == 1
    rtu = emu.counters()["rtu"]
    assert rtu["other_units"] == 1
    assert rtu["frames_out"] == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_gst_compact_profile(transport: str, tmp_path: Path) -> None:
    link = tmp_path / "panel-line"
    async with PanelEmulator(
        units=[3, 7], profile="gst-compact", rtu=True, link=link, time_scale=0
    ) as emu:
        assert emu.rtu_path == str(link)
        assert link.is_symlink()
        emu.set_point(7, 2, 9, alarm="fire")  # loop 2 detector 9: 40064, bits 1-0
        emu.set_point(7, 2, 10, trouble=True)  # bits 3-2
        emu.point_command(7, 2, 11, "disable")  # bits 5-4
        async with connect(emu, transport) as client:
            word = (await read(client, 40064 - 40001, unit=7))[0]
            assert word & 0b111111 == 0b11_10_01
            assert (await read(client, 40064 - 40001, unit=3))[0] == 0
            status = (await read(client, 0, unit=7))[0]
            assert bit(status, 0)
            assert bit(status, 2)
            assert bit(status, 9)
            assert not (await write(client, 40009 - 40001, 0x0002, unit=7)).isError()
            assert bit((await read(client, 0, unit=7))[0], 8)  # silenced
            rr = await client.read_holding_registers(40095 - 40001, count=1, device_id=7)
            assert rr.isError()
            assert rr.exception_code == 2
    assert not link.exists()


async def test_fire_drill_runs_on_the_clock_and_the_heartbeat_ticks() -> None:
    async with PanelEmulator(scenario="fire-drill", seed=1, time_scale=100) as emu:
        seen: set[str] = set()
        beats: list[int] = []
        async with connect(emu, "tcp") as client:
            deadline = time.monotonic() + 15.0
            while time.monotonic() < deadline and "reset" not in seen:
                status, beat, fires = await read(client, PANEL_STATUS, 3)
                beats.append(beat)
                if bit(status, FIRE_BIT):
                    seen.add("fire" if fires < 2 else "spread")
                elif "fire" in seen or "spread" in seen:
                    seen.add("reset")
                await asyncio.sleep(0.02)
    assert seen == {"fire", "spread", "reset"}
    assert beats == sorted(beats)
    assert beats[-1] - beats[0] >= 100


async def test_the_profile_example_in_the_docs_works_end_to_end(tmp_path: Path) -> None:
    example = DOCS_EXAMPLE.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "acme-mini.toml"
    path.write_text(example)
    async with PanelEmulator(profile=path, time_scale=0) as emu:  # layout fits the profile
        assert len(emu.panel(1).points) == 16 + 8
        emu.set_point(1, 1, 3, alarm="fire")
        async with connect(emu, "tcp") as client:
            assert (await read(client, 40103 - 40001))[0] == 0x0C10
            assert (await read(client, 40001 - 40001))[0] & 1  # fire present
            assert not (await write(client, 40010 - 40001, 0x0002)).isError()  # silence
            assert (await read(client, 0))[0] >> 8 & 1
            rr = await client.read_holding_registers(40117 - 40001, count=1, device_id=1)
            assert rr.isError()
            assert rr.exception_code == 2


async def test_same_seed_same_registers_over_the_wire() -> None:
    async def run(seed: int) -> tuple[list[list[int]], bool]:
        seen: list[list[int]] = []
        fire = False
        async with PanelEmulator(scenario="fire-drill", seed=seed, time_scale=0) as emu:
            blocks = emu.profile.read_blocks(loops=2)
            async with connect(emu, "tcp") as client:
                for _ in range(8):
                    emu.advance(10)
                    for b in blocks:
                        seen.append(await read(client, b.address, b.count, fc=b.function))
                    fire = fire or bit((await read(client, PANEL_STATUS))[0], FIRE_BIT)
        return seen, fire

    (first, fire), (again, _), (other, _) = await run(5), await run(5), await run(6)
    assert first == again
    assert first != other
    assert fire  # the drill did happen within 80 emulated seconds
