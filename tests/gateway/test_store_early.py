"""Early streams: batches signed at once and published before their commit, with seqs
reserved durably ahead so that a crash never reuses a seq nor breaks a chain."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from edgesdk.batch import LostRange
from edgesdk.verify import StreamTracker
from gateway.store import _RESERVE, MIGRATIONS, SCHEMA_VERSION, UNCONFIRMED, Lane, SealRequest
from tests import rig
from tests.gateway.test_store import fire, make_store, readings, verifier

ALARM = SealRequest("alarm", Lane.ALARM, events=[fire()])


def test_prepared_batches_chain_and_commit_in_order(tmp_path: Path) -> None:
    s = make_store(tmp_path, early_streams=("alarm",))
    try:
        p1, p2 = s.prepare(ALARM), s.prepare(ALARM)
        assert (p1.seq, p2.seq, p1.early, p2.early) == (1, 2, True, True)
        b1, b2 = (verifier().verify(p.message) for p in (p1, p2))
        assert b1.prev == bytes(32) and b2.prev == b1.digest and b2.events[0].kind == "fire"
        assert s.next_seq("alarm") == 1  # signed, not committed
        with pytest.raises(Exception, match="out of order"):
            s.commit([p2])
        stored = s.commit([p1, p2]).stored
        assert [(x.seq, x.lane) for x in stored] == [(1, Lane.ALARM), (2, Lane.ALARM)]
        assert s.commit([p2]).stored == []  # committed already: skipped, not doubled
        assert [x.seq for x in s.pending(Lane.ALARM)] == [1, 2]
        with pytest.raises(ValueError, match="early stream"):
            s.seal([ALARM])
        with pytest.raises(ValueError, match="not an early stream"):
            s.prepare(SealRequest("telemetry", Lane.TELEMETRY, readings(1)))
    finally:
        s.close()


def test_only_reserved_seqs_may_leave_before_their_commit(tmp_path: Path) -> None:
    s = make_store(tmp_path, early_streams=("alarm",))
    try:
        ahead = [s.prepare(ALARM) for _ in range(_RESERVE + 2)]  # seqs 1..RESERVE+2
        assert [p.early for p in ahead] == [True] * _RESERVE + [False, False]
        s.commit(ahead[:2])  # reserved now through 2 + RESERVE
        late = s.prepare(ALARM)
        assert late.seq == _RESERVE + 3 and not late.early
        s.commit([*ahead[2:], late])  # each commit moves the reservation along
        assert s.prepare(ALARM).early
    finally:
        s.close()


def test_a_clean_close_gives_the_reservation_back(tmp_path: Path) -> None:
    s = make_store(tmp_path, early_streams=("alarm",))
    first = s.commit([s.prepare(ALARM)]).stored[0]
    s.close()
    s = make_store(tmp_path, early_streams=("alarm",))
    try:
        assert s.unconfirmed == [] and s.pending_lost() == []
        nxt = s.prepare(ALARM)
        assert nxt.seq == 2 and verifier().verify(nxt.message).prev == (
            verifier().verify(first.message).digest
        )
    finally:
        s.close()


def _die(s: object) -> None:
    """Drop the store as a killed process would: no close, so no reservation given back."""
    db = s._db  # type: ignore[attr-defined]
    db.close()
    s._db = None  # type: ignore[attr-defined]


def test_an_unclean_stop_declares_the_reserved_seqs_and_resumes_past_them(
    tmp_path: Path,
) -> None:
    s = make_store(tmp_path, early_streams=("alarm",))
    committed = s.commit([s.prepare(ALARM)]).stored[0]
    early = [s.prepare(ALARM) for _ in range(3)]  # "published", never committed
    _die(s)
    s = make_store(tmp_path, early_streams=("alarm",))
    try:
        last = 1 + _RESERVE + 1
        assert s.unconfirmed == [LostRange("alarm", 2, last, UNCONFIRMED)]
        assert s.pending_lost() == s.unconfirmed
        resumed = s.prepare(ALARM)
        assert resumed.seq == last + 1 and resumed.early
        s.commit([resumed])
        carrier = s.seal([SealRequest("telemetry", Lane.TELEMETRY, readings(1))]).stored[0]
        v = verifier()
        tracker = StreamTracker()
        anomalies = []
        for m in [committed.message, *(p.message for p in early), resumed.message]:
            anomalies += tracker.observe(v.verify(m))
        anomalies += tracker.observe(v.verify(carrier.message))
        kinds = {type(a).__name__ for a in anomalies}
        assert not kinds & {"Conflict", "BrokenChain", "BootRegression"}, anomalies
        assert [g for g in tracker.finish() if not g.accounted] == []
        assert [(g.first, g.last) for g in tracker.finish()] == [(5, last)]
    finally:
        s.close()


def test_an_unclean_stop_before_any_commit(tmp_path: Path) -> None:
    s = make_store(tmp_path, early_streams=("alarm",))
    s.prepare(ALARM)
    _die(s)
    s = make_store(tmp_path, early_streams=("alarm",))
    try:
        assert s.unconfirmed == [LostRange("alarm", 1, _RESERVE + 1, UNCONFIRMED)]
        b = verifier().verify(s.commit([s.prepare(ALARM)]).stored[0].message)
        assert b.seq == _RESERVE + 2 and b.prev != bytes(32)
    finally:
        s.close()


def test_a_version_1_store_migrates(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "store.sqlite", isolation_level=None)
    db.executescript(MIGRATIONS[0])
    db.execute("PRAGMA user_version=1")
    db.execute("INSERT INTO meta VALUES ('site', 'hq'), ('gw', 'gw1'), ('boot', '4')")
    db.execute("INSERT INTO streams VALUES ('alarm', 8, ?)", (bytes(range(32)),))
    db.close()
    s = make_store(tmp_path, early_streams=("alarm",))
    try:
        assert s.boot == 5 and s.unconfirmed == []
        p = s.prepare(ALARM)
        assert p.seq == 8 and verifier().verify(p.message).prev == bytes(range(32))
        (version,) = s._require().execute("PRAGMA user_version").fetchone()
        assert version == SCHEMA_VERSION == 2
    finally:
        s.close()


CRASHER = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, {root!r})
    from tests.gateway.test_store import make_store, readings, fire
    from gateway.store import Lane, SealRequest
    from pathlib import Path
    s = make_store(Path({path!r}), early_streams=("alarm",))
    out = os.open({wire!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    print("ready", flush=True)
    pending, held, i = [], False, 0
    while i < 100000:
        i += 1
        p = s.prepare(SealRequest("alarm", Lane.ALARM, events=[fire()]))
        if p.early and not held:
            os.write(out, p.message.hex().encode() + b"\\n")  # the broker has it
        else:
            held = True  # sent from the store after its commit, like the uplink does
        pending.append(p)
        if i % {every} == 0:
            s.commit(pending)
            pending, held = [], False
        if i % 5 == 0:
            s.seal([SealRequest("telemetry", Lane.TELEMETRY, readings(2))])
    """
)


