"""Properties over random interleavings of readings, driver events, ticks and acks.

* nothing ever raises;
* a ``cleared`` or ``acknowledged`` event only ever names an ongoing occurrence, with its
  kind and severity, never earlier than its ``active`` event, at most one ack each;
* every ``active`` event has a fresh id, no event is stamped after ``now``;
* ``active()`` lists exactly the ongoing occurrences, once each;
* the events do not depend on how often ``tick`` runs (exact times, same events).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgesdk.model import Event, EventKind, EventState, Reading, Severity
from gateway.config import RulesConfig, ZoneMap
from gateway.rules import RuleEngine

T0 = 1_700_000_000.0
DEVICES: dict[str, float | None] = {"crew": 5.0, "panel1": 10.0, "cameras": None}
WEARER_KINDS = {
    EventKind.MAN_DOWN,
    EventKind.LOW_AIR,
    EventKind.HEART_RATE,
    EventKind.SKIN_TEMPERATURE,
    EventKind.AMBIENT_HEAT,
    EventKind.LOST_CONTACT,
}
FIELDS = [
    "motion",
    "scba_pressure",
    "rated_pressure",
    "heart_rate",
    "wearer_age",
    "skin_temp",
    "ambient_temp",
    "battery",
]

configs = st.builds(
    RulesConfig,
    heart_rate_duration=st.sampled_from([0.0, 5.0, 60.0]),
    lost_contact=st.sampled_from([15.0, 40.0]),
    crosscheck_window=st.sampled_from([10.0, 120.0]),
    zones=st.just(
        {
            "hall": ZoneMap(panel="panel1", panel_zones=[3], cameras=["cam1"]),
            "yard": ZoneMap(panel="panel1", camera_zones=["yard"]),
        }
    ),
)
TYPICAL: dict[str, list[float]] = {
    "motion": [0.0, 20.0, 100.0, 100.5, 500.0],
    "scba_pressure": [50.0, 66.0, 99.0, 100.0, 114.0, 115.0, 300.0],
    "rated_pressure": [0.0, 200.0, 300.0],
    "heart_rate": [120.0, 148.0, 150.0, 153.0, 154.0, 170.0],
    "wearer_age": [0, 30, 40, 200],
    "skin_temp": [37.0, 38.5, 39.0, 39.5],
    "ambient_temp": [100.0, 140.0, 145.0, 151.0, 200.0],
    "battery": [50.0],
}
ODD: list[object] = [True, "x", b"\x01", -3.5, 1e-300, 1e300]
readings = st.sampled_from(FIELDS).flatmap(
    lambda f: st.tuples(st.just(f), st.sampled_from([*TYPICAL[f], *TYPICAL[f], *ODD]))
)
delays = st.one_of(
    st.sampled_from([0.0, 0.25, 1.0, 1.0, 1.0, 5.0, 10.0, 15.0, 20.0, 30.0]), st.floats(0, 25)
)
STEPS: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    "reading": st.tuples(st.just("reading"), st.sampled_from([1, 2]), readings, st.floats(-20, 5)),
    "panel": st.tuples(
        st.just("panel"),
        st.sampled_from(["fire", "prealarm", "zone-fire"]),
        st.sampled_from(["p1", "p2"]),
        st.sampled_from([3, 4]),
        st.booleans(),
    ),
    "camera": st.tuples(
        st.just("camera"),
        st.sampled_from(["camera-smoke", "camera-fire"]),
        st.sampled_from(["c1", "c2"]),
        st.sampled_from(["cam1", "cam2"]),
        st.booleans(),
    ),
    "beacon": st.tuples(
        st.just("beacon"),
        st.sampled_from([1, 2, 3]),
        st.sampled_from(["distress", "beacon-joined"]),
    ),
    "noise": st.tuples(st.just("noise"), st.sampled_from(["u1/l1/d005/smoke", "receiver/uptime"])),
    "burst": st.tuples(  # one reading a second for up to 80 s: sustained conditions
        st.just("burst"), st.sampled_from([1, 2]), readings, st.integers(1, 80)
    ),
    "tick": st.tuples(st.just("tick")),
    "ack": st.tuples(st.just("ack"), st.integers(0, 8)),
}
# readings are most of the traffic
steps = st.sampled_from(["reading"] * 6 + ["burst"] * 2 + list(STEPS)).flatmap(STEPS.__getitem__)
scripts = st.lists(st.tuples(delays, steps), min_size=1, max_size=50).map(
    lambda script: expand(script)
)


def expand(script: list[tuple[float, tuple[Any, ...]]]) -> list[tuple[float, tuple[Any, ...]]]:
    """Bursts become one reading a second (the first after the step's own delay)."""
    out: list[tuple[float, tuple[Any, ...]]] = []
    for delay, step in script:
        if step[0] != "burst":
            out.append((delay, step))
            continue
        _, beacon, reading, count = step
        out += [(delay if i == 0 else 1.0, ("reading", beacon, reading, 0.0)) for i in range(count)]
    return out


def item(step: tuple[Any, ...], now: float) -> tuple[str, Reading | Event] | None:
    """The (device, item) a script step feeds, or None for ticks and acks."""
    what = step[0]
    if what == "reading":
        _, beacon, (field, value), offset = step
        return "crew", Reading("crew", f"{beacon}/{field}", value, time=now + offset)
    if what == "noise":
        device = "panel1" if step[1].startswith("u1") else "crew"
        return device, Reading(device, step[1], 1.0, time=now)
    if what == "panel":
        _, kind, pid, zone, cleared = step
        state = EventState.CLEARED if cleared else EventState.ACTIVE
        sev = Severity.PREALARM if kind == "prealarm" else Severity.FIRE
        data = {"unit": 1, "zone": zone}
        return "panel1", Event(kind, sev, state, "panel1", now, data, id=f"{pid}-{kind}")
    if what == "camera":
        _, kind, cid, cam, cleared = step
        state = EventState.CLEARED if cleared else EventState.ACTIVE
        data = {"camera": cam, "zones": ["yard"] if cam == "cam2" else []}
        return "cameras", Event(kind, Severity.PREALARM, state, "cameras", now, data, id=cid)
    if what == "beacon":
        _, beacon, kind = step
        sev = Severity.ALARM if kind == "distress" else Severity.INFO
        data = {"beacon": beacon, "wearer_age": 35, "rated_pressure": 200.0}
        return "crew", Event(kind, sev, EventState.ACTIVE, "crew", now, data)
    return None


class Ledger:
    """What a consumer sees: the ongoing occurrences, checked event by event."""

    def __init__(self) -> None:
        self.ongoing: dict[str, Event] = {}
        self.acked: set[str] = set()
        self.ever: set[str] = set()

    def take(self, events: list[Event], now: float) -> None:
        for e in events:
            assert e.source == "gateway"
            assert "device" in e.data
            assert e.time <= now, (e, now)
            if e.kind in WEARER_KINDS:
                assert "beacon" in e.data
            if e.state is EventState.ACTIVE:
                assert e.id not in self.ever, "an occurrence id was activated twice"
                self.ever.add(e.id)
                self.ongoing[e.id] = e
                continue
            assert e.id in self.ongoing, f"{e.state} for an occurrence that is not ongoing"
            first = self.ongoing[e.id]
            assert (first.kind, first.severity) == (e.kind, e.severity)
            assert e.time >= first.time
            if e.state is EventState.CLEARED:
                del self.ongoing[e.id]
                self.acked.discard(e.id)
            else:
                assert e.id not in self.acked, "acknowledged twice"
                latched = e.kind == EventKind.MAN_DOWN and e.severity is Severity.ALARM
                if latched:
                    del self.ongoing[e.id]
                else:
                    self.acked.add(e.id)

    def matches(self, engine: RuleEngine) -> None:
        ids = [e.id for e in engine.active()]
        assert len(ids) == len(set(ids))
        assert set(ids) == set(self.ongoing)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs, script=scripts)
