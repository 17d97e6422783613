"""SequenceTracker / StreamTracker: duplicates, conflicts, gaps, reordering, chains, boots."""

from __future__ import annotations

import threading

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from edgesdk import batch
from edgesdk.batch import ZERO_DIGEST, Batch, BatchHeader, LostRange
from edgesdk.verify import (
    BootRegression,
    BrokenChain,
    Conflict,
    Duplicate,
    Gap,
    Reordered,
    SequenceTracker,
    Stale,
    StreamTracker,
    TrackerSummary,
)

KEY = ed25519.Ed25519PrivateKey.generate()
T0 = 1767225600.0
TEL = ("site1", "gw1", "telemetry")


def make(
    seq: int,
    prev: bytes | None = None,
    *,
    stream: str = "telemetry",
    gw: str = "gw1",
    boot: int = 1,
    lost: tuple[LostRange, ...] = (),
    t: float = T0,
) -> Batch:
    if prev is None:
        prev = ZERO_DIGEST if seq == 1 else bytes([seq % 256]) * 32
    header = BatchHeader("site1", gw, stream, seq, prev, boot, t)
    return batch.decode(batch.seal(header, key=KEY, lost=lost))


def chain(n: int, *, stream: str = "telemetry", boot: int = 1) -> list[Batch]:
    """Batches 1..n of one stream, correctly chained."""
    out: list[Batch] = []
    prev = ZERO_DIGEST
    for seq in range(1, n + 1):
        b = make(seq, prev, stream=stream, boot=boot)
        out.append(b)
        prev = b.digest
    return out


def test_in_order_stream_has_no_anomalies() -> None:
    tracker = SequenceTracker(TEL)
    for b in chain(6):
        assert tracker.observe(b) == []
    assert tracker.finish() == []
    assert tracker.summary() == TrackerSummary(batches=6, highest=6)


def test_duplicate_and_conflict() -> None:
    tracker = SequenceTracker(TEL)
    b1, b2 = chain(2)
    tracker.observe(b1)
    tracker.observe(b2)
    assert tracker.observe(b2) == [Duplicate(TEL, 2, b2.digest)]
    other = make(2, b1.digest, t=T0 + 1)  # same seq, different content
    assert other.digest != b2.digest
    assert tracker.observe(other) == [Conflict(TEL, 2, b2.digest, other.digest)]
    s = tracker.summary()
    assert (s.batches, s.duplicates, s.conflicts) == (4, 1, 1)


def test_gap_then_late_batches_fill_it() -> None:
    b = chain(6)
    tracker = SequenceTracker(TEL)
    tracker.observe(b[0])
    tracker.observe(b[1])
    assert tracker.observe(b[5]) == [Gap(TEL, 3, 5, accounted=False)]
    assert tracker.open_gaps() == [Gap(TEL, 3, 5, False)]
    assert tracker.summary().missing == 3
    # seq 4 arrives late: fills the middle; chain is fine on both sides? 3 and 5 are unseen
    assert tracker.observe(b[3]) == [Reordered(TEL, 4, filled_gap=True)]
    assert tracker.open_gaps() == [Gap(TEL, 3, 3, False), Gap(TEL, 5, 5, False)]
    assert tracker.observe(b[2]) == [Reordered(TEL, 3, True)]
    assert tracker.observe(b[4]) == [Reordered(TEL, 5, True)]
    assert tracker.finish() == []
    s = tracker.summary()
    assert (s.gaps, s.reordered, s.missing, s.broken_chain) == (1, 3, 0, 0)


def test_gap_from_the_start_depends_on_first_seq() -> None:
    b = chain(5)
    strict = SequenceTracker(TEL)
    assert strict.observe(b[3]) == [Gap(TEL, 1, 3, False)]
    joining = SequenceTracker(TEL, first_seq=None)
    assert joining.observe(b[3]) == []
    assert joining.observe(b[4]) == []
    # a batch from before we joined is old news, not a gap fill
    assert joining.observe(b[1]) == [Reordered(TEL, 2, filled_gap=False)]
    assert joining.finish() == []


def test_lost_notice_in_the_same_stream_accounts_for_the_gap() -> None:
    tracker = SequenceTracker(TEL)
    b1 = make(1)
    b2 = make(2, b1.digest, lost=(LostRange("telemetry", 3, 4, "store-full"),))
    tracker.observe(b1)
    tracker.observe(b2)
    assert tracker.observe(make(6)) == [Gap(TEL, 3, 4, True), Gap(TEL, 5, 5, False)]
    s = tracker.summary()
    assert (s.missing, s.missing_accounted, s.gaps) == (3, 2, 2)


def test_lost_notice_in_the_gap_closing_batch_counts() -> None:
    tracker = SequenceTracker(TEL)
    tracker.observe(make(1))
    late = make(5, lost=(LostRange("telemetry", 2, 4, "expired"),))
    assert tracker.observe(late) == [Gap(TEL, 2, 4, True)]


