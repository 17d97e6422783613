"""The fuzz suite's counting fixture and the totals in pytest's terminal summary.

Each fuzz test asks the ``fuzz`` fixture for one :class:`~tests.reliability.fuzzkit.FuzzCount`
per target; at teardown its line (``fuzz beacon-frames: 3000 inputs, 0 failures``) is
printed (shown with ``-s``), recorded as a junit property, and kept for the summary that
plain ``pytest`` prints at the end of the run.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator

import pytest

from tests.reliability.fuzzkit import RESULTS, FuzzCount

_CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, object, None]:
    """Remember whether a test's call failed, for its fuzz lines."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call":
        item.stash[_CALL_FAILED] = bool(report.failed)


@pytest.fixture
def fuzz(
    request: pytest.FixtureRequest, record_property: Callable[[str, object], None]
) -> Iterator[Callable[[str], FuzzCount]]:
    """A factory of input counters; the long (x10) variant's names end in ``(x10)``."""
    made: list[FuzzCount] = []
    callspec = getattr(request.node, "callspec", None)
    scale = callspec.params.get("scale", 1) if callspec is not None else 1
    suffix = f" (x{scale})" if scale != 1 else ""

    def start(name: str) -> FuzzCount:
        count = FuzzCount(name + suffix)
        made.append(count)
        return count

    yield start
    failed = request.node.stash.get(_CALL_FAILED, False)
    for count in made:
        count.test_failed = failed
        print(count.line())
        record_property(f"fuzz {count.name}", f"{count.inputs} inputs, {count.failures} failures")
        RESULTS.append(count)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line per fuzz target and the total, in every run that fuzzed something."""
    if not RESULTS:
        return
    terminalreporter.section("fuzz: hostile inputs tried")
    for count in RESULTS:
        terminalreporter.write_line(count.line())
    inputs = sum(c.inputs for c in RESULTS)
    failures = sum(c.failures for c in RESULTS)
    terminalreporter.write_line(
        f"fuzz total: {inputs} inputs over {len(RESULTS)} targets, {failures} failures"
    )