def test_random_interleavings_keep_the_occurrence_invariants(
    config: RulesConfig, script: list[tuple[float, tuple[Any, ...]]]
) -> None:
    engine = RuleEngine(config, devices=DEVICES)
    ledger = Ledger()
    now = T0
    ledger.take(engine.tick(now), now)
    for delay, step in script:
        now += delay
        fed = item(step, now)
        if fed is not None:
            ledger.take(engine.feed(fed[0], fed[1], now), now)
        elif step[0] == "tick":
            ledger.take(engine.tick(now), now)
        else:
            ongoing = [e.id for e in engine.active()]
            target = ongoing[step[1] % len(ongoing)] if ongoing else "unknown"
            ledger.take(engine.acknowledge(target, now), now)
        ledger.matches(engine)
    now += 100
    ledger.take(engine.tick(now), now)
    ledger.matches(engine)


def _signature(e: Event) -> tuple[Any, ...]:
    # ids are fresh per run; "alarm"/"prealarm" hold ids of the run's own events
    data = frozenset((k, v) for k, v in e.data.items() if k not in {"alarm", "prealarm"})
    return (e.kind, e.severity, e.state, e.time, data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs, script=scripts)
def test_events_do_not_depend_on_the_tick_cadence(
    config: RulesConfig, script: list[tuple[float, tuple[Any, ...]]]
) -> None:
    fine = RuleEngine(config, devices=DEVICES)
    coarse = RuleEngine(config, devices=DEVICES)
    got_fine: list[Event] = fine.tick(T0)
    got_coarse: list[Event] = coarse.tick(T0)
    now = T0
    grid = T0  # the fine engine ticks every 0.5 s
    for delay, step in script:
        now += delay
        while grid + 0.5 <= now:
            grid += 0.5
            got_fine += fine.tick(grid)
        fed = item(step, now)
        if fed is None:
            continue  # no ticks, no acks for the coarse engine
        got_fine += fine.feed(fed[0], fed[1], now)
        got_coarse += coarse.feed(fed[0], fed[1], now)
    now += 100
    got_fine += fine.tick(now)
    got_coarse += coarse.tick(now)
    assert Counter(map(_signature, got_fine)) == Counter(map(_signature, got_coarse))
