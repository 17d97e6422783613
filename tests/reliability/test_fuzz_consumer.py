"""Fuzzing the consumer's sans-I/O core: ``Inspector.feed(topic, payload)`` with anything.

Documented contract (``edgesdk/consumer``): every message becomes typed outcomes —
:class:`Verified`, :class:`Rejected` (with a reason from ``REJECT_REASONS``) or
:class:`KeyLearned` — and nothing is dropped silently, so ``feed`` itself never raises.
Each example drives a fresh inspector (trusting the site CA, with gw2's certificate
pinned) through a sequence of births, batches, hostile payloads and odd topics, with the
clock moving in between, then renders every outcome as ``edgectl verify`` does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from edgesdk.consumer import REJECT_REASONS, Inspector, KeyLearned, Rejected, SiteTrust, Verified
from edgesdk.consumer.render import outcome_lines, outcome_records, summary_lines
from tests.reliability.batches import hostile, signed_messages
from tests.reliability.fuzzkit import SCALES, FuzzCount, fuzz_settings
from tests.reliability.signed import (
    CA_CERT,
    GW1,
    GW2,
    P256,
    STRANGER,
    T_VALID,
    BatchKey,
    certificate,
    der,
    payload_map,
    seal_map,
)

_CERTS = {
    "good": der(certificate(GW1)),
    "other-ca": der(certificate(GW1, other_ca=True)),
    "wrong-uri": der(certificate(GW1, uri="urn:edge:hq:gw2")),
    "site-ca-uri": der(certificate(GW1, uri="urn:edge:hq:ca")),
    "is-ca": der(certificate(GW1, is_ca=True)),
    "stranger": der(certificate(STRANGER)),
    "p256": der(certificate(P256, serial=3)),
    "truncated": der(certificate(GW1))[:60],
    "junk": b"not DER",
}
_PINNED = certificate(GW2, uri="urn:edge:hq:gw2", serial=4)
_SIGNERS: dict[str, BatchKey] = {"gw1": GW1, "gw2": GW2, "p256": P256, "stranger": STRANGER}
_TIMES = st.one_of(
    st.sampled_from([T_VALID, 0.0, 1e300, 1e17, 2.0**63, 253402300800.0, 4e9, 1.5e9]),
    st.floats(min_value=0, allow_nan=False, allow_infinity=False),
)


@st.composite
def births(draw: st.DrawFn) -> tuple[str, bytes]:
    """A retained birth on a state topic, its certificate and sealing time picked to hurt."""
    gw = draw(st.sampled_from(["gw1", "gw2"]))
    birth: dict[str, Any] = {"boot": 1, "version": "1.0", "devices": []}
    cert = draw(st.sampled_from([*sorted(_CERTS), "none"]))
    if cert != "none":
        birth["cert"] = _CERTS[cert]
    previous = draw(st.lists(st.sampled_from(sorted(_CERTS)), max_size=3))
    birth["previous_certs"] = [_CERTS[p] for p in previous]
    if draw(st.integers(0, 4)) == 0:
        birth[draw(st.sampled_from(sorted(birth)))] = draw(hostile)
    seq = draw(st.integers(1, 4))
    body = payload_map(gw=gw, stream="state", seq=seq, t=draw(_TIMES), extra={"birth": birth})
    key = _SIGNERS[draw(st.sampled_from(["gw1", "gw1", "gw2", "p256", "stranger"]))]
    return f"edge/v1/hq/{gw}/state", seal_map(body, key)


@st.composite
def batches(draw: st.DrawFn) -> tuple[str, bytes]:
    """A plain batch of a valid stream (the chain deliberately not kept)."""
    gw = draw(st.sampled_from(["gw1", "gw2"]))
    stream = draw(st.sampled_from(["telemetry", "state", "alarms"]))
    body = payload_map(gw=gw, stream=stream, seq=draw(st.integers(1, 6)), t=draw(_TIMES))
    key = _SIGNERS[draw(st.sampled_from(sorted(_SIGNERS)))]
    return f"edge/v1/hq/{gw}/{stream}", seal_map(body, key)


_valid_topics = st.builds(
    "edge/v1/{}/{}/{}".format,
    st.sampled_from(["hq", "other"]),
    st.sampled_from(["gw1", "gw2", "x"]),
    st.sampled_from(["telemetry", "state", "alarms"]),
)
_odd_topics = st.one_of(
    st.text(max_size=30),
    st.lists(st.text(max_size=6), max_size=7).map("/".join),
    st.sampled_from(["", "/", "edge/v1", "edge/v1/hq/gw1", "edge/v1/hq/gw1/state/x"]),
    st.sampled_from(["edge/v1/+/#/a", "edge/v1/hq/gw1/\x00", "edge/v1/hq/gw1/\ud800"]),
    st.sampled_from(["edge//v1/hq/gw1/state", "x" * 70000]),
)
_messages = st.one_of(
    births(),
    batches(),
    st.tuples(_valid_topics | _odd_topics, signed_messages().map(lambda c: c[0])),
    st.tuples(_odd_topics, births().map(lambda b: b[1])),
)

# one step: feed (topic, payload, retained), or let the clock run and expire parked messages
_steps = st.one_of(
    st.tuples(st.just("feed"), _messages, st.booleans()),
    st.tuples(st.just("tick"), st.floats(0, 10), st.just(False)),
)


def _check(outcomes: list[Any], insp: Inspector) -> None:
    keys = insp.trust.verifier.keys
    for o in outcomes:
        assert isinstance(o, Verified | Rejected | KeyLearned), f"untyped outcome {o!r}"
        if isinstance(o, Rejected):
            assert o.reason in REJECT_REASONS and o.detail
        elif isinstance(o, Verified):
            where = insp.parse_topic(o.topic)
            assert where == (o.batch.site, o.batch.gw, o.batch.stream)
            assert o.batch.kid in keys
        else:
            assert o.kid in keys
        for line in outcome_lines(o, now=T_VALID):
            assert isinstance(line, str)
        for record in outcome_records(o, now=T_VALID):
            json.dumps(record)  # what `edgectl verify --json` prints
    assert insp.parked <= insp.max_parked


@SCALES
def test_fuzz_consumer_inspector(scale: int, fuzz: Callable[[str], FuzzCount]) -> None:
    count = fuzz("consumer-inspector")
    seen = dict.fromkeys(["Verified", "Rejected", "KeyLearned"], 0)

    @fuzz_settings(500, scale)
    @given(
        st.lists(_steps, min_size=1, max_size=6),
        st.sampled_from([0.0, 0.5, 2.0]),
        st.integers(0, 3),
    )
    def prop(steps: list[tuple[str, Any, bool]], grace: float, max_parked: int) -> None:
        with count.example():
            now = [1000.0]
            insp = Inspector(
                SiteTrust([CA_CERT], pinned=[_PINNED]),
                unknown_key_grace=grace,
                max_parked=max_parked,
                clock=lambda: now[0],
            )
            outcomes: list[Any] = []
            fed = 0
            for kind, arg, retained in steps:
                if kind == "feed":
                    topic, payload = arg
                    out = insp.feed(topic, payload, retained=retained)
                    fed += 1
                else:
                    now[0] += arg
                    out = insp.expire()
                _check(out, insp)
                outcomes += out
            out = insp.flush()
            _check(out, insp)
            outcomes += out
            assert insp.parked == 0
            summary = insp.summary()
            assert summary.messages == fed
            assert all(isinstance(line, str) for line in summary_lines(summary))
            for o in outcomes:
                seen[type(o).__name__] += 1

    prop()
    assert all(seen.values()), f"the inputs missed a path: {seen}"
