"""The driver API: one base class every driver subclasses.

A driver talks to one device (or one bus of devices) and turns what it says into typed
:class:`~edgesdk.model.Reading` and :class:`~edgesdk.model.Event` items::

    from edgesdk import driver

    cls = driver.load("modbus-panel")                 # entry point, imported on first use
    panel = cls.from_options({"url": "tcp://127.0.0.1:5020", "profile": "notifier-gw"},
                             instance="panel1")
    async with panel:
        async for item in panel.stream():
            print(item)
        await panel.write("reset", True)

As in python-can, the public methods here do the common work (state, counters, last error,
argument checks) and call the private hooks a driver fills in: :meth:`Driver._open`,
:meth:`Driver._close`, :meth:`Driver._stream` and optionally :meth:`Driver._write` and
:meth:`Driver._confirm`. Drivers register in the entry-point group ``edgesdk.drivers``.
"""

from __future__ import annotations

import abc
import asyncio
import enum
import time
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import TracebackType
from typing import Any, ClassVar, Generic, Self, TypeVar

from edgesdk.config import ConfigModel, parse
from edgesdk.errors import (
    CommandError,
    ConnectionLostError,
    DeviceTimeoutError,
    DriverUnavailableError,
)
from edgesdk.model import Event, Item, RawItem, ReadingBlock, Severity, Value

__all__ = [
    "ENTRY_POINT_GROUP",
    "Driver",
    "DriverConfig",
    "DriverState",
    "Health",
    "available",
    "create",
    "load",
    "register",
    "unregister",
]

ENTRY_POINT_GROUP = "edgesdk.drivers"


class DriverConfig(ConfigModel):
    """Base of every driver's options: frozen, unknown keys rejected."""


class DriverState(enum.StrEnum):
    """Life cycle of a driver instance."""

    CLOSED = "closed"
    OPENING = "opening"
    ONLINE = "online"
    DEGRADED = "degraded"  # open, but some requests fail
    OFFLINE = "offline"  # open, device unreachable; the driver keeps retrying
    CLOSING = "closing"


@dataclass(frozen=True, slots=True)
class Health:
    """A snapshot of a driver's health, for ``/metrics`` and ``gateway status``."""

    driver: str
    instance: str
    state: DriverState
    since: float
    last_error: str | None
    last_error_time: float | None
    counters: Mapping[str, int] = field(default_factory=dict)


C = TypeVar("C", bound=DriverConfig)


