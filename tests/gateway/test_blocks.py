"""Reading blocks through the gateway: cut into batches exactly, seen by the rules as their
readings would be, delivered signed as the readings they stand for; and backpressure from
a lagging uplink to the drivers (alarms never held back)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgesdk.model import Event, EventState, Reading, ReadingBlock, ReadingLayout, Severity
from edgesdk.verify import Verifier
from gateway import app as gwapp
from gateway import config as gwconfig
from gateway.app import Gateway, chunk_readings
from gateway.config import RulesConfig
from gateway.rules import RuleEngine
from gateway.store import Lane
from tests.gateway.gwkit import ScriptConfig, ScriptDriver, Subscriber, write_config
from tests.pki import TestPKI
from tests.support import Mosquitto

_LAYOUTS = [ReadingLayout("dev", [f"p{i:03d}" for i in range(n)]) for n in (1, 3, 7, 50)]


def _flat(items: list[Reading | ReadingBlock]) -> list[Reading]:
    return [r for x in items for r in (x if isinstance(x, ReadingBlock) else [x])]


def _item(spec: tuple[int, int]) -> Reading | ReadingBlock:
    kind, n = spec
    if kind == 0:
        return Reading("dev", f"loose{n}", float(n), None, 1.0 + n)
    layout = _LAYOUTS[kind - 1]
    return ReadingBlock(layout, [float(n * 100 + i) for i in range(len(layout))], 2.0 + n)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, len(_LAYOUTS)), st.integers(0, 99)), max_size=40),
    st.integers(1, 60),
)
def test_chunks_hold_every_reading_in_order_and_never_more_than_the_size(
    specs: list[tuple[int, int]], size: int
) -> None:
    items = [_item(s) for s in specs]
    chunks = chunk_readings(items, size)
    counts = [len(_flat(c)) for c in chunks]
    assert _flat([x for c in chunks for x in c]) == _flat(items)
    assert all(0 < n <= size for n in counts)
    assert all(n == size for n in counts[:-1])  # only the last batch is short


def test_feed_block_gives_the_events_feed_gives_for_each_reading() -> None:
    # beacon 7 stops moving (a rule reads it) amid values no rule reads
    names = ["7/motion", "7/heart_rate", "zone/smoke", "7/scba_pressure", "other"]
    layout = ReadingLayout("rx", names)
    one, many = RuleEngine(RulesConfig()), RuleEngine(RulesConfig())
    got_one: list[Event] = []
    got_many: list[Event] = []
    for step in range(70):  # 35 s in 0.5 s steps: past the 30 s man-down alarm
        t = 1000.0 + step * 0.5
        values = [0, 190 if step > 60 else 80, 0.1, 150.0, 1]
        block = ReadingBlock(layout, values, t)
        for reading in block:
            got_one += one.feed("rx", reading, t)
        got_many += many.feed_block("rx", block, t)
        got_one += one.tick(t)
        got_many += many.tick(t)

    def key(e: Event) -> tuple[object, ...]:
        data = {k: v for k, v in e.data.items() if k not in ("prealarm", "alarm")}  # ids
        return (e.kind, e.severity, e.state, e.source, e.time, data)

    assert [key(e) for e in got_many] == [key(e) for e in got_one]
    assert "man-down" in {e.kind for e in got_many}


def _pressured(drv: ScriptDriver) -> bool:
    return drv.under_pressure


async def test_blocks_arrive_signed_as_their_readings_cut_at_the_batch_size(
    tmp_path: Path, pki: TestPKI, tls_broker: Mosquitto
) -> None:
    cfg = gwconfig.load(write_config(tmp_path, pki, tls_broker.port))  # 50 per batch
    drv = ScriptDriver(ScriptConfig(), instance="panel1")
    gw = Gateway(cfg, drivers={"panel1": drv})
    layout = ReadingLayout("panel1", [f"u1/l1/d{i:03d}/smoke" for i in range(125)], ["%/m"] * 125)
    sent: list[Reading] = []
    stop = asyncio.Event()
    verifier = Verifier.from_cert_files([pki.dir / "gw1-sign.crt"])
    async with Subscriber(pki, tls_broker.port, verifier) as sub:
        task = asyncio.create_task(gw.run(stop))
        for k in range(6):
            block = ReadingBlock(layout, [round(k + i / 1000, 3) for i in range(125)], 1.7e9 + k)
            drv.emit(block)
            sent += list(block)
            loose = Reading("panel1", "u1/heartbeat", k, None, 1.7e9 + k)
            drv.emit(loose)
            sent.append(loose)
        await sub.wait_for(lambda: len(sub.readings()) >= len(sent))
        status = await gw.status()
        stop.set()
        await asyncio.wait_for(task, 5)
    assert sub.invalid == [] and sub.anomalies == [] and sub.tracker.finish() == []
    assert sub.readings() == sent  # same names, units, values and times, in order
    sizes = [len(r.batch.readings) for r in sub.received if r.batch.stream == "telemetry"]
    assert max(sizes) <= 50 and sum(sizes) == 756
    assert status["gateway"]["readings_in"] == 756
    assert drv.health.counters["items"] == 756  # a block counts its values


async def test_a_lagging_uplink_puts_the_drivers_under_pressure_and_alarms_still_go(
    tmp_path: Path, pki: TestPKI, tls_broker: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gwapp, "PRESSURE_ON", 20)
    monkeypatch.setattr(gwapp, "PRESSURE_OFF", 2)
    cfg = gwconfig.load(write_config(tmp_path, pki, tls_broker.port))
    drv = ScriptDriver(ScriptConfig(), instance="panel1")
    gw = Gateway(cfg, drivers={"panel1": drv})
    layout = ReadingLayout("panel1", [f"p{i:03d}" for i in range(50)])
    stop = asyncio.Event()
    verifier = Verifier.from_cert_files([pki.dir / "gw1-sign.crt"])
    assert tls_broker.proc is not None
    async with Subscriber(pki, tls_broker.port, verifier) as sub:
        task = asyncio.create_task(gw.run(stop))
        await asyncio.wait_for(gw.ready.wait(), 10)
        # connected and publishing from memory (caught up with the store)
        await sub.wait_for(lambda: gw.uplink.unsent(Lane.TELEMETRY) is not None)
        os.kill(tls_broker.proc.pid, signal.SIGSTOP)  # connected, but no PUBACK comes
        try:
            for k in range(200):  # 200 batches of 50: far past the 32-deep window + 20
                drv.emit(ReadingBlock(layout, [float(k)] * 50, 1.7e9 + k))
            await sub.wait_for(lambda: gw.pressure, timeout=10)
            assert _pressured(drv)
            drv.emit(Event("fire", Severity.FIRE, EventState.ACTIVE, "panel1"))
            await asyncio.sleep(0.3)
        finally:
            os.kill(tls_broker.proc.pid, signal.SIGCONT)
        await sub.wait_for(lambda: not gw.pressure, timeout=20)
        assert not _pressured(drv)
        await sub.wait_for(lambda: len(sub.readings()) >= 10_000 and sub.events("fire"), 20)
        status = await gw.status()
        stop.set()
        await asyncio.wait_for(task, 5)
    assert status["gateway"]["pressure_episodes"] == 1 and not status["gateway"]["pressure"]
    assert sub.invalid == [] and sub.anomalies == []
    # the alarm sealed while the telemetry waited is delivered before that telemetry
    order = [r.batch.stream for r in sub.received if r.batch.stream != "state"]
    fire_at = order.index("alarm")
    assert order[fire_at:].count("telemetry") > 0