def test_lost_notice_from_another_stream_of_the_gateway() -> None:
    streams = StreamTracker()
    state = ("site1", "gw1", "state")
    notice = make(1, stream="state", lost=(LostRange("telemetry", 2, 3, "store-full"),))
    assert streams.observe(notice) == []
    streams.observe(make(1))
    assert streams.observe(make(4)) == [Gap(TEL, 2, 3, True)]
    # the same notice sent by another gateway accounts for nothing here
    other_gw = make(1, gw="gw2", stream="state", lost=(LostRange("telemetry", 5, 6, "x"),))
    streams.observe(other_gw)
    assert streams.observe(make(7)) == [Gap(TEL, 5, 6, False)]
    assert streams.streams() == [("site1", "gw1", "state"), TEL, ("site1", "gw2", "state")]
    summary = streams.summary()
    assert summary[state].batches == 1
    assert summary[TEL].missing == 4
    assert summary[TEL].missing_accounted == 2


def test_notice_after_the_gap_is_reflected_at_finish() -> None:
    streams = StreamTracker()
    streams.observe(make(1))
    assert streams.observe(make(5)) == [Gap(TEL, 2, 4, False)]
    streams.observe(make(1, stream="state", lost=(LostRange("telemetry", 2, 4, "expired"),)))
    assert streams.open_gaps() == [Gap(TEL, 2, 4, True)]
    assert streams.finish() == [Gap(TEL, 2, 4, True)]


def test_broken_chain_both_directions() -> None:
    b = chain(4)
    tracker = SequenceTracker(TEL)
    tracker.observe(b[0])
    forged = make(2, b"\x99" * 32)
    assert tracker.observe(forged) == [BrokenChain(TEL, 2, b[0].digest, b"\x99" * 32)]
    # seq 4 arrives before seq 3; then seq 3 whose digest 4 does not point at
    tracker2 = SequenceTracker(TEL)
    tracker2.observe(b[0])
    tracker2.observe(b[1])
    tracker2.observe(b[3])
    imposter3 = make(3, b[1].digest, t=T0 + 5)
    got = tracker2.observe(imposter3)
    assert Reordered(TEL, 3, True) in got
    assert BrokenChain(TEL, 4, imposter3.digest, b[3].prev) in got
    # the genuine seq 3 would then be a conflict, and the chain is whole
    assert tracker2.observe(b[2]) == [Conflict(TEL, 3, imposter3.digest, b[2].digest)]
    tracker3 = SequenceTracker(TEL)
    for x in (b[0], b[1], b[3]):
        tracker3.observe(x)
    assert tracker3.observe(b[2]) == [Reordered(TEL, 3, True)]
    assert tracker3.summary().broken_chain == 0


def test_boot_counter_going_backwards() -> None:
    tracker = SequenceTracker(TEL)
    b1 = make(1, boot=5)
    tracker.observe(b1)
    b2 = make(2, b1.digest, boot=4)
    assert tracker.observe(b2) == [BootRegression(TEL, 2, 4, 1, 5)]
    # boots may rise
    b3 = make(3, b2.digest, boot=9)
    assert tracker.observe(b3) == []
    # a late batch with a higher boot than a later seq: the later seq regressed
    b5 = make(5, boot=9)
    tracker.observe(b5)
    b4 = make(4, b3.digest, boot=10)
    got = tracker.observe(b4)
    assert BootRegression(TEL, 5, 9, 4, 10) in got
    assert tracker.summary().boot_regressions == 2


def test_window_forgets_old_digests() -> None:
    tracker = SequenceTracker(TEL, window=4)
    b = chain(10)
    for x in b:
        tracker.observe(x)
    assert tracker.observe(b[1]) == [Stale(TEL, 2)]
    assert tracker.observe(b[8]) == [Duplicate(TEL, 9, b[8].digest)]
    # a gap below the window can still be filled
    tracker2 = SequenceTracker(TEL, window=2)
    tracker2.observe(b[0])
    tracker2.observe(b[4])
    for x in b[5:]:
        tracker2.observe(x)
    assert tracker2.open_gaps() == [Gap(TEL, 2, 4, False)]
    assert tracker2.observe(b[2]) == [Reordered(TEL, 3, True)]
    assert tracker2.summary().stale == 0
    with pytest.raises(ValueError, match="window"):
        SequenceTracker(TEL, window=0)


def test_tracker_refuses_another_streams_batch() -> None:
    with pytest.raises(ValueError, match="fed to"):
        SequenceTracker(TEL).observe(make(1, stream="alarm"))


def test_stream_tracker_is_thread_safe() -> None:
    streams = StreamTracker()
    per_stream = {name: chain(15, stream=name) for name in ("alarm", "telemetry", "state")}
    anomalies: list[object] = []

    def feed(items: list[Batch]) -> None:
        for item in items:
            anomalies.extend(streams.observe(item))

    threads = [threading.Thread(target=feed, args=(items,)) for items in per_stream.values()]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=30)
    assert not any(th.is_alive() for th in threads)
    assert anomalies == []
    assert {k: s.highest for k, s in streams.summary().items()} == {
        ("site1", "gw1", name): 15 for name in per_stream
    }