def test_kill_9_while_alarms_leave_before_their_commits(tmp_path: Path) -> None:
    """Ten kill -9 of a process that signs alarm batches, "publishes" the reserved ones
    (appends them to a file, which survives the kill) and commits them in groups (of 3,
    or of 20: past the reservation some wait). Everything published plus everything the
    store kept, seen by a consumer: no seq reused, no chain broken, every gap declared."""
    root = str(Path(__file__).resolve().parents[2])
    wire = tmp_path / "wire.hex"
    data = tmp_path / "data"
    rng = random.Random(11)
    kills = 10
    for k in range(kills):
        script = CRASHER.format(root=root, path=str(data), wire=str(wire), every=(3, 20)[k % 2])
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.05, 0.4))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()
    s = make_store(data, early_streams=("alarm",))
    try:
        assert len(s.unconfirmed) == 1 and s.boot == kills + 1
        s.commit([s.prepare(ALARM)])
        s.seal([SealRequest("telemetry", Lane.TELEMETRY, readings(1))])  # carries notices
        kept = [x.message for lane in Lane for x in s.pending(lane, limit=1_000_000)]
    finally:
        s.close()
    text = wire.read_text()
    published = [bytes.fromhex(line) for line in text.split("\n")[:-1]]
    v = verifier()
    tracker = StreamTracker()
    kinds: list[str] = []
    for m in published + kept:
        kinds += [type(a).__name__ for a in tracker.observe(v.verify(m))]
    alarm = tracker.summary()[("hq", "gw1", "alarm")]
    rig.report(
        f"early-publish crash: {kills} kills, {len(published)} alarm batches published "
        f"before commit, {len(kept)} batches kept, alarm seqs up to {alarm.highest}, "
        f"{alarm.missing} declared unconfirmed"
    )
    assert len(published) > kills
    assert "Conflict" not in kinds, "a seq was reused with different content"
    assert "BrokenChain" not in kinds and "BootRegression" not in kinds
    assert [g for g in tracker.finish() if not g.accounted] == []
    assert alarm.missing > 0 and alarm.missing == alarm.missing_accounted
