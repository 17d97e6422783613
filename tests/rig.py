"""What the reliability rig did in this run, printed in pytest's terminal summary.

Rig tests call :func:`report` with their counts (kills, batches, readings shed); every
emulator records the device faults it injected when it stops (:func:`faults`, wired in
``tests/conftest.py``). Plain ``pytest`` (CI) then ends with a section listing both, so the
counts are in the test output without ``-s``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

LINES: list[str] = []
FAULTS: dict[str, Counter[str]] = {}


def report(line: str) -> None:
    """Print ``line`` now (seen with ``-s``) and in the end-of-run summary."""
    print(line)
    LINES.append(line)


def faults(emulator: str, counts: Mapping[str, int]) -> None:
    """Add the faults an emulator injected, by kind."""
    FAULTS.setdefault(emulator, Counter()).update({k: v for k, v in counts.items() if v})


def summary() -> list[str]:
    """The lines of the terminal summary (empty when the rig did nothing)."""
    out = list(LINES)
    for emulator, counts in sorted(FAULTS.items()):
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))
        line = f"device faults injected by the {emulator} emulators: {sum(counts.values())}"
        out.append(f"{line} ({kinds})" if kinds else line)
    return out
