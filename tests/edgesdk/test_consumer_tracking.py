"""Trackers for one consumer and for members of a shared subscription, the merge step,
and the lines ``edgectl verify`` prints for each outcome."""

from __future__ import annotations

import datetime as dt
import json

from cryptography.hazmat.primitives.asymmetric import ed25519

from edgesdk import batch
from edgesdk.batch import LostRange
from edgesdk.consumer import (
    DedupeTracker,
    KeyLearned,
    LocalTracker,
    Rejected,
    Summary,
    Verified,
    merge,
)
from edgesdk.consumer.render import outcome_lines, outcome_records, summary_lines, utc
from edgesdk.verify import Gap
from tests.edgesdk.test_consumer_support import Chain, birth_extra, fire, reading

KEY = ed25519.Ed25519PrivateKey.generate()
TOPIC = "edge/v1/hq/gw1/telemetry"


def verified(messages: list[bytes], topic: str = TOPIC) -> list[Verified]:
    return [Verified(topic, batch.decode(m)) for m in messages]


def test_dedupe_tracker_never_reports_gaps_but_catches_replays() -> None:
    chain = Chain(KEY)
    msgs = [chain.next(readings=[reading(i)]) for i in range(6)]
    member = DedupeTracker()
    seen = [member.observe(batch.decode(m)) for m in msgs[::2]]  # seqs 1, 3, 5
    assert seen == [[], [], []] and member.open_gaps() == []
    (dup,) = member.observe(batch.decode(msgs[2]))
    assert dup.kind == "duplicate" and dup.seq == 3
    broken = Chain(KEY, seq=3, prev=bytes(range(32))).next(readings=[reading(7)])  # seq 4
    kinds = [a.kind for a in member.observe(batch.decode(broken))]
    assert kinds == ["broken-chain", "broken-chain"]  # 3 -> 4 and 4 -> 5 both disagree
    local = LocalTracker()
    assert [a.kind for m in msgs[::2] for a in local.observe(batch.decode(m))] == ["gap", "gap"]


def test_merge_finds_the_exact_picture_across_members() -> None:
    chain, state = Chain(KEY), Chain(KEY, stream="state")
    msgs = [chain.next(readings=[reading(i)]) for i in range(10)]
    births = [state.next(extra=birth_extra(None))]
    a = verified(msgs[0::2]) + verified(births, "edge/v1/hq/gw1/state")
    b = verified(msgs[1::2]) + verified(births, "edge/v1/hq/gw1/state")  # both see the state
    report = merge([a, b + verified(msgs[3:4])], first_seq=1)
    assert report.per_input == (6, 7) and report.delivered == 13
    assert report.seqs("hq", "gw1", "telemetry") == list(range(1, 11))
    assert report.duplicates == {"state": 1, "telemetry": 1}
    assert report.gaps == () and report.anomalies == ()
    # a batch nobody received is a gap; one a lost notice covers is accounted
    notice = state.next(lost=[LostRange("telemetry", 4, 4, "store-full")])
    holey = merge([verified(msgs[:3] + msgs[4:6] + msgs[7:])], first_seq=1)
    assert [(g.first, g.last, g.accounted) for g in holey.gaps] == [(4, 4, False), (7, 7, False)]
    covered = merge([verified(msgs[:3] + msgs[4:]), verified([notice], "edge/v1/hq/gw1/state")])
    assert covered.gaps == (Gap(("hq", "gw1", "telemetry"), 4, 4, True),)
    assert covered.unexplained == []
    # the first batches missing count only when streams are known to start at 1
    assert merge([verified(msgs[2:])]).gaps == ()
    assert [(g.first, g.last) for g in merge([verified(msgs[2:])], first_seq=1).gaps] == [(1, 2)]


def test_merge_reports_conflicts() -> None:
    msgs = [Chain(KEY).next(readings=[reading(1)]), Chain(KEY).next(readings=[reading(2)])]
    report = merge([verified(msgs[:1]), verified(msgs[1:])])
    assert [c.seq for c in report.conflicts] == [1] and report.duplicates == {}


def test_human_and_json_lines() -> None:
    t = 1795243201.0  # 2026-11-21T06:40:01Z
    alarm = Chain(KEY, stream="alarm").next(events=[fire()], t=t)
    ev = batch.decode(alarm).events[0]
    outcome = Verified("edge/v1/hq/gw1/alarm", batch.decode(alarm))
    (line,) = outcome_lines(outcome)
    assert line == f"{utc(ev.time)} hq/gw1 alarm#1 FIRE active panel1 fire {{zone: 2, point: 5}}"
    assert utc(t) == "2026-11-21T06:40:01Z"
    (rec,) = outcome_records(outcome)
    assert rec["type"] == "event" and rec["seq"] == 1 and rec["data"] == {"zone": 2, "point": 5}
    assert json.loads(json.dumps(rec)) == rec
    tele = Verified(TOPIC, batch.decode(Chain(KEY).next(readings=[reading(3)], t=t)))
    assert outcome_lines(tele)[0].endswith("hq/gw1 telemetry#1 panel1 zone3/temp = 23.0 Cel")
    rej = Rejected(TOPIC, "bad-signature", "bad signature", b"x")
    assert outcome_lines(rej, now=t) == [f"{utc(t)} REJECTED bad-signature {TOPIC}: bad signature"]
    assert outcome_records(rej, now=t)[0]["reason"] == "bad-signature"
    when = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    key = KeyLearned("edge/v1/hq/gw1/state", "hq", "gw1", b"\x01" * 16, "CN=x", when, when)
    assert "KEY learned key 0101" in outcome_lines(key, now=t)[0]
    assert outcome_records(key)[0]["kid"] == "01" * 16
    gap = Gap(("hq", "gw1", "telemetry"), 3, 4, False)
    text = outcome_lines(Verified(TOPIC, tele.batch, (gap,)))
    assert text[-1].endswith("GAP 3..4 (2 missing, unexplained)")
    assert outcome_records(Verified(TOPIC, tele.batch, (gap,)))[-1]["kind"] == "gap"


def test_summary_lines_name_every_counter() -> None:
    s = Summary(
        verified=5,
        rejected={"bad-signature": 1, "unknown-key": 2},
        duplicates=1,
        gaps=(Gap(("hq", "gw1", "telemetry"), 3, 4, False),),
    )
    text = "\n".join(summary_lines(s))
    assert "batches verified     5" in text
    assert "invalid              1 (bad-signature 1)" in text
    assert "unknown key          2" in text
    assert "duplicates           1 (replayed or redelivered)" in text
    assert "gaps unexplained     2 batches" in text and "hq/gw1/telemetry 3..4 UNEXPLAINED" in text
