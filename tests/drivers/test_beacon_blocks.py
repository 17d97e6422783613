"""Telemetry as one ReadingBlock per frame (the beacon driver's setting): the same readings,
in the same order, as the Reading-per-value output; one layout per beacon and sensor set,
reused frame after frame; the driver's stream and counters unchanged for its users."""

from __future__ import annotations

from collections import Counter

from drivers.beacon_serial.codec import Telemetry, TelemetryFlags, decode, encode
from drivers.beacon_serial.tracker import CrewTracker
from edgesdk.model import Event, RawItem, Reading, ReadingBlock, ReadingLayout
from emulators.beacons.emulator import BeaconEmulator
from tests.drivers.cases_beacon_serial import open_driver, tele
from tests.drivers.feed import Feed

B = 4242
NAMES = ("heart_rate", "skin_temp", "ambient_temp", "motion", "scba_pressure", "battery", "rssi")


def feed(tracker: CrewTracker, message: Telemetry, seq: int) -> list[RawItem]:
    frame = decode(encode(message, seq, B))
    return tracker.feed(frame, 10.0 + seq, 1.7e9 + seq).items


def events(items: list[RawItem]) -> list[tuple[str, str, dict[str, object]]]:
    return [(i.kind, i.state.value, dict(i.data)) for i in items if isinstance(i, Event)]


def shape(items: list[RawItem]) -> list[str]:
    """The order of an output: readings (one run of them) and events."""
    out: list[str] = []
    for i in items:
        kind = "event" if isinstance(i, Event) else "readings"
        if not out or kind == "event" or out[-1] != kind:
            out.append(kind)
    return out


def test_a_block_holds_exactly_the_readings_of_the_frame() -> None:
    plain = CrewTracker("crew", Counter())
    blocks = CrewTracker("crew", Counter(), blocks=True)
    shapes = [
        tele(),  # the first frame also joins the beacon (an event before the readings)
        tele(heart_rate=None),  # no sensor contact: no heart-rate reading
        tele(scba_pressure=None),  # no cylinder
        tele(heart_rate=None, scba_pressure=None, flags=TelemetryFlags.DISTRESS),
    ]
    layouts: list[ReadingLayout] = []
    for seq, message in enumerate(shapes):
        want, got = feed(plain, message, seq), feed(blocks, message, seq)
        [block] = [i for i in got if isinstance(i, ReadingBlock)]
        assert block.readings() == [i for i in want if isinstance(i, Reading)]
        assert events(got) == events(want)
        assert shape(got) == shape(want)  # after a join event, before the flag's event
        layouts.append(block.layout)
    assert [len(layout) for layout in layouts] == [7, 6, 6, 5]
    assert len({id(layout) for layout in layouts}) == 4  # one per set of sensors
    # the next frame of a known shape reuses its layout (names checked once)
    again, cleared = feed(blocks, tele(heart_rate=120), 9)  # the distress flag went off
    assert isinstance(cleared, Event) and cleared.kind == "distress"
    assert isinstance(again, ReadingBlock) and again.layout is layouts[0]
    assert again.layout.names == tuple(f"{B}/{n}" for n in NAMES)
    assert again.layout.units == ("1/min", "Cel", "Cel", "mg", "bar", "%", "dBm")
    assert again.values[0] == 120 and again.time == 1.7e9 + 9


async def test_the_driver_yields_blocks_to_the_gateway_and_readings_to_stream_users() -> None:
    async with BeaconEmulator(crew=3, seed=1, time_scale=10.0) as emu:
        async with open_driver(emu.path) as drv, Feed(drv) as items:
            await items.until(lambda: drv.health.counters["frames_telemetry"] >= 6)
            readings = [i for i in items.items if isinstance(i, Reading)]
            assert readings and all(r.device == drv.instance for r in readings)
            # counted per value, as before: readings + events == items
            await items.until(lambda: len(items.items) == drv.health.counters["items"])
            counters = drv.health.counters
            assert counters["readings"] + counters["events"] == counters["items"]
        async with open_driver(emu.path) as drv:
            got: list[RawItem] = []
            async for item in drv.stream_blocks():  # the gateway's path
                got.append(item)
                if sum(isinstance(i, ReadingBlock) for i in got) >= 3 or len(got) > 100:
                    break
            block = next(i for i in got if isinstance(i, ReadingBlock))
            assert block.device == drv.instance and len(block) >= 5
            assert drv.health.counters["readings"] >= 3 * 5
