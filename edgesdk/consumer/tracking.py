"""Pluggable sequence tracking for consumers, and the merge step for shared subscriptions.

A :class:`Tracker` turns verified batches into anomalies. Two come with the SDK:

* :class:`LocalTracker` — exact for the batches *this* process sees: every data stream
  gets an :class:`~edgesdk.verify.SequenceTracker` (duplicates, conflicts, gaps accounted
  against ``lost`` notices, reordering, broken chains, boot regressions), all sharing one
  :class:`~edgesdk.verify.LostLedger` so notices carried on the ``state`` stream count too.
  Use it when one consumer receives every batch of the streams it tracks (one consumer per
  gateway topic subtree).
* :class:`DedupeTracker` — for one member of an MQTT shared subscription, which sees only
  a share of each stream: it reports what one member *can* know (duplicates, conflicts,
  broken chains between neighbours it saw) and never gaps. :func:`merge` takes the outcomes
  of all members afterwards and computes the exact picture.

The ``state`` stream is a retained last-value topic: intermediate values are not kept by
the broker, so for it only growth is checked (:class:`_StateTrack`), never gaps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from edgesdk.batch import Batch
from edgesdk.consumer.outcomes import ConsumerAnomaly, Outcome, Repeated, Verified
from edgesdk.verify import (
    BootRegression,
    BrokenChain,
    Conflict,
    Duplicate,
    Gap,
    LostLedger,
    Reordered,
    SequenceTracker,
    StreamKey,
    TrackerSummary,
)

__all__ = [
    "STATE_STREAM",
    "DedupeTracker",
    "LocalTracker",
    "MergeReport",
    "Tracker",
    "merge",
]

STATE_STREAM = "state"


class Tracker(Protocol):
    """What a consumer needs from sequence tracking (implement it over a shared store to
    track one stream across several consumer processes)."""

    def observe(self, batch: Batch) -> list[ConsumerAnomaly]:
        """Account for one verified batch; the anomalies it reveals."""
        ...

    def open_gaps(self) -> list[Gap]:
        """Seqs missing right now (``accounted`` recomputed against every notice)."""
        ...


class _StateTrack:
    """One gateway's ``state`` stream: seq must grow; no gaps (intermediate values of a
    retained topic are legitimately never delivered)."""

    def __init__(self, key: StreamKey, window: int) -> None:
        self.key = key
        self._window = window
        self._seen: dict[int, tuple[bytes, int]] = {}  # seq -> (digest, boot), insertion order
        self.highest = 0

    def observe(self, batch: Batch) -> list[ConsumerAnomaly]:
        seq = batch.seq
        known = self._seen.get(seq)
        if known is not None:
            if known[0] != batch.digest:
                return [Conflict(self.key, seq, known[0], batch.digest)]
            if seq == self.highest:
                return [Repeated(self.key, seq)]
            return [Duplicate(self.key, seq, batch.digest)]
        out: list[ConsumerAnomaly] = []
        if seq < self.highest:
            out.append(Reordered(self.key, seq, filled_gap=False))
        elif self.highest and self._seen[self.highest][1] > batch.boot:
            top = self._seen[self.highest]
            out.append(BootRegression(self.key, seq, batch.boot, self.highest, top[1]))
        self.highest = max(self.highest, seq)
        self._seen[seq] = (batch.digest, batch.boot)
        if len(self._seen) > self._window:
            oldest = min(self._seen)  # rare: a state stream grows by ~2 per connection
            if oldest != self.highest:
                del self._seen[oldest]
        return out


class _DedupeStream:
    """One data stream as seen by one member of a shared subscription: a bounded memory of
    (seq -> digest, prev); no notion of what is missing."""

    def __init__(self, key: StreamKey, window: int) -> None:
        self.key = key
        self._window = window
        self._seen: dict[int, tuple[bytes, bytes]] = {}  # insertion order = age
        self.batches = 0

    def observe(self, batch: Batch) -> list[ConsumerAnomaly]:
        self.batches += 1
        seq = batch.seq
        known = self._seen.get(seq)
        if known is not None:
            if known[0] == batch.digest:
                return [Duplicate(self.key, seq, batch.digest)]
            return [Conflict(self.key, seq, known[0], batch.digest)]
        out: list[ConsumerAnomaly] = []
        below = self._seen.get(seq - 1)
        if below is not None and batch.prev != below[0]:
            out.append(BrokenChain(self.key, seq, below[0], batch.prev))
        above = self._seen.get(seq + 1)
        if above is not None and above[1] != batch.digest:
            out.append(BrokenChain(self.key, seq + 1, batch.digest, above[1]))
        self._seen[seq] = (batch.digest, batch.prev)
        if len(self._seen) > self._window:
            del self._seen[next(iter(self._seen))]
        return out


class LocalTracker:
    """Exact tracking of every stream this process receives (see the module docstring).

    ``first_seq=None`` (the default) starts each stream at the first seq observed, for a
    consumer that joins live gateways; ``first_seq=1`` also reports the first batches of a
    stream as missing. Digests are remembered for the last ``window`` seqs of a stream.
    Not thread-safe: one consumer task feeds it.
    """

    def __init__(self, *, first_seq: int | None = None, window: int = 4096) -> None:
        self.first_seq = first_seq
        self.window = window
        self._ledger = LostLedger()
        self._streams: dict[StreamKey, SequenceTracker] = {}
        self._states: dict[StreamKey, _StateTrack] = {}

    def observe(self, batch: Batch) -> list[ConsumerAnomaly]:
        key = (batch.site, batch.gw, batch.stream)
        if batch.stream == STATE_STREAM:
            self._ledger.record(batch)
            state = self._states.get(key)
            if state is None:
                state = self._states[key] = _StateTrack(key, self.window)
            return state.observe(batch)
        tracker = self._streams.get(key)
        if tracker is None:
            tracker = self._streams[key] = SequenceTracker(
                key, first_seq=self.first_seq, window=self.window, ledger=self._ledger
            )
        return list(tracker.observe(batch))

    def open_gaps(self) -> list[Gap]:
        return [g for k in sorted(self._streams) for g in self._streams[k].open_gaps()]

    def streams(self) -> list[StreamKey]:
        return sorted([*self._streams, *self._states])

    def summary(self) -> dict[StreamKey, TrackerSummary]:
        """Per data stream counts (see :class:`~edgesdk.verify.TrackerSummary`)."""
        return {k: self._streams[k].summary() for k in sorted(self._streams)}


class DedupeTracker:
    """A shared-subscription member's tracker: duplicates, conflicts and broken chains
    between neighbours it saw; **never gaps** (other members got the missing seqs).

    Replays older than the last ``window`` seqs a member saw of a stream go unnoticed by
    that member; :func:`merge` over all members' outcomes still counts them.
    """

    def __init__(self, *, window: int = 4096) -> None:
        self.window = window
        self._streams: dict[StreamKey, _DedupeStream] = {}
        self._states: dict[StreamKey, _StateTrack] = {}

    def observe(self, batch: Batch) -> list[ConsumerAnomaly]:
        key = (batch.site, batch.gw, batch.stream)
        if batch.stream == STATE_STREAM:
            state = self._states.get(key)
            if state is None:
                state = self._states[key] = _StateTrack(key, self.window)
            return state.observe(batch)
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = _DedupeStream(key, self.window)
        return stream.observe(batch)

    def open_gaps(self) -> list[Gap]:
        return []


BatchKey = tuple[str, str, str, int]
"""(site, gw, stream, seq)."""


@dataclass(frozen=True)
class MergeReport:
    """The exact picture over the outcomes of several consumers (see :func:`merge`).

    ``unique`` holds one batch per (site, gw, stream, seq); ``duplicates`` counts the
    copies beyond the first (by stream); ``anomalies`` are what one exact tracker reported
    when fed every batch in seq order, and ``gaps`` the seqs still missing at the end.
    """

    delivered: int
    per_input: tuple[int, ...]
    unique: Mapping[BatchKey, Batch]
    duplicates: Mapping[str, int]
    anomalies: tuple[ConsumerAnomaly, ...]
    gaps: tuple[Gap, ...]

    @property
    def conflicts(self) -> list[Conflict]:
        return [a for a in self.anomalies if isinstance(a, Conflict)]

    @property
    def broken_chain(self) -> list[BrokenChain]:
        return [a for a in self.anomalies if isinstance(a, BrokenChain)]

    @property
    def unexplained(self) -> list[Gap]:
        return [g for g in self.gaps if not g.accounted]

    def seqs(self, site: str, gw: str, stream: str) -> list[int]:
        """The distinct seqs delivered for one stream, ascending."""
        return sorted(k[3] for k in self.unique if k[:3] == (site, gw, stream))


def merge(
    outcomes: Iterable[Iterable[Outcome]], *, first_seq: int | None = None, window: int = 1 << 20
) -> MergeReport:
    """Combine the outcomes of the members of a shared subscription into the exact
    dedupe/gap picture: every :class:`Verified` batch is fed, per stream in seq order, to
    one :class:`LocalTracker` (``first_seq`` as there). Rejected outcomes are ignored here:
    count them from each member's :meth:`Consumer.summary`.
    """
    batches: list[Batch] = []
    per_input: list[int] = []
    for member in outcomes:
        mine = [o.batch for o in member if isinstance(o, Verified)]
        per_input.append(len(mine))
        batches.extend(mine)
    batches.sort(key=lambda b: (b.site, b.gw, b.stream, b.seq))
    tracker = LocalTracker(first_seq=first_seq, window=window)
    unique: dict[BatchKey, Batch] = {}
    duplicates: dict[str, int] = {}
    anomalies: list[ConsumerAnomaly] = []
    for b in batches:
        key = (b.site, b.gw, b.stream, b.seq)
        if key in unique and unique[key].digest == b.digest:
            duplicates[b.stream] = duplicates.get(b.stream, 0) + 1
        unique.setdefault(key, b)
        anomalies.extend(a for a in tracker.observe(b) if not isinstance(a, Duplicate | Repeated))
    return MergeReport(
        delivered=len(batches),
        per_input=tuple(per_input),
        unique=unique,
        duplicates=duplicates,
        anomalies=tuple(anomalies),
        gaps=tuple(tracker.open_gaps()),
    )
