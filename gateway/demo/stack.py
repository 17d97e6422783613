"""The whole stack in one process, on emulators: what ``edgectl demo`` runs.

An embedded MQTT broker (or ``--broker URL``), a throw-away site CA and gateway identity
made with the provisioning library, a fire panel running ``fire-drill``, a crew of four
firefighters where one goes down, cameras seeing smoke in the lobby, the gateway, and a
verifying consumer that trusts only the site CA (it learns the gateway's key from the
signed birth message).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit

from edgesdk.consumer import Consumer, KeyLearned, Rejected, SiteTrust, Verified
from edgesdk.model import Event, EventState, Reading, Severity

__all__ = ["EXPECTED", "DemoState", "Stack"]

SITE, GW = "demo", "gw1"
# What must arrive, verified, for the demo to pass: (kind, severity).
EXPECTED: tuple[tuple[str, Severity], ...] = (
    ("fire", Severity.FIRE),
    ("man-down", Severity.PREALARM),
    ("man-down", Severity.ALARM),
    ("camera-smoke", Severity.PREALARM),
)


@dataclass
class DemoState:
    """Everything the dashboard and the summary show, built from verified batches only."""

    started: float = field(default_factory=time.time)
    batches_verified: int = 0
    readings_verified: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    keys_learned: int = 0
    active: dict[str, Event] = field(default_factory=dict)  # occurrence id -> latest event
    seen: dict[tuple[str, str], float] = field(default_factory=dict)  # (kind, sev) -> first t
    vitals: dict[str, dict[str, float]] = field(default_factory=dict)  # beacon -> name -> value
    zones: dict[str, str] = field(default_factory=dict)  # "u1 zone 3" -> worst active kind
    cameras: dict[str, str] = field(default_factory=dict)  # camera -> "smoke 0.82"
    log: list[str] = field(default_factory=list)  # the last lines, for the dashboard
    unprinted: list[str] = field(default_factory=list)  # for plain (non-terminal) output

    def take(self, outcome: Any) -> None:
        if isinstance(outcome, KeyLearned):
            self.keys_learned += 1
            self._note(
                f"learned signing key {outcome.kid.hex()[:12]} of {outcome.site}/"
                f"{outcome.gw} (chains to the site CA)"
            )
        elif isinstance(outcome, Rejected):
            self.rejected[outcome.reason] = self.rejected.get(outcome.reason, 0) + 1
            self._note(f"REJECTED {outcome.reason}: {outcome.detail}")
        elif isinstance(outcome, Verified):
            b = outcome.batch
            if b.stream == "state":
                return
            self.batches_verified += 1
            self.readings_verified += len(b.readings)
            for r in b.readings:
                self._reading(r)
            for e in b.events:
                self._event(e)

    def _note(self, text: str) -> None:
        line = f"{time.time() - self.started:5.1f}s {text}"
        self.log.append(line)
        self.unprinted.append(line)
        del self.log[:-8]

    def _reading(self, r: Reading) -> None:
        if r.device != "crew" or "/" not in r.name:
            return
        beacon, name = r.name.split("/", 1)
        if beacon.isdigit() and isinstance(r.value, int | float):
            self.vitals.setdefault(beacon, {})[name] = float(r.value)

    def _event(self, e: Event) -> None:
        key = (e.kind, e.severity.value)
        if e.state is EventState.ACTIVE:
            self.active[e.id] = e
            if key not in self.seen:
                self.seen[key] = time.time()
                self._note(f"{e.severity.value.upper()} {e.kind} from {e.source} {_brief(e.data)}")
        else:
            self.active.pop(e.id, None)
        if e.kind in ("camera-smoke", "camera-fire") and "camera" in e.data:
            label = e.kind.removeprefix("camera-")
            score = e.data.get("score")
            self.cameras[str(e.data["camera"])] = (
                (f"{label} {score:.2f}" if isinstance(score, float) else label)
                if e.state is EventState.ACTIVE
                else "clear"
            )
        zone = e.data.get("zone")
        if e.source == "panel1" and zone is not None and e.state is EventState.ACTIVE:
            self.zones[f"unit {e.data.get('unit', 1)} zone {zone}"] = e.kind

    def missing(self) -> list[str]:
        return [f"{k} ({s.value})" for k, s in EXPECTED if (k, s.value) not in self.seen]


def _brief(data: Any) -> str:
    keep = {
        k: v
        for k, v in dict(data).items()
        if k in ("zone", "beacon", "camera", "score", "unit", "point")
    }
    return " ".join(f"{k}={v}" for k, v in keep.items())


class Stack:
    """Builds and runs every piece; ``async with Stack(...) as s: await s.run(duration)``."""

    def __init__(
        self, *, broker: str | None = None, workdir: Path | None = None, seed: int = 1
    ) -> None:
        self.broker_url = broker
        self.seed = seed
        self.dir = workdir or Path(tempfile.mkdtemp(prefix="edgesdk-demo-"))
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.state = DemoState()
        self.gateway: Any = None
        self._stack = contextlib.AsyncExitStack()
        self.consumer: Consumer | None = None

    async def __aenter__(self) -> Stack:
        await self._stack.__aenter__()
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def _start(self) -> None:
        from emulators.beacons.emulator import BeaconEmulator
        from emulators.broker.embedded import EmbeddedBroker
        from emulators.cameras.emulator import CameraEmulator
        from emulators.panel.emulator import PanelEmulator

        if self.broker_url is None:
            broker = await self._stack.enter_async_context(EmbeddedBroker("127.0.0.1", 0))
            self.broker_url = broker.url
        self.panel = await self._stack.enter_async_context(
            PanelEmulator(
                profile="notifier-gw",
                scenario="fire-drill",
                seed=self.seed,
                time_scale=2.0,
                loops=1,
                detectors=12,
                modules=4,
            )
        )
        self.beacons = await self._stack.enter_async_context(
            BeaconEmulator(
                crew=4, scenario="man-down", seed=self.seed, event_at=6.0, link=self.dir / "beacons"
            )
        )
        self.cameras = await self._stack.enter_async_context(
            CameraEmulator(self.broker_url, scenario="smoke-in-lobby", seed=self.seed)
        )
        config = self._provision()
        from gateway import config as gwconfig
        from gateway.app import Gateway

        self.gateway = Gateway(gwconfig.load(config))
        trust = SiteTrust.from_files([self.dir / "ca" / "ca.pem"])
        self.consumer = await self._stack.enter_async_context(
            Consumer(self.broker_url, trust=trust, protocol="3.1.1", topics=(f"edge/v1/{SITE}/#",))
        )

    def _provision(self) -> Path:
        """A throw-away site CA and gateway identity, through the provisioning library."""
        from provisioning.ca import init_ca
        from provisioning.identity import create_gateway

        ca = init_ca(self.dir / "ca", SITE, "p256", b"demo-passphrase-not-secret")
        out = self.dir / "gateway"
        written = create_gateway(ca, out, GW, site=SITE, broker_url=str(self.broker_url))
        config = Path(written.files["config"])
        doc = tomlkit.parse(config.read_text())
        doc["uplink"]["protocol"] = "3.1.1"
        address = self.panel.tcp_address
        assert address is not None
        host, port = address
        doc["lanes"] = {"telemetry_max_records": 500, "telemetry_max_age": 0.5}
        doc["health"] = {"listen": "127.0.0.1:0"}
        doc["rules"] = {
            "zones": {
                "lobby": {
                    "panel": "panel1",
                    "panel_zones": list(range(1, 33)),
                    "cameras": ["lobby"],
                }
            }
        }
        doc["devices"] = {
            "panel1": {
                "driver": "modbus-panel",
                "options": {"url": f"tcp://{host}:{port}", "profile": "notifier-gw", "loops": 1},
            },
            "crew": {"driver": "beacon-serial", "options": {"port": str(self.dir / "beacons")}},
            "cameras": {
                "driver": "camera-mqtt",
                "options": {
                    "broker": str(self.broker_url),
                    "groups": [
                        {"format": "frigate", "prefix": "frigate"},
                        {"format": "axis", "prefix": ""},
                        {"format": "generic", "prefix": "cameras"},
                    ],
                },
            },
        }
        config.write_text(tomlkit.dumps(doc))
        return config

    async def outcomes(self) -> AsyncIterator[Any]:
        assert self.consumer is not None
        async for outcome in self.consumer:
            yield outcome

    async def run(
        self, duration: float, *, until_complete: bool = False, refresh: Any = None
    ) -> None:
        """Run the gateway and feed verified outcomes into :attr:`state`."""
        stop = asyncio.Event()
        gw_task = asyncio.create_task(self.gateway.run(stop))

        async def consume() -> None:
            async for outcome in self.outcomes():
                self.state.take(outcome)

        consume_task = asyncio.create_task(consume())
        deadline = time.monotonic() + duration
        try:
            while time.monotonic() < deadline and not gw_task.done():
                await asyncio.sleep(0.25)
                if refresh is not None:
                    refresh()
                if until_complete and not self.state.missing():
                    break
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(gw_task, 10)
            await asyncio.sleep(0.5)  # the last batches reach the consumer
            consume_task.cancel()
            with contextlib.suppress(BaseException):
                await consume_task
