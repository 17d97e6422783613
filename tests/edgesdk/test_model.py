from __future__ import annotations

import dataclasses

import pytest

from edgesdk.model import Event, EventKind, EventState, Reading, Severity


def test_severity_order_most_urgent_first() -> None:
    order = [
        Severity.FIRE,
        Severity.ALARM,
        Severity.PREALARM,
        Severity.SUPERVISORY,
        Severity.TROUBLE,
        Severity.INFO,
    ]
    shuffled = [order[i] for i in (4, 1, 5, 0, 3, 2)]
    assert sorted(shuffled) == order
    assert Severity.FIRE < Severity.INFO
    assert Severity.TROUBLE > Severity.ALARM
    assert [s.rank for s in order] == [0, 1, 2, 3, 4, 5]
    assert all(s.is_alarm_lane for s in order[:-1])
    assert not Severity.INFO.is_alarm_lane


def test_reading_is_immutable_and_validated() -> None:
    r = Reading("panel1", "loop1/d001/smoke", 0.12, "%/m", time=1_700_000_000.5)
    assert r.senml_name == "panel1/loop1/d001/smoke"
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.value = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="device id"):
        Reading("bad/device", "x", 1)
    with pytest.raises(ValueError, match="reading name"):
        Reading("dev", "-x", 1)
    with pytest.raises(TypeError, match="reading value"):
        Reading("dev", "x", [1, 2])  # type: ignore[arg-type]


def test_event_accepts_strings_and_freezes_data() -> None:
    data = {"zone": 3}
    e = Event(
        kind=EventKind.FIRE,
        severity="fire",
        state="active",  # type: ignore[arg-type]
        source="panel1",
        time=1.0,
        data=data,
    )
    assert e.severity is Severity.FIRE
    assert e.state is EventState.ACTIVE
    data["zone"] = 4
    assert e.data["zone"] == 3
    with pytest.raises(TypeError):
        e.data["zone"] = 5  # type: ignore[index]
    with pytest.raises(ValueError, match="is not a valid Severity"):
        Event(kind="x", severity="urgent", state="active", source="s")  # type: ignore[arg-type]


def test_event_with_state_keeps_the_occurrence() -> None:
    e = Event(
        kind="man-down",
        severity=Severity.ALARM,
        state=EventState.ACTIVE,
        source="beacons",
        time=10.0,
        data={"beacon": 7},
    )
    c = e.with_state(EventState.CLEARED, time=20.0, data={"by": "motion"})
    assert (c.id, c.kind, c.severity, c.source) == (e.id, e.kind, e.severity, e.source)
    assert c.state is EventState.CLEARED and c.time == 20.0
    assert dict(c.data) == {"beacon": 7, "by": "motion"}
    assert e.id != Event(kind="x", severity=Severity.INFO, state=EventState.ACTIVE, source="s").id


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_reading_rejects_non_finite_values_and_times(bad: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        Reading("dev", "x", bad)
    with pytest.raises(ValueError, match="finite"):
        Reading("dev", "x", 1.0, time=bad)


def test_reading_full_name_fits_what_consumers_accept() -> None:
    from edgesdk.model import MAX_NAME_LENGTH

    Reading("d" * 100, "n" * (MAX_NAME_LENGTH - 101), 1)  # "<device>/<name>" = 256 chars
    with pytest.raises(ValueError, match="at most 256"):
        Reading("d" * 100, "n" * (MAX_NAME_LENGTH - 100), 1)
