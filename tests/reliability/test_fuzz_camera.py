"""Fuzzing camera payloads (``drivers/camera_mqtt/parse.py``): Frigate, Axis and generic.

Documented contract: :meth:`Parser.parse` returns a typed message (:class:`Detection`,
:class:`Availability`, :class:`Snapshot`, :class:`Ignored`) or raises
:class:`~drivers.camera_mqtt.parse.PayloadError` (a ProtocolError) whose ``reason`` is one
of the documented counters. Payloads are built in each format's documented shape
(``docs/drivers.md``) with fields replaced by JSON of every kind (NaN and Infinity tokens,
numbers of thousands of digits, deep nesting), or are not JSON, not UTF-8, oversized.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, get_args

from hypothesis import given
from hypothesis import strategies as st

from drivers.camera_mqtt.config import LABELS, CameraMqttConfig
from drivers.camera_mqtt.parse import (
    Availability,
    Detection,
    Ignored,
    Parser,
    PayloadError,
    Reason,
    Snapshot,
    is_jpeg,
)
from tests.reliability.fuzzkit import SCALES, FuzzCount, expect, fuzz_settings
from tests.reliability.hostile import json_texts, json_values, mutants

MAX_PAYLOAD = 4096
SNAPSHOT_MAX = 1024

PARSER = Parser(
    CameraMqttConfig.model_validate(
        {
            "broker": "mqtt://127.0.0.1",
            "max_payload_bytes": MAX_PAYLOAD,
            "snapshot_max_bytes": SNAPSHOT_MAX,
            "groups": [
                {"format": "frigate", "cameras": ["lobby", "dock"], "labels": {"flame": "fire"}},
                {"format": "axis", "names": {"ACCC8E012345": "dock"}, "zones": {"dock": ["d"]}},
                {"format": "generic", "prefix": "cameras"},
                {"format": "generic", "prefix": "site/b/cams", "labels": {"rauch": "smoke"}},
            ],
        }
    ).groups,
    max_payload_bytes=MAX_PAYLOAD,
    snapshot_max_bytes=SNAPSHOT_MAX,
)

_names = st.one_of(
    st.sampled_from(["lobby", "dock", "ACCC8E012345", "plant_room", "", "+", "#"]),
    st.text(max_size=8),
)
_labels = st.one_of(st.sampled_from([*LABELS, "flame", "rauch", "car", ""]), st.text(max_size=6))
_ONVIF = [
    "tns1:Device/tnsaxis:Sensor/PIR",
    "tns1:VideoSource/MotionAlarm",
    "tns1:VideoSource/tnsaxis:Tampering",
    "tnsaxis:CameraApplicationPlatform/axis:ObjectAnalytics/Device1Scenario1",
    "tnsaxis:CameraApplicationPlatform/axis:FireSmokeDetection/Detection",
    "tns1:Other/Thing",
]
_states = st.sampled_from(["1", "0", "true", "false", "2", ""])

topics = st.one_of(
    st.sampled_from(["frigate/available", "frigate/events"]),
    st.builds("frigate/{}/{}/snapshot".format, _names, _labels),
    st.builds("{}/event/{}".format, _names, st.sampled_from(_ONVIF) | st.text(max_size=8)),
    st.builds("cameras/{}/event".format, _names),
    st.builds("site/b/cams/{}/event".format, _names),
    st.lists(st.text(max_size=6), max_size=6).map("/".join),
)


@st.composite
def _shaped(draw: st.DrawFn, shape: str) -> Any:
    """A payload object in format ``shape``, with some fields replaced by anything."""
    score = st.floats(0, 1) | json_values
    obj: dict[str, Any]
    if shape == "frigate":
        after = {
            "id": draw(st.text(max_size=8) | json_values),
            "camera": draw(_names),
            "label": draw(_labels),
            "score": draw(score),
            "top_score": draw(score),
            "current_zones": draw(st.lists(st.text(max_size=5), max_size=3) | json_values),
        }
        obj = {"type": draw(st.sampled_from(["new", "update", "end", "x"])), "after": after}
    elif shape == "axis":
        data = {
            draw(st.sampled_from(["state", "State", "tampering", "active", "class"])): draw(
                _states
            ),
            "classTypes": draw(st.sampled_from(["human", "car,human", "car", ""])),
            "class": draw(st.sampled_from(["fire", "smoke", "x", ""])),
            "score": draw(st.sampled_from(["0.9", "nan", "1e999", "-1", "x", "9" * 400])),
        }
        obj = {
            "timestamp": draw(st.floats() | json_values),
            "topic": draw(st.sampled_from(_ONVIF) | st.text(max_size=8)),
            "message": {"source": {}, "key": {}, "data": data},
        }
    else:
        obj = {
            "camera": draw(_names),
            "event": draw(_labels),
            "state": draw(st.sampled_from(["active", "inactive", "x"])),
            "score": draw(score),
            "time": draw(st.floats() | json_values),
            "zones": draw(st.lists(st.text(max_size=5), max_size=3) | json_values),
        }
    for _ in range(draw(st.sampled_from([0, 0, 1, 2]))):  # drop or replace a field
        key = draw(st.sampled_from(sorted(obj)))
        if draw(st.booleans()):
            del obj[key]
        else:
            obj[key] = draw(json_values)
    return obj


def _json(value: Any) -> bytes:
    try:
        return json.dumps(value).encode()  # NaN and Infinity tokens included
    except ValueError:  # an integer too long to print: send one too long to read
        return b'{"score": ' + b"9" * 5000 + b"}"


_CORPUS = [
    b'{"type": "new", "after": {"id": "1.5-ab", "camera": "lobby", "label": "fire", "score": 0.8}}',
    b'{"camera": "plant_room", "event": "smoke", "state": "active", "score": 0.87}',
    b'{"timestamp": 1.7e9, "topic": "tns1:VideoSource/MotionAlarm", '
    b'"message": {"source": {}, "key": {}, "data": {"State": "1"}}}',
]


def _encoded(shape: str) -> st.SearchStrategy[bytes]:
    return st.one_of(
        _shaped(shape).map(_json),
        _shaped(shape).map(lambda o: json.dumps(o).encode("utf-16")),  # json.loads reads UTF-16
    )


_junk = st.one_of(
    json_texts.map(lambda t: t.encode("utf-8", "surrogatepass")),
    mutants(_CORPUS),
    st.integers(MAX_PAYLOAD - 2, MAX_PAYLOAD + 2).map(lambda n: b"{" + b" " * (n - 2) + b"}"),
    st.binary(max_size=64),
)
_jpegs = st.one_of(
    st.binary(min_size=0, max_size=40).map(lambda b: b"\xff\xd8" + b + b"\xff\xd9"),
    st.sampled_from([b"", b"\xff\xd8\xff\xd9", b"\xff\xd8" + bytes(SNAPSHOT_MAX), b"GIF89a"]),
)
_availability = st.sampled_from([b"online", b" offline\n", b"", b"on", b"x" * 65])

messages = st.one_of(
    st.tuples(st.just("frigate/events"), _encoded("frigate") | _junk),
    st.tuples(st.just("frigate/available"), _availability | _junk),
    st.tuples(st.builds("frigate/{}/{}/snapshot".format, _names, _labels), _jpegs | _junk),
    st.tuples(
        st.builds("{}/event/{}".format, _names, st.sampled_from(_ONVIF) | st.text(max_size=8)),
        _encoded("axis") | _junk,
    ),
    st.tuples(
        st.builds(
            "{}/{}/event".format,
            st.sampled_from(["cameras", "site/b/cams"]) | st.text(max_size=6),
            _names,
        ),
        _encoded("generic") | _junk,
    ),
    st.tuples(topics, _junk | _jpegs | _availability),
)


_REASONS = set(get_args(Reason))


def _check(parsed: Any) -> None:
    assert isinstance(parsed, Detection | Availability | Snapshot | Ignored)
    if isinstance(parsed, Detection):
        assert parsed.label in LABELS and parsed.camera and parsed.ref
        for score in (parsed.score, parsed.top_score):
            assert score is None or (math.isfinite(score) and 0.0 <= score <= 1.0)
        assert all(isinstance(z, str) and z for z in parsed.zones)
    elif isinstance(parsed, Snapshot):
        assert is_jpeg(parsed.jpeg) and len(parsed.jpeg) <= SNAPSHOT_MAX
        assert parsed.label in ("fire", "smoke")
    elif isinstance(parsed, Availability):
        assert isinstance(parsed.online, bool)


@SCALES
def test_fuzz_camera_payloads(scale: int, fuzz: Callable[[str], FuzzCount]) -> None:
    count = fuzz("camera-payloads")
    seen = {"Detection": 0, "Ignored": 0, "Availability": 0, "Snapshot": 0, "error": 0}
    reasons: set[str] = set()

    @fuzz_settings(1500, scale)
    @given(messages)
    def prop(message: tuple[str, bytes]) -> None:
        topic, payload = message
        with count.example():
            errors: list[PayloadError] = []

            def parse() -> Any:
                try:
                    return PARSER.parse(topic, payload)
                except PayloadError as exc:
                    errors.append(exc)
                    raise

            parsed = expect(PayloadError, parse)
            if parsed is None:
                assert errors[0].reason in _REASONS
                reasons.add(errors[0].reason)
                seen["error"] += 1
            else:
                _check(parsed)
                seen[type(parsed).__name__] += 1

    prop()
    assert all(seen.values()), f"the inputs missed a path: {seen}"
    assert reasons == _REASONS, f"never refused for {_REASONS - reasons}"
