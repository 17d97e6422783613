"""The ``modbus-panel`` driver: fire alarm panels over Modbus TCP and RTU.

::

    panel = driver.create("modbus-panel", {"url": "tcp://10.0.0.5:502",
                                           "profile": "notifier-gw", "units": [1, 2]},
                          instance="panel1")
    async with panel:
        async for item in panel.stream():   # fire, prealarm, troubles..., analog readings
            await store(item)
        await panel.write("u1/reset", True)

Layers: :mod:`~drivers.modbus_panel.transport` moves requests (pymodbus' async clients,
one lock per link, RTU lines shared across instances), :mod:`~drivers.modbus_panel.poller`
polls on schedule and handles faults, :mod:`~drivers.modbus_panel.state` turns changed
register words into events and readings through the shared profile codec. The polling
tasks run while ``stream()`` is being consumed and stop with it; the connection stays
open between streams for ``write()``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from drivers.modbus_panel.commands import parse_command
from drivers.modbus_panel.config import ModbusPanelConfig, RtuEndpoint
from drivers.modbus_panel.poller import COUNTERS, Poller
from drivers.modbus_panel.transport import (
    CrcError,
    Link,
    ModbusExceptionError,
    SerialLine,
    TcpLink,
    attach_line,
    detach_line,
)
from edgesdk.driver import Driver, DriverState, Health
from edgesdk.errors import CommandError, ConnectionLostError, DeviceTimeoutError, EdgeError
from edgesdk.model import RawItem, Value

__all__ = ["COUNTERS", "ModbusPanelConfig", "ModbusPanelDriver", "quiet_pymodbus"]


log = logging.getLogger(__name__)

_LINE = ("line_requests", "line_waits", "line_max_in_flight", "line_crc_errors")
_STOP_ROUNDS = 20  # cancel rounds before giving up on a polling task (never seen needed)
_STOP_WAIT = 0.25  # seconds per round


def quiet_pymodbus() -> None:
    """Silence pymodbus' log lines for faults the driver already counts and reports
    (it logs every timeout and dropped frame as an error), unless the application set a
    level for the ``pymodbus`` logger itself."""
    logger = logging.getLogger("pymodbus")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.CRITICAL)


class ModbusPanelDriver(Driver[ModbusPanelConfig]):
    """Events and analog readings from fire panels; reset, silence and point commands.

    See ``docs/drivers.md`` for the options, items, commands and counters.
    """

    name = "modbus-panel"
    config_type = ModbusPanelConfig

    def __init__(self, config: ModbusPanelConfig, *, instance: str | None = None) -> None:
        super().__init__(config, instance=instance)
        self.profile = config.get_profile()
        self._link: Link | None = None
        self._poller: Poller | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._streaming = False
        for counter in ("items", "commands", "command_errors", "errors", *COUNTERS, *_LINE):
            self._counters[counter] = 0
        quiet_pymodbus()

    # -- life cycle ---------------------------------------------------------------------
    async def _open(self) -> None:
        cfg = self.config
        endpoint = cfg.endpoint
        link: Link
        if isinstance(endpoint, RtuEndpoint):
            link = attach_line(endpoint, cfg.gap())  # ConfigError if settings clash
        else:
            link = TcpLink(endpoint, cfg.timeout)
        self._link = link
        try:
            self._poller = Poller(
                cfg,
                self.profile,
                link,
                self.instance,
                self._counters,
                self._record_error,
                self._set_state,
                previous=self._poller,
                pressure=lambda: self._pressure,
            )
            if await link.connect():
                self._count("connects")
        except ConnectionLostError as exc:
            # not fatal: the status loop keeps trying, with backoff
            self._count("connect_failures")
            self._record_error(exc)
            self._set_state(DriverState.OFFLINE)
        except BaseException:
            self._link = None
            if isinstance(link, SerialLine):
                detach_line(link)
            else:
                link.close()
            raise

    async def _close(self) -> None:
        try:
            await self._stop_tasks()
        finally:
            link, self._link = self._link, None
            if isinstance(link, SerialLine):
                detach_line(link)
            elif link is not None:
                link.close()
        await asyncio.sleep(0)  # let the transport finish closing its socket

    async def _stop_tasks(self) -> None:
        """Cancel the polling tasks and wait for them, cancelling again while one keeps
        running (a library may swallow a cancellation, as 3.11's wait_for can)."""
        tasks, self._tasks = self._tasks, []
        pending = set(tasks)
        for _ in range(_STOP_ROUNDS):
            if not pending:
                break
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=_STOP_WAIT)
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                self._record_error(task.exception() or "polling task failed")
        if pending:
            log.error("%s: polling tasks did not stop: %s", self.instance, pending)

    # -- data ---------------------------------------------------------------------------
    async def _stream(self) -> AsyncIterator[RawItem]:
        poller = self._poller
        if poller is None:
            raise ConnectionLostError(f"{self.instance}: driver is not open")
        if self._streaming:
            raise RuntimeError(f"{self.instance}: stream() is already being consumed")
        self._streaming = True
        self._tasks = [asyncio.create_task(poller.run_status(), name=f"{self.instance}-status")]
        if poller.has_analog:
            self._tasks.append(
                asyncio.create_task(poller.run_analog(), name=f"{self.instance}-analog")
            )
        try:
            while True:
                yield await poller.queue.get()
        finally:
            self._streaming = False
            await self._stop_tasks()

    # -- commands -----------------------------------------------------------------------
    async def _write(self, point: str, value: Value) -> None:
        writes = parse_command(point, value, self.profile, self.config.units)
        link = self._link
        if link is None:
            raise ConnectionLostError(f"{self.instance}: driver is not open")
        if not link.connected and await link.connect():  # no stream may be reconnecting
            self._count("connects")
        for w in writes:
            await self._send(link, w.unit, w.address, w.value, w.what)
            self._count("commands_sent")

    async def _send(self, link: Link, unit: int, address: int, value: int, what: str) -> None:
        """One command write; timeouts and CRC errors are retried, refusals are not."""
        cfg = self.config
        for attempt in range(cfg.retries + 1):
            if attempt:
                self._count("retries")
            self._count("requests")
            try:
                await link.write(address, value, unit, cfg.timeout)
                return
            except DeviceTimeoutError as exc:
                self._count("timeouts")
                error: EdgeError = exc
            except CrcError as exc:
                self._count("crc_errors")
                error = exc
            except ModbusExceptionError as exc:
                self._count("exceptions")
                raise CommandError(f"{self.instance}: {what} refused: {exc}") from exc
        raise DeviceTimeoutError(f"{self.instance}: {what} not confirmed by unit {unit}: {error}")

    # -- health -------------------------------------------------------------------------
    @property
    def health(self) -> Health:
        link = self._link
        if link is not None:
            for key in _LINE:
                self._counters[key] = link.stats[key[len("line_") :]]
        return super().health
