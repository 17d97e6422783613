"""One conformance suite over every bundled driver, each against its emulated twin.

Open/close, typed items from ``stream()``, survival of an emulator restart, typed errors,
health counters that move, and no leaked tasks (threads and file descriptors are checked
by the autouse leak guard in tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
from collections.abc import AsyncIterator
from typing import Any

import pytest

import tests.drivers as pkg
from edgesdk import driver
from edgesdk.errors import ConfigError, EdgeError
from edgesdk.model import Event, EventKind, Reading
from tests.drivers.conformance import Case

BUNDLED = ["modbus-panel", "beacon-serial", "camera-mqtt"]


def _cases() -> dict[str, Case]:
    out: dict[str, Case] = {}
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("cases_"):
            mod = importlib.import_module(f"tests.drivers.{info.name}")
            case: Case = mod.CASE
            out[case.driver] = case
    return out


CASES = _cases()
KNOWN_KINDS = {k.value for k in EventKind}


def test_every_bundled_driver_has_a_case() -> None:
    assert set(BUNDLED) <= set(driver.available())
    assert sorted(CASES) == sorted(BUNDLED)


async def _items(stream: AsyncIterator[Any], n: int, within: float) -> list[Any]:
    out: list[Any] = []
    async with asyncio.timeout(within):
        async for item in stream:
            out.append(item)
            if len(out) >= n:
                break
    return out


def _check_item(item: Any) -> None:
    assert isinstance(item, Reading | Event), f"not a Reading or Event: {item!r}"
    if isinstance(item, Event):
        assert item.kind in KNOWN_KINDS, f"undocumented event kind {item.kind!r}"


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> Case:
    return CASES[request.param]


async def test_open_stream_close(case: Case) -> None:
    tasks_before = asyncio.all_tasks()
    async with case.twin() as twin:
        drv = driver.create(case.driver, twin.options, instance="dut")
        assert drv.health.state is driver.DriverState.CLOSED
        async with drv:
            assert drv.is_open
            stream = drv.stream()
            await twin.stimulate()
            items = await _items(stream, 3, within=15)
            await stream.aclose()
            for item in items:
                _check_item(item)
            assert drv.health.counters["items"] >= 3
        assert drv.health.state is driver.DriverState.CLOSED
    await asyncio.sleep(0.1)
    leaked = [t for t in asyncio.all_tasks() - tasks_before if not t.done()]
    assert leaked == [asyncio.current_task()] or leaked == [], f"leaked tasks: {leaked}"


async def test_survives_emulator_restart(case: Case) -> None:
    async with case.twin() as twin:
        drv = driver.create(case.driver, twin.options, instance="dut")
        async with drv:
            stream = drv.stream()
            await twin.stimulate()
            await _items(stream, 1, within=15)
            await twin.restart()
            await twin.stimulate()
            # items keep coming after the restart, from the same stream object
            after = await _items(stream, 2, within=30)
            await stream.aclose()
            for item in after:
                _check_item(item)
            assert drv.is_open


async def test_typed_errors(case: Case) -> None:
    for bad in case.bad_options:
        with pytest.raises(ConfigError):
            driver.create(case.driver, bad, instance="dut")
    async with case.twin() as twin:
        drv = driver.create(case.driver, twin.options, instance="dut")
        async with drv:
            point, value = twin.bad_command
            with pytest.raises(EdgeError):
                await drv.write(point, value)
            assert drv.health.counters["command_errors"] == 1
            assert drv.health.last_error is not None
