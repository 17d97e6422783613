"""The panel emulator: one or more panels as Modbus units over TCP and RTU-on-a-pty.

::

    async with PanelEmulator(units=2, profile="notifier-gw", rtu=True, seed=7) as emu:
        host, port = emu.tcp_address          # pymodbus / the driver connect here
        path = emu.rtu_path                   # ... or open this serial port (RTU)
        emu.set_point(1, loop=1, point=3, alarm="fire")
        emu.set_fault(2, "timeout", count=3)  # unit 2 ignores the next 3 requests

The TCP side is pymodbus' own server (``ModbusTcpServer`` with one ``SimDevice`` per unit
whose *action* computes every read from the model and turns writes into commands); the RTU
side is :class:`~emulators.panel.rtu.RtuServer`. Both call the same
:class:`~emulators.panel.store.UnitStore`. A clock task advances every panel (and its
scenario) one emulated second per ``1 / time_scale`` wall seconds; ``time_scale=0`` stops
the clock, and :meth:`PanelEmulator.advance` steps it by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers.modbus_panel.profile import (
    PanelCommand,
    PointAddress,
    PointCommand,
    PointKind,
    Profile,
    load_profile,
)
from edgesdk.errors import CommandError, ConfigError
from emulators.panel.model import Panel
from emulators.panel.rtu import RtuServer
from emulators.panel.scenarios import Scenario, build_scenario
from emulators.panel.store import FaultKind, UnitStore

__all__ = ["PanelEmulator"]

_MAX_CATCH_UP = 1000  # emulated seconds stepped at once when the clock task fell behind


class PanelEmulator:
    """Emulated panels reachable over Modbus TCP and/or RTU on a pty (see module doc)."""

    def __init__(
        self,
        *,
        units: int | Sequence[int] = 1,
        profile: str | Path | Profile = "notifier-gw",
        tcp: tuple[str, int] | None = ("127.0.0.1", 0),
        rtu: bool = False,
        link: str | Path | None = None,
        scenario: str = "quiet",
        seed: int = 0,
        time_scale: float = 1.0,
        loops: int | None = None,
        detectors: int | None = None,
        modules: int | None = None,
    ) -> None:
        self.profile = profile if isinstance(profile, Profile) else load_profile(profile)
        self.unit_ids = list(range(1, units + 1)) if isinstance(units, int) else list(units)
        if not self.unit_ids or any(not 1 <= u <= 247 for u in self.unit_ids):
            raise ConfigError(f"unit ids must be 1..247 (got {self.unit_ids})", key="units")
        if len(set(self.unit_ids)) != len(self.unit_ids):
            raise ConfigError(f"duplicate unit ids in {self.unit_ids}", key="units")
        if time_scale < 0:
            raise ConfigError("must be >= 0", key="time_scale", fix="use 0 to stop the clock")
        if tcp is None and not rtu:
            raise ConfigError("no transport", key="tcp", fix="enable TCP, RTU or both")
        # default layout: 2 loops x (20 detectors + 10 modules), or what the profile holds
        pts = self.profile.points
        loops = min(2, pts.loops) if loops is None else loops
        detectors = min(20, pts.detector.slots) if detectors is None else detectors
        room = pts.module.slots if pts.module is not None else 0
        modules = min(10, room) if modules is None else modules
        self._check_layout(loops, detectors, modules)
        self.scenario_name, self.seed, self.time_scale = scenario, seed, time_scale
        self.panels: dict[int, Panel] = {}
        self.scenarios: dict[int, Scenario] = {}
        self.stores: dict[int, UnitStore] = {}
        for unit in self.unit_ids:
            panel = Panel(loops=loops, detectors=detectors, modules=modules, seed=seed, unit=unit)
            self.panels[unit] = panel
            self.scenarios[unit] = build_scenario(scenario, panel, seed=seed, unit=unit)
            self.stores[unit] = UnitStore(unit, self.profile, panel, on_drop=self._drop_soon)
        self._tcp_bind = tcp
        self._server: ModbusTcpServer | None = None
        self._tcp_address: tuple[str, int] | None = None
        self._rtu = RtuServer(self.stores, link=link) if rtu else None
        self._clock: asyncio.Task[None] | None = None
        self.dropped = 0

    def _check_layout(self, loops: int, detectors: int, modules: int) -> None:
        pts = self.profile.points
        limits = [("loops", loops, pts.loops), ("detectors", detectors, pts.detector.slots)]
        limits.append(("modules", modules, pts.module.slots if pts.module else 0))
        for key, value, limit in limits:
            if not (0 if key == "modules" else 1) <= value <= limit:
                raise ConfigError(
                    f"profile {self.profile.name} has room for {limit} (got {value})",
                    key=key,
                    fix=f"use at most {limit} {key}",
                )

    # -- life cycle ---------------------------------------------------------------------
    async def __aenter__(self) -> PanelEmulator:
        try:
            if self._tcp_bind is not None:
                await self._start_tcp(self._tcp_bind)
            if self._rtu is not None:
                await self._rtu.start()
            if self.time_scale > 0:
                self._clock = asyncio.create_task(self._run_clock(), name="panel-clock")
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._clock is not None:
            self._clock.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._clock
            self._clock = None
        if self._rtu is not None:
            await self._rtu.stop()
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None
        await asyncio.sleep(0)  # let transports finish closing

    async def _start_tcp(self, bind: tuple[str, int]) -> None:
        devices = [self._device(unit) for unit in self.unit_ids]
        # unit ids nobody answers for get "gateway target failed to respond" (0x0B)
        devices.append(SimDevice(0, simdata=_full_map(), action=_unknown_unit))
        # ignore_missing_devices=True: a NoSuchIdException from the store means "no reply"
        server = ModbusTcpServer(devices, address=bind, ignore_missing_devices=True)
        await server.serve_forever(background=True)
        self._server = server
        sock = server.transport.sockets[0].getsockname()  # type: ignore[attr-defined]
        self._tcp_address = (str(sock[0]), int(sock[1]))

    def _device(self, unit: int) -> SimDevice:
        return SimDevice(unit, simdata=_full_map(), action=functools.partial(self._action, unit))

    async def _action(
        self,
        unit: int,
        function: int,
        start: int,
        address: int,
        count: int,
        registers: list[int],
        values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """pymodbus SimDevice action: fill the requested registers live, or run a write."""
        words = [int(v) for v in values] if values is not None else None
        result = await self.stores[unit].handle(function, address, count, words)
        if isinstance(result, ExcCodes):
            return result
        if values is None:
            registers[address - start : address - start + count] = result
        return None

    async def _run_clock(self) -> None:
        loop = asyncio.get_running_loop()
        interval = 1.0 / self.time_scale
        start, done = loop.time(), 0
        while True:
            due = int((loop.time() - start) / interval)
            self.advance(min(due - done, _MAX_CATCH_UP))
            done = due
            await asyncio.sleep(max(0.0, start + (done + 1) * interval - loop.time()))

    # -- where to connect ---------------------------------------------------------------
    @property
    def tcp_address(self) -> tuple[str, int] | None:
        return self._tcp_address

    @property
    def rtu_path(self) -> str | None:
        return self._rtu.path if self._rtu is not None and self._rtu.port.is_open else None

    def info(self) -> dict[str, Any]:
        """What the CLI prints as its JSON line."""
        tcp = self._tcp_address
        return {
            "emulator": "panel",
            "tcp": None if tcp is None else {"host": tcp[0], "port": tcp[1]},
            "rtu": self.rtu_path,
            "units": self.unit_ids,
            "profile": self.profile.name,
            "scenario": self.scenario_name,
            "seed": self.seed,
            "time_scale": self.time_scale,
        }

    # -- control ------------------------------------------------------------------------
    def panel(self, unit: int) -> Panel:
        try:
            return self.panels[unit]
        except KeyError:
            raise CommandError(f"no unit {unit} (units: {self.unit_ids})") from None

    def advance(self, ticks: int = 1) -> None:
        """Step every panel (and its scenario) ``ticks`` emulated seconds."""
        for _ in range(ticks):
            for unit, panel in self.panels.items():
                self.scenarios[unit].tick(panel)

    def set_point(
        self,
        unit: int,
        loop: int,
        point: int,
        *,
        kind: PointKind | str = PointKind.DETECTOR,
        alarm: str | None = None,
        prealarm: bool | None = None,
        trouble: bool | None = None,
        disabled: bool | None = None,
        present: bool | None = None,
    ) -> None:
        """Set a point's causes directly (see :meth:`Panel.set_point`)."""
        self.panel(unit).set_point(
            _address(loop, kind, point),
            alarm=alarm,
            prealarm=prealarm,
            trouble=trouble,
            disabled=disabled,
            present=present,
        )

    def set_analog(self, unit: int, loop: int, point: int, value: float | None) -> None:
        self.panel(unit).set_analog(_address(loop, PointKind.DETECTOR, point), value)

    def set_drift(self, unit: int, loop: int, point: int, per_hour: float) -> None:
        self.panel(unit).set_drift(_address(loop, PointKind.DETECTOR, point), per_hour)

    def set_panel_flag(self, unit: int, flag: str, value: bool) -> None:
        self.panel(unit).set_panel_flag(flag, value)

    def set_loop_fault(self, unit: int, loop: int, value: bool) -> None:
        self.panel(unit).set_loop_fault(loop, value)

    def command(self, unit: int, command: PanelCommand | str) -> None:
        """A command given at the panel itself (keypad), not over Modbus."""
        self.panel(unit).command(_enum(PanelCommand, command))

    def point_command(
        self,
        unit: int,
        loop: int,
        point: int,
        command: PointCommand | str,
        *,
        kind: PointKind | str = PointKind.DETECTOR,
    ) -> None:
        self.panel(unit).point_command(_address(loop, kind, point), _enum(PointCommand, command))

    def set_fault(
        self,
        unit: int,
        kind: FaultKind | str,
        *,
        code: int = ExcCodes.DEVICE_FAILURE,
        delay: float = 0.5,
        count: int | None = None,
    ) -> None:
        """Inject a fault into unit ``unit``'s replies (see :mod:`emulators.panel.store`)."""
        self.panel(unit)
        self.stores[unit].set_fault(_enum(FaultKind, kind), code=code, delay=delay, count=count)

    def clear_fault(self, unit: int) -> None:
        self.set_fault(unit, FaultKind.NONE)

    def drop_connections(self) -> int:
        """Close every open TCP client connection now; returns how many."""
        if self._server is None:
            return 0
        conns = list(self._server.active_connections.values())
        for conn in conns:
            conn.close()
        self.dropped += len(conns)
        return len(conns)

    def _drop_soon(self) -> None:
        asyncio.get_running_loop().call_soon(self.drop_connections)

    def counters(self) -> dict[str, Any]:
        """Requests served, complete status reads, faults injected... per unit and in all."""
        units = {str(u): s.snapshot() for u, s in self.stores.items()}
        total: dict[str, int] = {}
        for snap in units.values():
            for k, v in snap.items():
                if isinstance(v, int) and k != "unit":
                    total[k] = total.get(k, 0) + v
        total["injected"] = sum(sum(s.injected.values()) for s in self.stores.values())
        return {
            "units": units,
            "total": total,
            "tcp": {"dropped": self.dropped},
            "rtu": dict(self._rtu.counters) if self._rtu is not None else None,
        }


