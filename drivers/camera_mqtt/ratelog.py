"""Logging that a flood of bad messages cannot turn into a flood of log lines.

Each key (a fault kind such as ``malformed``) may log ``burst`` lines per ``per`` seconds;
the rest are counted and summarised in one line when the next window opens. The keys are
a small fixed set, so the table stays small.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RateLimitedLog"]


@dataclass
class _Window:
    start: float
    logged: int = 0
    suppressed: int = 0


class RateLimitedLog:
    """``warning(key, msg, *args)``: at most ``burst`` lines per key per ``per`` seconds."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        per: float = 10.0,
        burst: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.per = per
        self.burst = burst
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    def warning(self, key: str, msg: str, *args: object) -> bool:
        """Log unless this key is over its budget; True when a line was written."""
        now = self._clock()
        window = self._windows.get(key)
        if window is None or now - window.start >= self.per:
            if window is not None and window.suppressed:
                self.logger.warning(
                    "%d more %s messages suppressed in %.0f s",
                    window.suppressed,
                    key,
                    now - window.start,
                )
            window = self._windows[key] = _Window(now)
        if window.logged >= self.burst:
            window.suppressed += 1
            return False
        window.logged += 1
        self.logger.warning(msg, *args)
        return True
