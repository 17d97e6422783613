"""The live register store of one emulated panel (one Modbus unit id), transport-free.

Values are computed from the model on every read through the profile's codec (nothing is
copied into a register image that could go stale), and writes to the command or point
registers drive the model's commands. One :meth:`UnitStore.handle` serves both the TCP
server (as a pymodbus ``SimDevice`` action) and the RTU-on-pty server, so both transports
answer alike, count alike and inject the same faults.

Fault injection, switchable at run time (:meth:`UnitStore.set_fault`): ``timeout`` (no
reply), ``exception`` (reply with a chosen exception code), ``crc`` (RTU replies with a
corrupted CRC; TCP has no CRC and replies normally), ``delay`` (reply late), ``drop``
(close the TCP connections; no reply on RTU). A fault applies to every request, or to the
next ``count`` requests.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException

from drivers.modbus_panel.profile import (
    BlockKind,
    PanelCommand,
    PointStatus,
    Profile,
    Register,
    Role,
    Table,
)
from edgesdk.errors import CommandError
from emulators.panel.model import Panel

__all__ = ["CORRUPT_REPLY", "TRANSPORT", "Fault", "FaultKind", "UnitStore", "no_reply"]

TRANSPORT: contextvars.ContextVar[str] = contextvars.ContextVar("panel_transport", default="tcp")
"""Which server is asking ("tcp" or "rtu"); the RTU server sets it for its requests."""

CORRUPT_REPLY: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "panel_corrupt_reply", default=False
)
"""Set by :meth:`UnitStore.handle` when the RTU reply to this request must get a bad CRC."""

_TABLE_OF = {3: Table.HOLDING, 6: Table.HOLDING, 16: Table.HOLDING, 23: Table.HOLDING}
_TABLE_OF[4] = Table.INPUT
_BIT_FUNCTIONS = frozenset({1, 2, 5, 15})
_BLOCK_CACHE = 256  # distinct (table, address, count) reads remembered per model version


class FaultKind(enum.StrEnum):
    NONE = "none"
    TIMEOUT = "timeout"
    EXCEPTION = "exception"
    CRC = "crc"
    DELAY = "delay"
    DROP = "drop"


@dataclass(slots=True)
class Fault:
    kind: FaultKind
    code: int = ExcCodes.DEVICE_FAILURE
    delay: float = 0.5
    remaining: int | None = None  # None: every request


def no_reply() -> NoSuchIdException:
    """The exception that makes both servers send nothing for a request.

    pymodbus' request handler, with ``ignore_missing_devices=True``, answers nothing when
    the datastore raises NoSuchIdException (a documented behaviour we reuse for timeouts);
    the RTU server does the same.
    """
    return NoSuchIdException("fault injection: no reply")


class UnitStore:
    """The registers of one panel, computed from ``panel`` through ``profile``."""

    def __init__(
        self,
        unit: int,
        profile: Profile,
        panel: Panel,
        *,
        on_drop: Callable[[], None] | None = None,
    ) -> None:
        self.unit = unit
        self.profile = profile
        self.panel = panel
        self.on_drop = on_drop
        self.fault: Fault | None = None
        self.counters: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self._map = profile.registers
        self._echo: dict[int, int] = {}
        self._encoded: dict[tuple[PointStatus | None, ...], int] = {}
        self._blocks: dict[tuple[Table, int, int], list[int]] = {}
        self._version = -1
        # status coverage as bit sets over PDU addresses, one per table: a "complete status
        # read" is counted each time every status register of the loops this panel has
        # (read_blocks(loops=panel.loops)) has been served once
        self._status_mask = dict.fromkeys(Table, 0)
        for (table, address), reg in self._map.items():
            in_panel = all(p is None or p.loop <= panel.loops for p in reg.points)
            if reg.kind is BlockKind.STATUS and in_panel:
                self._status_mask[table] |= 1 << address
        self._status_total = sum(m.bit_count() for m in self._status_mask.values())
        self._covered = dict.fromkeys(Table, 0)
        self._covered_count = 0

    # -- faults -------------------------------------------------------------------------
    def set_fault(
        self,
        kind: FaultKind | str,
        *,
        code: int = ExcCodes.DEVICE_FAILURE,
        delay: float = 0.5,
        count: int | None = None,
    ) -> None:
        """Inject ``kind`` into every request (or the next ``count``); "none" clears."""
        fk = FaultKind(kind)
        if fk is FaultKind.EXCEPTION and code not in {int(c) for c in ExcCodes}:
            valid = ", ".join(str(int(c)) for c in ExcCodes)
            raise CommandError(f"exception code {code} is not a Modbus exception ({valid})")
        if delay < 0 or (count is not None and count < 1):
            raise CommandError("delay must be >= 0 and count >= 1")
        self.fault = None if fk is FaultKind.NONE else Fault(fk, code, delay, count)

    def _take_fault(self) -> Fault | None:
        f = self.fault
        if f is None:
            return None
        if f.kind is FaultKind.CRC and TRANSPORT.get() != "rtu":
            return None  # TCP has no CRC to corrupt: reply normally
        if f.remaining is not None:
            f.remaining -= 1
            if f.remaining <= 0:
                self.fault = None
        self.injected[f.kind.value] += 1
        return f

    # -- the datastore ------------------------------------------------------------------
    async def handle(
        self, function: int, address: int, count: int, values: Sequence[int] | None
    ) -> list[int] | ExcCodes:
        """Serve one request: the words read, or an exception code for the reply.

        ``values`` is None for reads. Raises NoSuchIdException when no reply must be sent.
        """
        if values is None and function in (6, 23):
            # pymodbus reads back after a write to build the reply: not a new request
            if function == 6:
                return [self._echo.pop(address, 0)]
            return self._read(Table.HOLDING, address, count, count_it=False)
        self.counters["requests"] += 1
        fault = self._take_fault()
        if fault is not None:
            result = await self._apply(fault)
            if result is not None:
                return result
        table = _TABLE_OF.get(function)
        if table is None:
            self.counters["exceptions"] += 1
            bits = function in _BIT_FUNCTIONS
            return ExcCodes.ILLEGAL_ADDRESS if bits else ExcCodes.ILLEGAL_FUNCTION
        if values is None:
            return self._read(table, address, count)
        return self._write(function, address, values)

    async def _apply(self, fault: Fault) -> ExcCodes | None:
        if fault.kind is FaultKind.TIMEOUT:
            raise no_reply()
        if fault.kind is FaultKind.DROP:
            if self.on_drop is not None:
                self.on_drop()
            raise no_reply()
        if fault.kind is FaultKind.EXCEPTION:
            return ExcCodes(fault.code)
        if fault.kind is FaultKind.DELAY:
            await asyncio.sleep(fault.delay)
        elif fault.kind is FaultKind.CRC:
            CORRUPT_REPLY.set(True)
        return None

    def _read(
        self, table: Table, address: int, count: int, *, count_it: bool = True
    ) -> list[int] | ExcCodes:
        if self._version != self.panel.version:
            self._blocks.clear()
            self._version = self.panel.version
        key = (table, address, count)
        out = self._blocks.get(key)
        if out is None:
            # a poller reads the same blocks over and over: compute each once per change
            regs, out = self._map, []
            for a in range(address, address + count):
                reg = regs.get((table, a))
                if reg is None:
                    if count_it:
                        self.counters["exceptions"] += 1
                    return ExcCodes.ILLEGAL_ADDRESS
                out.append(self._word(reg))
            if len(self._blocks) < _BLOCK_CACHE:
                self._blocks[key] = out
        out = list(out)
        if count_it:
            self.counters["reads"] += 1
            self.counters["registers"] += count
            self._cover(table, address, count)
        return out

    def _write(self, function: int, address: int, values: Sequence[int]) -> ExcCodes | list[int]:
        commands = []
        for i, value in enumerate(values):
            if not self.profile.writable(Table.HOLDING, address + i):
                self.counters["exceptions"] += 1
                return ExcCodes.ILLEGAL_ADDRESS
            try:
                commands.append(self.profile.decode_write(address + i, value))
            except CommandError:
                self.counters["exceptions"] += 1
                return ExcCodes.ILLEGAL_VALUE
        for cmd in commands:  # all or nothing: every word was checked first
            if isinstance(cmd.command, PanelCommand):
                self.panel.command(cmd.command)
            elif cmd.point is not None:
                self.panel.point_command(cmd.point, cmd.command)
            self.counters["commands"] += 1
        self.counters["writes"] += 1
        if function == 6:
            self._echo[address] = values[0]
        return list(values)

    def _word(self, reg: Register) -> int:
        role, panel, profile = reg.role, self.panel, self.profile
        if role is Role.POINT or role is Role.ZONE:
            states = (
                tuple(panel.point_status(p) if p else None for p in reg.points)
                if role is Role.POINT
                else tuple(panel.zone_status(z) if z else None for z in reg.zones)
            )
            # few distinct states exist: encode each once (reads are the hot path)
            word = self._encoded.get(states)
            if word is None:
                word = self._encoded[states] = profile.encode_word(states)
            return word
        if role is Role.ANALOG:
            ch = profile.channel(reg.channel)
            point = reg.points[0]
            value = panel.analog(point, ch.quantity) if point is not None else None
            return profile.encode_analog(ch, value)
        if role is Role.PANEL_STATUS:
            return profile.encode_panel_status(panel.panel_status())
        if role is Role.HEARTBEAT:
            return panel.heartbeat
        if role is Role.COUNTER:
            return panel.counters.get(reg.name, 0) & 0xFFFF
        return 0  # the command register reads 0

    def _cover(self, table: Table, address: int, count: int) -> None:
        touched = (((1 << count) - 1) << address) & self._status_mask[table]
        if not touched:
            return
        self.counters["status_reads"] += 1
        new = touched & ~self._covered[table]
        self._covered[table] |= new
        self._covered_count += new.bit_count()
        if self._covered_count >= self._status_total:
            self.counters["status_cycles"] += 1
            self._covered = dict.fromkeys(Table, 0)
            self._covered_count = 0

    def snapshot(self) -> dict[str, object]:
        """Counters for the control API (and the benchmark)."""
        return {
            "unit": self.unit,
            **{k: self.counters[k] for k in _COUNTER_NAMES},
            "injected": dict(self.injected),
            "fault": None if self.fault is None else self.fault.kind.value,
        }


_COUNTER_NAMES = (
    "requests",
    "reads",
    "registers",
    "writes",
    "commands",
    "exceptions",
    "status_reads",
    "status_cycles",
)
