"""The panel link's own FC03/FC04 reply classes (the words copied into an ``array('H')``
in one call, a short ``str()``): the same words as pymodbus' stock decoding, from the real
emulator, and the same refusal of a reply whose byte count does not fit."""

from __future__ import annotations

from array import array

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException

from drivers.modbus_panel.config import TcpEndpoint
from drivers.modbus_panel.transport import TcpLink, _HoldingRegisters, _InputRegisters
from emulators.panel.emulator import PanelEmulator


async def test_words_match_pymodbus_own_decoding() -> None:
    async with PanelEmulator(units=1, time_scale=0) as emu:
        assert emu.tcp_address is not None
        host, port = emu.tcp_address
        emu.set_point(1, 1, 3, alarm="fire")
        stock = AsyncModbusTcpClient(host, port=port, timeout=2, retries=0)
        link = TcpLink(TcpEndpoint(host, port), 2.0)
        try:
            assert await stock.connect()
            assert await link.connect()
            got: dict[tuple[int, int], array[int]] = {}
            for function, address, count in ((3, 0, 125), (3, 9499, 5), (4, 0, 125), (4, 1, 7)):
                if function == 3:
                    want = await stock.read_holding_registers(address, count=count, device_id=1)
                else:
                    want = await stock.read_input_registers(address, count=count, device_id=1)
                words = await link.read(function, address, count, 1, 2.0)
                assert type(words) is array and words.typecode == "H" and len(words) == count
                assert words.tolist() == list(want.registers)
                got[(function, address)] = words
            # real data: detector 3 in fire (event code 10h), detector 21 not installed (FFh)
            assert got[(3, 0)][2] & 0xFF == 0x10 and got[(3, 0)][20] & 0xFF == 0xFF
        finally:
            stock.close()
            link.close()


@pytest.mark.parametrize("cls", [_HoldingRegisters, _InputRegisters])
def test_decode_and_a_short_str(cls: type[_HoldingRegisters]) -> None:
    pdu = cls()
    pdu.decode(bytes([6, 0x12, 0x34, 0xFF, 0xFF, 0x00, 0x07]))
    assert pdu.registers == array("H", [0x1234, 0xFFFF, 7])  # big-endian on the wire
    text = str(pdu)
    assert text.startswith(cls.__name__) and "registers=<3>" in text
    assert "4660" not in text  # the words themselves are not formatted


@pytest.mark.parametrize(
    "data",
    [
        bytes([4, 0x00, 0x01, 0x00]),  # says 4 bytes, holds 3
        bytes([3, 0x00, 0x01, 0x00, 0x00]),  # an odd byte count is no list of words
        bytes([200]),
    ],
)
def test_a_byte_count_that_does_not_fit_is_refused(data: bytes) -> None:
    with pytest.raises(ModbusIOException, match="byte_count"):
        _HoldingRegisters().decode(data)