class Driver(abc.ABC, Generic[C]):
    """Base class of every driver.

    Subclasses set ``name`` (the entry-point name) and ``config_type`` (their
    :class:`DriverConfig` subclass) and implement the private hooks.
    """

    name: ClassVar[str]
    config_type: ClassVar[type[DriverConfig]]

    def __init__(self, config: C, *, instance: str | None = None) -> None:
        self.config: C = config
        self.instance = instance or self.name
        self._state = DriverState.CLOSED
        self._since = time.time()
        self._last_error: str | None = None
        self._last_error_time: float | None = None
        self._counters: Counter[str] = Counter()
        self._pressure = False

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_options(
        cls,
        options: Mapping[str, Any],
        *,
        instance: str | None = None,
        file: str | None = None,
        prefix: str = "",
    ) -> Self:
        """Validate ``options`` against ``config_type`` and build the driver.

        Raises :class:`~edgesdk.errors.ConfigError` naming ``file`` and the dotted key
        (``prefix`` is where the options sit in the file, e.g. ``devices.panel1``).
        """
        config = parse(cls.config_type, options, file=file, prefix=prefix)
        return cls(config, instance=instance)  # type: ignore[arg-type]

    # -- life cycle ---------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        if self._state is not DriverState.CLOSED:
            raise RuntimeError(f"{self.instance}: driver is already open")
        self._set_state(DriverState.OPENING)
        try:
            await self._open()
        except BaseException as exc:
            self._record_error(exc)
            self._set_state(DriverState.CLOSED)
            raise
        if self.state is DriverState.OPENING:  # _open() may have set OFFLINE already
            self._set_state(DriverState.ONLINE)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._set_state(DriverState.CLOSING)
        try:
            await self._close()
        finally:
            self._set_state(DriverState.CLOSED)

    @property
    def state(self) -> DriverState:
        return self._state

    @property
    def is_open(self) -> bool:
        return self._state not in (DriverState.CLOSED, DriverState.CLOSING)

    # -- data ---------------------------------------------------------------------------
    async def stream(self) -> AsyncGenerator[Item, None]:
        """Yield readings and events until the driver is closed.

        Device faults never end the stream: the driver counts them, reports them in
        :attr:`health`, raises ``trouble`` events where a person must know, and retries.
        """
        async for item in self.stream_blocks():
            if isinstance(item, ReadingBlock):
                for reading in item:
                    yield reading
            else:
                yield item

    async def stream_blocks(self) -> AsyncGenerator[RawItem, None]:
        """Like :meth:`stream`, but a :class:`~edgesdk.model.ReadingBlock` (many readings
        of one device at one time, from drivers that read in blocks) comes whole.

        The gateway's path: a block is sealed straight into SenML, with no
        :class:`~edgesdk.model.Reading` built per value.
        """
        self._require_open()
        async for item in self._stream():
            self._counters["items"] += len(item.values) if type(item) is ReadingBlock else 1
            yield item

    # -- backpressure -------------------------------------------------------------------
    def set_pressure(self, on: bool) -> None:
        """The consumer (the gateway) cannot keep up with telemetry: while on, drivers
        skip optional telemetry work (a panel driver skips analog polls, counted as
        ``analog_skipped``). Alarms, status polls and events are never held back."""
        self._pressure = on

    @property
    def under_pressure(self) -> bool:
        return self._pressure

    async def write(self, point: str, value: Value) -> None:
        """Send a command (reset, silence, evacuate...) where the device takes it."""
        self._require_open()
        self._counters["commands"] += 1
        try:
            await self._write(point, value)
        except Exception as exc:
            self._counters["command_errors"] += 1
            self._record_error(exc)
            raise

    async def confirm(self, item: Item) -> None:
        """Tell the driver ``item`` is safely handed on (durably stored by the gateway).

        Drivers whose devices repeat an alarm until acknowledged (the beacon receiver)
        acknowledge it here, not before.
        """
        if self.is_open:
            await self._confirm(item)

    async def probe(self, wait: float = 5.0) -> Health:
        """Open the driver, wait for its first sign of a working device, close; return health.

        Used by ``provision check`` to prove a device answers. A reading, or an event
        that is not ``trouble``, counts; a ``trouble`` event (device offline, receiver
        unplugged) does not. Raises :class:`~edgesdk.errors.DeviceTimeoutError` when
        nothing counting arrives within ``wait`` s (naming the last trouble seen), or the
        driver's own error when it cannot open.
        """
        trouble: Event | None = None
        async with self:
            stream = self.stream()
            try:
                async with asyncio.timeout(wait):
                    async for item in stream:
                        if isinstance(item, Event) and item.severity is Severity.TROUBLE:
                            trouble = item
                            continue
                        break
            except TimeoutError as exc:
                why = f"{trouble.kind} {dict(trouble.data)}" if trouble else "none"
                raise DeviceTimeoutError(
                    f"{self.instance}: no data within {wait:g}s (trouble: {why}; "
                    f"last error: {self._last_error or 'none'})"
                ) from exc
            finally:
                await stream.aclose()
            return self.health

    def get_blob(self, digest: str) -> bytes | None:
        """A binary attachment (camera snapshot) referenced by its SHA-256 hex digest."""
        return None

    # -- health -------------------------------------------------------------------------
    @property
    def health(self) -> Health:
        return Health(
            driver=self.name,
            instance=self.instance,
            state=self._state,
            since=self._since,
            last_error=self._last_error,
            last_error_time=self._last_error_time,
            counters=dict(self._counters),
        )

    # -- for subclasses -----------------------------------------------------------------
    def _count(self, counter: str, n: int = 1) -> None:
        self._counters[counter] += n

    def _record_error(self, exc: BaseException | str) -> None:
        self._last_error = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        self._last_error_time = time.time()
        self._counters["errors"] += 1

    def _set_state(self, state: DriverState) -> None:
        if state is not self._state:
            self._state = state
            self._since = time.time()

    def _require_open(self) -> None:
        if not self.is_open:
            raise ConnectionLostError(f"{self.instance}: driver is not open (use 'async with')")

    @abc.abstractmethod
    async def _open(self) -> None:
        """Open transports. May leave the state OFFLINE and keep retrying in _stream."""

    @abc.abstractmethod
    async def _close(self) -> None:
        """Close transports and cancel background tasks. Must not raise."""

    @abc.abstractmethod
    def _stream(self) -> AsyncIterator[RawItem]:
        """Yield items until closed (an async generator); readings taken together may come
        as one :class:`~edgesdk.model.ReadingBlock`."""

    async def _write(self, point: str, value: Value) -> None:
        raise CommandError(f"{self.instance}: driver {self.name!r} takes no commands")

    async def _confirm(self, item: Item) -> None:
        """Optional: acknowledge a durably stored item to the device."""


# -- registry ---------------------------------------------------------------------------
_local: dict[str, type[Driver[Any]]] = {}
_loaded: dict[str, type[Driver[Any]]] = {}


def register(name: str, cls: type[Driver[Any]]) -> None:
    """Register a driver class in-process (tests, embedded use), overriding entry points."""
    _local[name] = cls


def unregister(name: str) -> None:
    _local.pop(name, None)
    _loaded.pop(name, None)


def available() -> list[str]:
    """Names of every driver registered (entry points and in-process)."""
    names = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(names | set(_local))


def load(name: str) -> type[Driver[Any]]:
    """The driver class registered as ``name``, imported on first use.

    Raises :class:`~edgesdk.errors.DriverUnavailableError` with the reason: no such
    driver (listing the installed ones), or an import failure (a missing dependency).
    """
    if name in _local:
        return _local[name]
    if name in _loaded:
        return _loaded[name]
    eps = entry_points(group=ENTRY_POINT_GROUP, name=name)
    if not eps:
        raise DriverUnavailableError(
            f"no driver named {name!r}; installed drivers: {', '.join(available()) or 'none'}"
        )
    (ep,) = tuple(eps)[:1]
    try:
        obj = ep.load()
    except ImportError as exc:
        raise DriverUnavailableError(
            f"driver {name!r} ({ep.value}) cannot be imported: {exc}; "
            "install its dependencies or reinstall edgesdk"
        ) from exc
    except AttributeError as exc:
        raise DriverUnavailableError(
            f"driver {name!r} points at a missing class {ep.value}: {exc}"
        ) from exc
    if not (isinstance(obj, type) and issubclass(obj, Driver)):
        raise DriverUnavailableError(f"entry point {name!r} ({ep.value}) is not a Driver class")
    _loaded[name] = obj
    return obj


def create(
    name: str,
    options: Mapping[str, Any],
    *,
    instance: str | None = None,
    file: str | None = None,
    prefix: str = "",
) -> Driver[Any]:
    """Load driver ``name`` and build an instance from validated ``options``."""
    return load(name).from_options(options, instance=instance, file=file, prefix=prefix)