def _full_map() -> tuple[list[SimData], list[SimData], list[SimData], list[SimData]]:
    """Every address "valid" to pymodbus, so every request reaches the store's action,
    which alone decides (from the profile) what is mapped and answers 02 for the rest.

    (coils, discrete inputs, holding registers, input registers); the two bit tables must
    not be empty, the store refuses their function codes.
    """

    def bits() -> list[SimData]:
        return [SimData(0, values=[False] * 16, datatype=DataType.BITS)]

    def registers() -> list[SimData]:
        return [SimData(0, count=65536, values=0, datatype=DataType.REGISTERS)]

    return bits(), bits(), registers(), registers()


async def _unknown_unit(
    function: int,
    start: int,
    address: int,
    count: int,
    registers: list[int],
    values: list[int] | list[bool] | None,
) -> ExcCodes:
    return ExcCodes.GATEWAY_NO_RESPONSE


def _address(loop: int, kind: PointKind | str, point: int) -> PointAddress:
    return PointAddress(loop, _enum(PointKind, kind), point)


def _enum(cls: Any, value: Any) -> Any:
    try:
        return cls(value)
    except ValueError:
        names = ", ".join(str(m.value) for m in cls)
        raise CommandError(f"unknown {cls.__name__} {value!r}; use one of: {names}") from None
