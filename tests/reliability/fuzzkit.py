"""Shared machinery of the hostile-input fuzz suite (issue 8): settings, counting, checks.

Every fuzz test runs a hypothesis property inside a :class:`FuzzCount`, so the number of
inputs it tried is known and printed (``fuzz <target>: N inputs, F failures``); the
``conftest.py`` next to this file totals them in pytest's terminal summary.

Runs are reproducible: ``derandomize=True`` seeds hypothesis from each property's source,
no example database is read or written, and every key, certificate and signature the
strategies use is deterministic (Ed25519, and ECDSA with RFC 6979 nonces). Each property
runs ``examples * scale`` inputs: scale 1 in CI, 10 in the ``--run-slow`` variant.
"""

from __future__ import annotations

import contextlib
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.errors import HypothesisException

__all__ = [
    "DEADLINE_MS",
    "RESULTS",
    "SCALES",
    "FuzzCount",
    "expect",
    "fuzz_settings",
    "peak_memory",
    "walk",
]

T = TypeVar("T")

DEADLINE_MS = 2000
"""Per-example deadline: generous (examples take milliseconds) so a shared CI core does not
flake, yet a decoder that loops or backtracks on one input fails the property."""

SCALES = pytest.mark.parametrize(
    "scale",
    [
        pytest.param(1, id="ci", marks=pytest.mark.timeout(240)),
        pytest.param(10, id="long", marks=[pytest.mark.slow, pytest.mark.timeout(2400)]),
    ],
)
"""Parametrise a fuzz test over the CI size and the 10x ``--run-slow`` variant."""


def fuzz_settings(examples: int, scale: int) -> settings:
    """Hypothesis settings of one fuzz property: ``examples * scale`` inputs, reproducible."""
    return settings(
        max_examples=examples * scale,
        deadline=DEADLINE_MS,
        derandomize=True,
        database=None,
        print_blob=False,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.filter_too_much,
        ],
    )


@dataclass
class FuzzCount:
    """How many inputs one fuzz target tried, and how many of them failed a property."""

    name: str
    inputs: int = 0
    failures: int = 0
    test_failed: bool = False
    """The test failed outside any counted example (a deadline, a coverage assertion)."""

    @contextlib.contextmanager
    def example(self) -> Iterator[None]:
        """Wrap one example: count it, and count it as a failure if it raises.

        hypothesis' own control flow (a rejected ``assume``) is not a failure. A failing
        example is counted every time hypothesis replays it while shrinking.
        """
        self.inputs += 1
        try:
            yield
        except HypothesisException:
            raise
        except Exception:
            self.failures += 1
            raise

    def line(self) -> str:
        tail = " (test FAILED)" if self.test_failed and not self.failures else ""
        return f"fuzz {self.name}: {self.inputs} inputs, {self.failures} failures{tail}"


RESULTS: list[FuzzCount] = []
"""Every count of this session, in run order (read by the terminal summary hook)."""


def expect(
    allowed: type[BaseException] | tuple[type[BaseException], ...], call: Callable[[], T]
) -> T | None:
    """Run ``call``; its result, or ``None`` when it raised one of the ``allowed`` errors.

    The documented typed error must also be a *clear* one: its message is checked to be
    printable and non-empty. Any other exception propagates and fails the example.
    """
    try:
        return call()
    except allowed as exc:
        error = exc
    message = str(error)
    assert message.strip(), f"{type(error).__name__} raised without a message"
    return None


def peak_memory(call: Callable[[], Any]) -> int:
    """Peak of Python allocations (tracemalloc) while ``call`` runs, in bytes.

    Exceptions from ``call`` are swallowed: the memory tests judge memory only, the other
    properties judge the errors.
    """
    tracemalloc.start()
    try:
        with contextlib.suppress(Exception):
            call()
        _, top = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return top


def walk(value: Any, depth: int = 0) -> Iterator[tuple[Any, int]]:
    """Every value nested in lists, tuples and dicts (keys included), with its depth."""
    yield value, depth
    if isinstance(value, list | tuple):
        for item in value:
            yield from walk(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from walk(key, depth + 1)
            yield from walk(item, depth + 1)
