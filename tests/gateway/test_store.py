"""The durable store: chain state, boot counter, lanes, retention and lost notices."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgesdk import batch
from edgesdk.batch import BatchHeader, LostRange
from edgesdk.errors import StoreError
from edgesdk.model import Event, EventState, Reading, Severity
from edgesdk.verify import Verifier
from gateway.store import Lane, SealRequest, Store
from tests import rig

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def sealer(
    header: BatchHeader,
    *,
    readings: Sequence[Reading],
    events: Sequence[Event],
    lost: Sequence[LostRange],
    extra: dict[str, Any] | None,
) -> bytes:
    return batch.seal(header, key=KEY, readings=readings, events=events, lost=lost, extra=extra)


def make_store(path: Path, **kw: Any) -> Store:
    s = Store(path, site="hq", gw="gw1", sealer=sealer, **kw)
    s.open()
    return s


def readings(n: int, t0: float = 1_700_000_000.0) -> list[Reading]:
    return [Reading("panel1", f"u1/l1/d{i:03d}/smoke", i * 0.01, "%/m", t0 + i) for i in range(n)]


def fire() -> Event:
    return Event("fire", Severity.FIRE, EventState.ACTIVE, "panel1", data={"zone": 1})


def verifier() -> Verifier:
    return Verifier({batch.kid_for(KEY.public_key()): KEY.public_key()})


def test_chain_boot_and_seq_survive_reopen(tmp_path: Path) -> None:
    s = make_store(tmp_path)
    assert s.boot == 1
    r1 = s.seal([SealRequest("telemetry", Lane.TELEMETRY, readings(3))]).stored[0]
    r2 = s.seal([SealRequest("telemetry", Lane.TELEMETRY, readings(2))]).stored[0]
    s.close()
    s = make_store(tmp_path)
    assert s.boot == 2
    r3 = s.seal([SealRequest("telemetry", Lane.TELEMETRY, readings(1))]).stored[0]
    b1, b2, b3 = (verifier().verify(r.message) for r in (r1, r2, r3))
    assert (b1.seq, b2.seq, b3.seq) == (1, 2, 3)
    assert b1.prev == bytes(32) and b2.prev == b1.digest and b3.prev == b2.digest
    assert (b1.boot, b3.boot) == (1, 2)
    assert [r.value for r in b1.readings] == [0.0, 0.01, 0.02]
    s.close()


def test_alarm_lane_drains_first(tmp_path: Path) -> None:
    s = make_store(tmp_path)
    for _ in range(5):
        s.seal([SealRequest("telemetry", Lane.TELEMETRY, readings(10))])
    alarm = s.seal([SealRequest("alarm", Lane.ALARM, events=[fire()])]).stored[0]
    assert s.pending(Lane.ALARM) == [alarm]
    assert [p.seq for p in s.pending(Lane.TELEMETRY, limit=3)] == [1, 2, 3]
    assert [p.seq for p in s.pending(Lane.TELEMETRY, after=s.pending(Lane.TELEMETRY)[2].id)] == [
        4,
        5,
    ]
    assert s.ack([alarm]) == 1
    assert s.pending(Lane.ALARM) == [] and s.ack([alarm]) == 0
    st = s.stats()
    assert st.batches == {"alarm": 0, "evidence": 0, "telemetry": 5}
    s.close()


def test_retention_sheds_oldest_telemetry_with_signed_lost_notice(tmp_path: Path) -> None:
    s = make_store(tmp_path, telemetry_max_bytes=4096)
    sizes = []
    for _ in range(12):
        res = s.seal([SealRequest("telemetry", Lane.TELEMETRY, readings(20))])
        sizes.append(len(res.stored[0].message))
    assert s.shed_batches > 0 and s.shed_readings == 20 * s.shed_batches
    waiting = s.pending(Lane.TELEMETRY, limit=100)
    assert sum(len(w.message) for w in waiting) <= 4096 + max(sizes)
    # the dropped seqs are exactly 1..shed, and a notice waits for the next batch... or rode
    # on one already: collect every lost notice carried by what is still stored
    carried = [lr for w in waiting for lr in verifier().verify(w.message).lost]
    pending = s.pending_lost()
    covered = {q for lr in [*carried, *pending] for q in range(lr.first, lr.last + 1)}
    assert covered == set(range(1, s.shed_batches + 1))
    assert all(lr.reason == "retention" and lr.stream == "telemetry" for lr in carried)
    # an alarm is never shed, and carries any notice still pending
    a = s.seal([SealRequest("alarm", Lane.ALARM, events=[fire()])]).stored[0]
    assert verifier().verify(a.message).lost == tuple(pending)
    assert s.pending_lost() == []
    s.close()


def test_age_cap_sheds_old_telemetry(tmp_path: Path) -> None:
    now = [1000.0]
    s = make_store(tmp_path, telemetry_max_age=60, clock=lambda: now[0])
    s.seal([SealRequest("telemetry", Lane.TELEMETRY, readings(5))])
    now[0] += 61
    res = s.seal([SealRequest("telemetry", Lane.TELEMETRY, readings(5))])
    assert res.shed == [LostRange("telemetry", 1, 1, "retention")]
    b = verifier().verify(res.stored[0].message)
    assert b.lost == (LostRange("telemetry", 1, 1, "retention"),)
    s.close()


def test_store_refuses_other_identity_and_newer_schema(tmp_path: Path) -> None:
    make_store(tmp_path).close()
    other = Store(tmp_path, site="hq", gw="gw2", sealer=sealer)
    with pytest.raises(StoreError, match="belongs to hq/gw1"):
        other.open()
    import sqlite3

    db = sqlite3.connect(tmp_path / "store.sqlite")
    db.execute("PRAGMA user_version=99")
    db.close()
    with pytest.raises(StoreError, match="schema 99, newer"):
        make_store(tmp_path)


CRASHER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {root!r})
    from tests.gateway.test_store import make_store, readings, fire
    from gateway.store import Lane, SealRequest
    from pathlib import Path
    s = make_store(Path({path!r}))
    print("ready", flush=True)
    i = 0
    while i < 100000:
        i += 1
        reqs = [SealRequest("telemetry", Lane.TELEMETRY, readings(5))]
        if i % 7 == 0:
            reqs.append(SealRequest("alarm", Lane.ALARM, events=[fire()]))
        res = s.seal(reqs)
        if i % 3 == 0:
            s.ack(res.stored[:1])
    """
)


