"""``modbus-poll``: registers/s the panel driver reads from emulated panels over TCP, beside
the emulator's own limit (the same emulator hammered by plain pymodbus clients issuing
back-to-back 125-register reads). The emulator runs in its own process.
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import time
from typing import Any

from bench.common import ROOT, result

SECONDS = 8.0
CONNECTIONS = 4
STATUS_INTERVAL = 0.1
ANALOG_INTERVAL = 0.5
LOOPS = 10
# Enough driver instances that their schedules together offer this many times what the
# raw clients got from the emulator, so the driver figure is a limit and not the schedule.
# (With a fixed 12 instances the driver figure was exactly their schedule: 470k/s.)
OVERSUBSCRIBE = 1.25
MIN_DRIVERS = 4


def _start_emulator() -> tuple[subprocess.Popen[bytes], int]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgesdk",
            "emulate",
            "panel",
            "--port",
            "0",
            "--no-rtu",
            "--loops",
            str(LOOPS),
            "--scenario",
            "quiet",
        ],
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    info = json.loads(proc.stdout.readline())
    return proc, int(info["tcp"]["port"])


async def _raw_clients(port: int) -> float:
    from pymodbus.client import AsyncModbusTcpClient

    total = 0

    async def worker() -> None:
        nonlocal total
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
        await client.connect()
        deadline = time.perf_counter() + SECONDS
        try:
            while time.perf_counter() < deadline:
                rr = await client.read_holding_registers(0, count=125, device_id=1)
                if not rr.isError():
                    total += len(rr.registers)
        finally:
            client.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
    return total / (time.perf_counter() - t0)


def offered_per_driver() -> float:
    """Registers per second one driver instance's schedule asks for."""
    from drivers.modbus_panel.profile import BlockKind, load_profile

    profile = load_profile("notifier-gw")
    status = sum(b.count for b in profile.read_blocks(kind=BlockKind.STATUS, loops=LOOPS))
    analog = sum(b.count for b in profile.read_blocks(kind=BlockKind.ANALOG, loops=LOOPS))
    return status / STATUS_INTERVAL + analog / ANALOG_INTERVAL


async def _drivers(port: int, count: int) -> dict[str, float]:
    from edgesdk import driver

    drivers = [
        driver.create(
            "modbus-panel",
            {
                "url": f"tcp://127.0.0.1:{port}",
                "profile": "notifier-gw",
                "loops": LOOPS,
                "status_interval": STATUS_INTERVAL,
                "analog_interval": ANALOG_INTERVAL,
            },
            instance=f"p{i}",
        )
        for i in range(count)
    ]

    async def drain(d: Any) -> None:
        async with d:
            async for _ in d.stream():
                pass

    tasks = [asyncio.create_task(drain(d)) for d in drivers]
    await asyncio.sleep(2.0)
    r0 = sum(d.health.counters.get("registers", 0) for d in drivers)
    c0 = sum(d.health.counters.get("status_cycles", 0) for d in drivers)
    t0 = time.perf_counter()
    await asyncio.sleep(SECONDS)
    r1 = sum(d.health.counters.get("registers", 0) for d in drivers)
    c1 = sum(d.health.counters.get("status_cycles", 0) for d in drivers)
    dt = time.perf_counter() - t0
    over = sum(d.health.counters.get("status_overruns", 0) for d in drivers)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "registers_per_s": (r1 - r0) / dt,
        "status_polls_per_s": (c1 - c0) / dt,
        "status_overruns": over,
    }


def main() -> dict[str, Any]:
    proc, port = _start_emulator()
    try:
        limit = asyncio.run(_raw_clients(port))
        per_driver = offered_per_driver()
        count = max(MIN_DRIVERS, math.ceil(OVERSUBSCRIBE * limit / per_driver))
        drv = asyncio.run(_drivers(port, count))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return result(
        "modbus-poll",
        {
            "emulator_limit_registers_per_s": round(limit),
            "driver_registers_per_s": round(drv["registers_per_s"]),
            "driver_fraction_of_limit": round(drv["registers_per_s"] / limit, 3),
            "driver_status_polls_per_s": round(drv["status_polls_per_s"], 1),
            "driver_status_overruns": drv["status_overruns"],
            "driver_offered_registers_per_s": round(count * per_driver),
        },
        {
            "connections": CONNECTIONS,
            "drivers": count,
            "profile": f"notifier-gw, {LOOPS} loops",
            "status_interval_s": STATUS_INTERVAL,
            "analog_interval_s": ANALOG_INTERVAL,
            "seconds": SECONDS,
            "transport": "Modbus TCP, loopback",
        },
        {
            "driver_registers_per_s": "as close to emulator_limit_registers_per_s as the protocol "
            "allows"
        },
    )
