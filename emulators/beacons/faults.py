"""Link faults: how a clean frame stream turns into what a cheap USB receiver really sends.

Faults are applied to encoded frames on their way to the pty, from a generator of their own
(seeded), so switching faults on never changes the simulated frames themselves, only the
bytes that carry them. Each fault can be injected for the next N frames
(:meth:`FaultInjector.inject`) or given a per-frame probability
(:meth:`FaultInjector.set_rate`) at run time.
"""

from __future__ import annotations

import enum
import random
from collections import Counter

from edgesdk.errors import ConfigError

__all__ = ["Fault", "FaultInjector"]


class Fault(enum.StrEnum):
    """What can go wrong between the receiver's radio and the gateway's serial port."""

    NOISE = "noise"  # junk bytes before a frame (a glitch; sometimes a false AA 55 sync)
    TRUNCATE = "truncate"  # the frame is cut short; the next frame follows at once
    BAD_CRC = "bad-crc"  # one byte after len is corrupted, so the CRC fails
    BURST = "burst"  # frames held back, then written all at once


class FaultInjector:
    """Applies faults to encoded frames; counts what it did in ``applied``."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self.rates: dict[Fault, float] = dict.fromkeys(Fault, 0.0)
        self._queued: Counter[Fault] = Counter()
        self.applied: Counter[Fault] = Counter()
        self._held = bytearray()
        self._hold_left = 0

    def inject(self, fault: Fault | str, count: int = 1) -> None:
        """Apply ``fault`` to the next ``count`` frames (for a burst: hold that many frames
        and write them together)."""
        fault = _fault(fault)
        if count < 1:
            raise ConfigError(f"must be >= 1 (got {count})", key="count")
        self._queued[fault] += count

    def set_rate(self, fault: Fault | str, rate: float) -> None:
        """Apply ``fault`` to each frame with probability ``rate`` (0 switches it off)."""
        fault = _fault(fault)
        if not 0.0 <= rate <= 1.0:
            raise ConfigError(f"must be in 0..1 (got {rate})", key=f"faults.{fault}")
        self.rates[fault] = rate

    def _due(self, fault: Fault) -> bool:
        if self._queued[fault] > 0:
            self._queued[fault] -= 1
            return True
        rate = self.rates[fault]
        return rate > 0.0 and self._rng.random() < rate

    def noise(self) -> bytes:
        """1-16 random bytes; one time in four with a false sync and length inside."""
        rng = self._rng
        junk = bytearray(rng.randbytes(rng.randint(1, 16)))
        if rng.random() < 0.25:
            at = rng.randrange(len(junk) + 1)
            junk[at:at] = b"\xaa\x55" + bytes([rng.randint(0, 40)])
        return bytes(junk)

    def apply(self, frame: bytes) -> bytes:
        """The bytes to write now for ``frame`` (empty while a burst is being held)."""
        rng = self._rng
        out = bytearray()
        if self._due(Fault.NOISE):
            self.applied[Fault.NOISE] += 1
            out += self.noise()
        if self._due(Fault.TRUNCATE):
            self.applied[Fault.TRUNCATE] += 1
            frame = frame[: rng.randrange(3, len(frame))]  # at least sync and len survive
        elif self._due(Fault.BAD_CRC):
            self.applied[Fault.BAD_CRC] += 1
            damaged = bytearray(frame)
            damaged[rng.randrange(3, len(frame))] ^= 1 << rng.randrange(8)
            frame = bytes(damaged)
        out += frame
        if self._hold_left == 0 and self._queued[Fault.BURST] > 0:
            self._hold_left = self._queued.pop(Fault.BURST)
            self.applied[Fault.BURST] += 1
        elif self._hold_left == 0 and self._due(Fault.BURST):
            self._hold_left = rng.randint(5, 20)
            self.applied[Fault.BURST] += 1
        if self._hold_left > 0:
            self._held += out
            self._hold_left -= 1
            if self._hold_left > 0:
                return b""
            out, self._held = self._held, bytearray()
        return bytes(out)

    def release(self) -> bytes:
        """Whatever a burst still holds (written when the port goes away or closes)."""
        held, self._held, self._hold_left = bytes(self._held), bytearray(), 0
        return held


def _fault(value: Fault | str) -> Fault:
    try:
        return Fault(value)
    except ValueError:
        names = ", ".join(f.value for f in Fault)
        raise ConfigError(f"unknown fault {value!r}", key="fault", fix=f"one of {names}") from None
