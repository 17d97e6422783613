"""The driver base class and registry, exercised with a small in-process driver."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from edgesdk import driver
from edgesdk.config import Field
from edgesdk.errors import (
    CommandError,
    ConfigError,
    ConnectionLostError,
    DriverUnavailableError,
    EdgeError,
)
from edgesdk.model import (
    Event,
    EventState,
    Item,
    RawItem,
    Reading,
    ReadingBlock,
    ReadingLayout,
    Severity,
    Value,
)


class CounterConfig(driver.DriverConfig):
    count: int = Field(default=3, ge=1, le=100, description="how many readings to yield (1-100)")
    device: str = "counter"


class CounterDriver(driver.Driver[CounterConfig]):
    name = "test-counter"
    config_type = CounterConfig

    def __init__(self, config: CounterConfig, *, instance: str | None = None) -> None:
        super().__init__(config, instance=instance)
        self.opened = False
        self.written: list[tuple[str, Value]] = []
        self.confirmed: list[Item] = []

    async def _open(self) -> None:
        self.opened = True

    async def _close(self) -> None:
        self.opened = False

    async def _stream(self) -> AsyncIterator[Item]:
        for i in range(self.config.count):
            await asyncio.sleep(0)
            yield Reading(self.config.device, "n", i)

    async def _write(self, point: str, value: Value) -> None:
        if point != "reset":
            raise CommandError(f"unknown point {point!r}")
        self.written.append((point, value))

    async def _confirm(self, item: Item) -> None:
        self.confirmed.append(item)


async def test_life_cycle_stream_write_health() -> None:
    d = CounterDriver.from_options({"count": 2}, instance="c1")
    assert d.health.state is driver.DriverState.CLOSED
    with pytest.raises(ConnectionLostError):
        await d.write("reset", True)
    async with d:
        assert d.opened and d.health.state is driver.DriverState.ONLINE
        items = [i async for i in d.stream()]
        assert [i.value for i in items if isinstance(i, Reading)] == [0, 1]
        await d.write("reset", True)
        with pytest.raises(CommandError):
            await d.write("explode", True)
        await d.confirm(items[0])
    assert not d.opened and d.health.state is driver.DriverState.CLOSED
    h = d.health
    assert h.instance == "c1" and h.driver == "test-counter"
    assert h.counters["items"] == 2
    assert h.counters["commands"] == 2 and h.counters["command_errors"] == 1
    assert h.last_error is not None and "explode" in h.last_error
    assert d.written == [("reset", True)] and d.confirmed == [items[0]]


def test_config_errors_name_file_key_and_fix() -> None:
    with pytest.raises(ConfigError) as info:
        CounterDriver.from_options({"count": 0}, file="gw.toml", prefix="devices.c1")
    err = info.value
    assert err.file == "gw.toml" and err.key == "devices.c1.count"
    assert "1-100" in str(err) and "got 0" in str(err)
    with pytest.raises(ConfigError) as info:
        CounterDriver.from_options({"cuont": 2}, file="gw.toml", prefix="devices.c1")
    assert info.value.key == "devices.c1.cuont"
    assert "count" in (info.value.fix or "") and "device" in (info.value.fix or "")
    assert isinstance(info.value, EdgeError)


def test_registry_load_register_and_unavailable() -> None:
    with pytest.raises(DriverUnavailableError, match="no driver named 'nope'"):
        driver.load("nope")
    driver.register("test-counter", CounterDriver)
    try:
        assert driver.load("test-counter") is CounterDriver
        assert "test-counter" in driver.available()
        d = driver.create("test-counter", {"count": 1}, instance="x")
        assert isinstance(d, CounterDriver) and d.instance == "x"
    finally:
        driver.unregister("test-counter")
    assert "test-counter" not in driver.available()
    # the bundled drivers are declared as entry points
    assert {"modbus-panel", "beacon-serial", "camera-mqtt"} <= set(driver.available())


async def test_open_failure_leaves_driver_closed() -> None:
    class Broken(CounterDriver):
        async def _open(self) -> None:
            raise ConnectionLostError("no such port")

    d = Broken(CounterConfig())
    with pytest.raises(ConnectionLostError):
        async with d:
            pass
    assert d.health.state is driver.DriverState.CLOSED
    assert d.health.last_error == "ConnectionLostError: no such port"


async def test_probe_returns_health_or_times_out() -> None:
    d = CounterDriver(CounterConfig(count=1), instance="p")
    health = await d.probe(wait=2)
    assert health.counters["items"] == 1 and not d.opened

    class Silent(CounterDriver):
        async def _stream(self) -> AsyncIterator[Item]:
            await asyncio.sleep(10)
            yield Reading("x", "y", 1)

    from edgesdk.errors import DeviceTimeoutError

    with pytest.raises(DeviceTimeoutError, match=r"no data within 0\.2s"):
        await Silent(CounterConfig(), instance="s").probe(wait=0.2)

    class OnlyTrouble(CounterDriver):
        async def _stream(self) -> AsyncIterator[Item]:
            yield Event("device-offline", Severity.TROUBLE, EventState.ACTIVE, "t", data={"u": 1})
            await asyncio.sleep(10)

    with pytest.raises(DeviceTimeoutError, match="trouble: device-offline"):
        await OnlyTrouble(CounterConfig(), instance="t").probe(wait=0.3)


class BlockDriver(driver.Driver[CounterConfig]):
    """Yields a reading, a block of three, an event."""

    name = "test-block"
    config_type = CounterConfig

    async def _open(self) -> None:
        pass

    async def _close(self) -> None:
        pass

    async def _stream(self) -> AsyncIterator[RawItem]:
        layout = ReadingLayout("dev", ["a", "b", "c"], ["Cel", None, "%"])
        yield Reading("dev", "first", 0, None, 1.0)
        yield ReadingBlock(layout, [1.5, 2, "x"], 2.0)
        yield Event("fire", Severity.FIRE, EventState.ACTIVE, "dev", 3.0)


async def test_stream_flattens_blocks_and_stream_blocks_keeps_them_whole() -> None:
    d = BlockDriver.from_options({}, instance="b1")
    async with d:
        flat = [i async for i in d.stream()]
        assert d.health.counters["items"] == 5  # a block counts its values
        whole = [i async for i in d.stream_blocks()]
        assert d.health.counters["items"] == 10
    assert [type(i).__name__ for i in flat] == ["Reading"] * 4 + ["Event"]
    assert [(r.name, r.value, r.unit, r.time) for r in flat if isinstance(r, Reading)] == [
        ("first", 0, None, 1.0),
        ("a", 1.5, "Cel", 2.0),
        ("b", 2, None, 2.0),
        ("c", "x", "%", 2.0),
    ]
    assert [type(i).__name__ for i in whole] == ["Reading", "ReadingBlock", "Event"]
    assert not d.under_pressure
    d.set_pressure(True)
    assert d.under_pressure
