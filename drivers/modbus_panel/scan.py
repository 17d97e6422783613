"""Which status registers of one unit to read this poll: its installed points, and at times
the whole map.

A Notifier-style map gives every loop 159 detector and 159 module slots, and a panel
answers all of them; a slot with no device reads as the "point not present" event code
(FFh). Most loops use a fraction of their slots, so reading each status block only as far
as its last installed point (:meth:`~drivers.modbus_panel.profile.Profile.installed_part`)
saves requests and decoding on every poll. What keeps that safe:

- Every register that is not a point (zone words, panel status, heartbeat, counters) and
  every slot up to the last installed point of its block is read on every poll, so
  nothing that is installed is ever skipped, whatever its state.
- The whole map is read on the first poll, after every reconnect (a new link
  generation), when an offline unit answers again, every ``interval`` seconds, and at once
  (in the same poll) when a zone word, the panel status word or an event counter changes:
  a device in an unread slot that alarms or faults shows there first (its zone goes into
  fire, the panel word shows fire or trouble, the counters count the event).
- So a device installed in an unread slot is seen within ``interval`` at worst, and in the
  poll that shows anything it raises in the zone, panel or counter registers.

Profiles without a not-present code (2-bit encodings, where ``00`` is a normal device) and
``interval`` 0 read the whole map on every poll.

The same plan serves analog blocks (a word equal to its channel's ``absent`` word is an
empty slot; they have no watched registers): the poller keeps a second scan per unit over
its analog map, and reads that map whole also whenever the status scan of the unit has
completed a whole-map read or seen a watched register change since (:attr:`PointScan.scans`
and :attr:`PointScan.news` are counts, so another reader can tell either happened): a newly
installed detector shows in the status map first.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from typing import Any

from drivers.modbus_panel.profile import Block, Profile, Role

__all__ = ["PointScan"]

_WATCHED = frozenset({Role.ZONE, Role.PANEL_STATUS, Role.COUNTER})


class PointScan:
    """The blocks of one unit to read on each poll (see the module doc).

    The poller asks :meth:`plan` at the start of a poll, hands every block it read to
    :meth:`note`, reads :meth:`rest` when :attr:`changed` says the panel showed something
    new outside the polled points, and calls :meth:`done` once the poll read every block.
    """

    def __init__(self, profile: Profile, blocks: Sequence[Block], interval: float) -> None:
        self.blocks = list(blocks)  # the whole map
        self.polled = self.blocks  # what a poll between scans reads
        self.changed = False  # a watched register changed during this poll
        self.scans = 0  # whole-map reads completed
        self.news = 0  # watched-register changes seen (the analog scan follows both counts)
        self._profile = profile
        self._interval = interval
        self._trims = interval > 0 and all(profile.trimmable(b.kind) for b in self.blocks)
        self._next = -math.inf  # loop time the next whole-map read is due
        self._generation = -1  # the link generation the last whole-map read was on
        # map blocks read whole in this poll, by identity (a block read whole is the map's
        # own Block object: installed_part returns it unchanged), with their words
        self._whole = {id(b) for b in self.blocks}
        self._read: dict[int, Sequence[int]] = {}
        self._watch: dict[tuple[int, int], Callable[[Sequence[int]], Any]] = {}
        self._seen: dict[tuple[int, int], Any] = {}
        for block in self.blocks:
            layout = profile.block_registers(block)
            marks = [i for i, reg in enumerate(layout) if reg is not None and reg.role in _WATCHED]
            if marks:
                self._watch[(block.function, block.address)] = operator.itemgetter(*marks)

    def plan(self, now: float, generation: int, *, whole: bool = False) -> list[Block]:
        """The blocks to read in the poll starting ``now`` (loop time) on link
        ``generation``: the whole map when a scan is due or ``whole`` asks for it."""
        self._read.clear()
        self.changed = False
        if whole or not self._trims or generation != self._generation or now >= self._next:
            return self.blocks
        return self.polled

    def note(self, block: Block, words: Sequence[int]) -> None:
        """A block read in this poll, with its words."""
        key = (block.function, block.address)
        watch = self._watch.get(key)
        if watch is not None:
            value = watch(words)
            before = self._seen.get(key, value)
            self._seen[key] = value
            if value != before:
                self.changed = True
                self.news += 1
        if self._trims and id(block) in self._whole:
            self._read[id(block)] = words

    def rest(self) -> list[Block]:
        """The blocks of the map not read whole in this poll (for a scan at once)."""
        return [b for b in self.blocks if id(b) not in self._read]

    def done(self, now: float, generation: int) -> None:
        """The poll read every block it planned; if that covered the whole map, poll the
        installed part of it from now on, until the next scan."""
        self.changed = False
        read = self._read
        if not self._trims or len(read) < len(self.blocks):
            return
        parts = (self._profile.installed_part(b, read[id(b)]) for b in self.blocks)
        # never nothing: a unit must answer something each poll to be seen online
        self.polled = [p for p in parts if p is not None] or self.blocks[:1]
        self._next = now + self._interval
        self._generation = generation
        self.scans += 1
        read.clear()