def test_kill_9_never_reuses_seq_or_breaks_chain(tmp_path: Path) -> None:
    root = str(Path(__file__).resolve().parents[2])
    script = CRASHER.format(root=root, path=str(tmp_path))
    kills = 5
    for k in range(kills):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(0.15 + 0.07 * k)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()
    s = make_store(tmp_path)
    assert s.boot == kills + 1
    v = verifier()
    kept: dict[str, int] = {}
    for stream, lane in (("telemetry", Lane.TELEMETRY), ("alarm", Lane.ALARM)):
        stored = s.pending(lane, limit=1_000_000)
        batches = [v.verify(x.message) for x in stored]
        seqs = [b.seq for b in batches]
        assert seqs == sorted(set(seqs)), "a seq was reused"
        by_seq = {b.seq: b for b in batches}
        for b in batches:  # every stored neighbour pair chains
            if b.seq - 1 in by_seq:
                assert b.prev == by_seq[b.seq - 1].digest
        nxt = s.seal([SealRequest(stream, lane, readings(1))]).stored[0]
        assert nxt.seq == s.next_seq(stream) - 1
        assert not seqs or nxt.seq > max(seqs)
        if seqs and nxt.seq - 1 == max(seqs):
            assert v.verify(nxt.message).prev == by_seq[max(seqs)].digest
        kept[stream] = len(seqs)
    s.close()
    rig.report(
        f"store crash: {kills} kill -9 while sealing, {kept['telemetry']} telemetry and "
        f"{kept['alarm']} alarm batches kept, no seq reused, every kept pair chained"
    )


def test_a_group_commit_larger_than_the_wal_limit_leaves_no_large_wal(tmp_path: Path) -> None:
    from gateway.store import _WAL_TRIM

    s = make_store(tmp_path)
    wal = tmp_path / "store.sqlite-wal"
    try:
        # one transaction of ~10 MB of messages: beyond any automatic checkpoint
        big = [SealRequest(f"t{i}", Lane.TELEMETRY, readings(999)) for i in range(300)]
        stored = s.seal(big).stored
        assert sum(len(r.message) for r in stored) > 2 * _WAL_TRIM
        assert wal.stat().st_size <= _WAL_TRIM
        # and nothing was lost by truncating it: every batch is there after a reopen
        s.close()
        s = make_store(tmp_path)
        assert s.stats().batches["telemetry"] == 300
        assert [s.next_seq(f"t{i}") for i in (0, 299)] == [2, 2]
    finally:
        s.close()
