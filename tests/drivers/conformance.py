"""What every driver's conformance case provides: a running emulated twin.

Each driver adds one module ``tests/drivers/cases_<driver>.py`` defining ``CASE``, an
object with ``driver`` (the entry-point name), ``bad_options`` (options its config must
reject) and ``twin()``, an async context manager yielding a :class:`Twin`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Case", "Twin"]


@dataclass
class Twin:
    """A running emulator and the driver options that reach it."""

    options: dict[str, Any]
    # stop the emulator and start it again at the same address (port, pty link, broker)
    restart: Callable[[], Awaitable[None]]
    # make the device produce at least one new item soon (a point change, a detection)
    stimulate: Callable[[], Awaitable[None]]
    # a command the driver must refuse with a typed error: (point, value)
    bad_command: tuple[str, Any] = ("no-such-point", 1)
    extra: dict[str, Any] = field(default_factory=dict)


class Case(Protocol):
    driver: str
    bad_options: list[dict[str, Any]]

    def twin(self) -> AbstractAsyncContextManager[Twin]: ...
