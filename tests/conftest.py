"""Fixtures shared by every test: the leak guard, real brokers, vectors."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from tests import rig
from tests.support import VECTORS, Mosquitto, mosquitto_binary

# Property tests are reproducible by default: a run of `make test` (and CI) tries the same
# inputs every time, so a commit that passed once passes again, and a failure found here
# is found again by whoever reruns it. To look for new failures, explore with fresh random
# inputs and ten times the examples: `pytest --hypothesis-profile=explore tests/`.
settings.register_profile("repeatable", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", max_examples=1000, print_blob=True)
settings.load_profile("repeatable")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="run long variants too")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="long variant: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The reliability rig's counts (kills, faults injected...), in every run that has any."""
    lines = rig.summary()
    if lines:
        terminalreporter.section("reliability rig: counts")
        for line in lines:
            terminalreporter.write_line(line)


def _injected(emu: Any) -> tuple[str, dict[str, int]]:
    from emulators.beacons.emulator import BeaconEmulator
    from emulators.cameras.emulator import CameraEmulator

    if isinstance(emu, BeaconEmulator):
        return "beacon", emu.counters.faults
    if isinstance(emu, CameraEmulator):
        return "camera", dict(emu.counters.faults)
    total: Counter[str] = Counter()
    for store in emu.stores.values():
        total.update(store.injected)
    return "panel", dict(total)


@pytest.fixture(autouse=True, scope="session")
def _count_emulator_faults() -> Iterator[None]:
    """Every emulator, as it stops, adds the faults it injected to the rig's summary (a
    wrapper around the real ``__aexit__``: nothing else changes)."""
    from emulators.beacons.emulator import BeaconEmulator
    from emulators.cameras.emulator import CameraEmulator
    from emulators.panel.emulator import PanelEmulator

    def counting(
        original: Callable[..., Awaitable[None]],
    ) -> Callable[..., Awaitable[None]]:
        async def aexit(self: Any, *exc: Any) -> None:
            try:
                rig.faults(*_injected(self))
            finally:
                await original(self, *exc)

        return aexit

    with pytest.MonkeyPatch.context() as mp:
        for cls in (PanelEmulator, BeaconEmulator, CameraEmulator):
            mp.setattr(cls, "__aexit__", counting(cls.__aexit__))
        yield


def _fds() -> set[int]:
    try:
        return {int(n) for n in os.listdir("/proc/self/fd")}
    except OSError:
        return set()


def _describe(fds: set[int]) -> list[str]:
    out = []
    for fd in sorted(fds):
        try:
            out.append(f"{fd}->{os.readlink(f'/proc/self/fd/{fd}')}")
        except OSError:
            out.append(str(fd))
    return out


@pytest.fixture(autouse=True)
def leak_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves threads or file descriptors (sockets, ptys, files) behind.

    Waits up to 2 s for things closing asynchronously before judging. Fixtures with a wider
    scope that are set up during the test are not the test's fault, so only what the test
    function itself opened counts: the guard runs innermost (function scope, autouse).
    """
    if request.node.get_closest_marker("no_leak_guard"):
        yield
        return
    threads_before = set(threading.enumerate())
    fds_before = _fds()
    yield
    deadline = time.monotonic() + 2.0
    while True:
        extra_threads = [
            t
            for t in threading.enumerate()
            if t not in threads_before and t.is_alive() and not t.daemon
        ]
        extra_fds = _fds() - fds_before
        if (not extra_threads and not extra_fds) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not extra_threads, f"test leaked threads: {extra_threads}"
    assert not extra_fds, f"test leaked file descriptors: {_describe(extra_fds)}"


@pytest.fixture(scope="session")
def vectors() -> Path:
    if not VECTORS.is_dir():
        pytest.fail(f"shared test vectors not found at {VECTORS} (set EDGESDK_SHARED)")
    return VECTORS


@pytest.fixture
def mosquitto() -> Iterator[Mosquitto]:
    """A plain mosquitto on a free loopback port, stopped after the test."""
    if mosquitto_binary() is None:
        pytest.fail("mosquitto is not installed (make test installs it via .ci/run)")
    with Mosquitto() as broker:
        yield broker
