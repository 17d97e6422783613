"""One way for driver tests to consume ``drv.stream()``: a task keeps every item until the
block ends, with bounded waits and filters. Shared by every driver's test cases."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from edgesdk.driver import Driver
from edgesdk.model import Event, EventState, Item, Reading

__all__ = ["Feed"]

D = TypeVar("D", bound=Driver[Any])


class Feed(Generic[D]):
    """Consumes ``drv.stream()`` in a task, keeping every item, until the block ends."""

    def __init__(self, drv: D) -> None:
        self.drv = drv
        self.items: list[Item] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Feed[D]:
        self._task = asyncio.create_task(self._pump(), name=f"{self.drv.name}-feed")
        return self

    async def __aexit__(self, *exc: object) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        # the stream may sit in a library call whose asyncio.wait_for (Python 3.11) can
        # swallow one cancel (aiomqtt, pymodbus): cancel again until it ends (bounded)
        for _ in range(50):
            task.cancel()
            await asyncio.wait({task}, timeout=0.2)
            if task.done():
                break
        assert task.done(), "the feed did not stop"
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]

    async def _pump(self) -> None:
        async with contextlib.aclosing(self.drv.stream()) as stream:
            async for item in stream:
                self.items.append(item)

    async def until(
        self, check: Callable[[], bool], *, within: float = 10.0, what: str = ""
    ) -> None:
        """Wait (bounded) until ``check()`` holds; fail early if the stream died."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not check():
            if self._task is not None and self._task.done():
                self._task.result()
                raise AssertionError("the stream ended")
            if loop.time() > deadline:
                raise AssertionError(
                    f"{what or 'condition'} not met within {within}s: {len(self.items)} items, "
                    f"state {self.drv.state}, counters {dict(self.drv.health.counters)}, "
                    f"events {[(e.kind, e.state.value, dict(e.data)) for e in self.events()]}"
                )
            await asyncio.sleep(0.01)

    async def event(
        self,
        kind: str,
        state: EventState = EventState.ACTIVE,
        *,
        within: float = 5.0,
        since: int = 0,
        **data: Any,
    ) -> Event:
        """The first ``kind`` event in ``state`` whose data holds ``data``, waiting for it."""
        found: list[Event] = []

        def check() -> bool:
            found[:] = self.events(kind, state, since=since, **data)
            return bool(found)

        await self.until(check, within=within, what=f"{kind} {state.value} {data}")
        return found[0]

    def events(
        self,
        kind: str | None = None,
        state: EventState | None = None,
        *,
        since: int = 0,
        **data: Any,
    ) -> list[Event]:
        return [
            i
            for i in self.items[since:]
            if isinstance(i, Event)
            and (kind is None or i.kind == kind)
            and (state is None or i.state is state)
            and all(i.data.get(k) == v for k, v in data.items())
        ]

    def readings(self, name: str | None = None, *, since: int = 0) -> list[Reading]:
        return [
            i
            for i in self.items[since:]
            if isinstance(i, Reading) and (name is None or i.name == name)
        ]

    def count(self, name: str) -> int:
        return len(self.readings(name))
