"""camera-mqtt's sans-I/O parser and its config: every format, every rejection.

Messages come from the emulator's builders (a second, independent implementation of the
same documented formats) and from hand-written payloads.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.camera_mqtt.config import CameraMqttConfig, Group
from drivers.camera_mqtt.parse import (
    Availability,
    Detection,
    Ignored,
    Parser,
    PayloadError,
    Snapshot,
    is_jpeg,
)
from edgesdk import driver
from edgesdk.config import parse as parse_config
from edgesdk.errors import ConfigError
from emulators.cameras import formats, jpeg
from emulators.cameras.faults import fault_messages
from emulators.cameras.model import DEFAULT_CAMERAS, Fault, Message

REASONS = ("oversize", "malformed", "wrong_type", "bad_snapshot", "snapshot_oversize")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "drivers.md"


def make(*groups: dict[str, Any], **options: Any) -> Parser:
    cfg = CameraMqttConfig.model_validate({"broker": "mqtt://h", "groups": groups, **options})
    return Parser(
        cfg.groups,
        max_payload_bytes=cfg.max_payload_bytes,
        snapshot_max_bytes=cfg.snapshot_max_bytes,
    )


DEFAULT = Parser(
    CameraMqttConfig(broker="mqtt://h").groups, max_payload_bytes=65536, snapshot_max_bytes=262144
)


def one(p: Parser, msg: Message) -> Any:
    return p.parse(msg.topic, msg.payload)


def frigate_obj(label: str = "fire", score: float = 0.8, zones: list[str] | None = None) -> Any:
    obj = formats.FrigateObject(
        "1700000000.5-abcdef", "lobby", label, 1.7e9, 1.7e9, score, [10, 10, 200, 300]
    )
    obj.observe(1.7e9, score, zones if zones is not None else ["lobby"], None)
    return obj


# -- Frigate ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["new", "update", "end"])
def test_frigate_events(kind: str) -> None:
    obj = frigate_obj(zones=["lobby", "stairs"])
    det = one(DEFAULT, formats.frigate_event("frigate", kind, obj.as_dict(), obj.as_dict()))  # type: ignore[arg-type]
    assert det == Detection(
        group=0,
        format="frigate",
        camera="lobby",
        label="fire",
        device_label="fire",
        active=kind != "end",
        ref="1700000000.5-abcdef",
        score=0.8,
        top_score=0.8,
        zones=("lobby", "stairs"),
    )


@pytest.mark.parametrize(("payload", "online"), [(b"online", True), (b"offline\n", False)])
def test_frigate_available(payload: bytes, online: bool) -> None:
    assert DEFAULT.parse("frigate/available", payload) == Availability(0, online)


def test_frigate_snapshots() -> None:
    image = jpeg.snapshot("fire", (0.1, 0.1, 0.5, 0.5))
    snap = DEFAULT.parse("frigate/lobby/fire/snapshot", image)
    assert snap == Snapshot(0, "lobby", "fire", image)
    assert isinstance(DEFAULT.parse("frigate/lobby/person/snapshot", image), Ignored)
    assert isinstance(DEFAULT.parse("frigate/lobby/fire/snapshot", b""), Ignored)
    with pytest.raises(PayloadError) as bad:
        DEFAULT.parse("frigate/lobby/fire/snapshot", b"\x89PNG\r\n\x1a\n....")
    assert bad.value.reason == "bad_snapshot"
    with pytest.raises(PayloadError) as cut:
        DEFAULT.parse("frigate/lobby/fire/snapshot", image[:-1])  # no EOI: truncated
    assert cut.value.reason == "bad_snapshot"
    small = make({"format": "frigate"}, snapshot_max_bytes=1024)
    big = b"\xff\xd8" + bytes(2000) + b"\xff\xd9"
    with pytest.raises(PayloadError) as over:
        small.parse("frigate/lobby/fire/snapshot", big)
    assert over.value.reason == "snapshot_oversize"
    assert is_jpeg(image)
    assert not is_jpeg(b"\xff\xd8\xff\xd9"[:3])


# -- Axis -------------------------------------------------------------------------------
@pytest.mark.parametrize("label", ["motion", "tamper", "person", "fire", "smoke"])
@pytest.mark.parametrize("active", [True, False])
def test_axis_events(label: str, active: bool) -> None:
    det = one(DEFAULT, formats.axis_event("ACCC8E012345", label, active, 1_700_000_000_000, 0.87))
    assert isinstance(det, Detection)
    assert (det.format, det.camera, det.label, det.active) == (
        "axis",
        "ACCC8E012345",
        label,
        active,
    )
    assert det.ref == f"ACCC8E012345:{label}"
    assert det.score == (0.87 if label in ("fire", "smoke") else None)


def _axis(onvif: str, data: dict[str, Any], **top: Any) -> bytes:
    body = {"timestamp": 1, "topic": onvif, "message": {"source": {}, "key": {}, "data": data}}
    return json.dumps({**body, **top}).encode()


def test_axis_other_events() -> None:
    topic = "ACCC8E012345/event/tns:onvif/VideoSource/MotionAlarm"
    det = DEFAULT.parse(topic, _axis("tns1:VideoSource/MotionAlarm", {"State": "true"}))
    assert isinstance(det, Detection)
    assert (det.label, det.active) == ("motion", True)
    vehicle = _axis(
        "onvif:CameraApplicationPlatform/axis:ObjectAnalytics/Device1Scenario2",
        {"active": "1", "classTypes": "car,truck"},
    )
    assert isinstance(DEFAULT.parse(topic, vehicle), Ignored)
    audio = _axis("onvif:AudioSource/axis:TriggerLevel", {"triggered": "1"})
    assert isinstance(DEFAULT.parse(topic, audio), Ignored)


@pytest.mark.parametrize(
    "payload",
    [
        _axis("onvif:Device/axis:Sensor/PIR", {"state": "2"}),
        _axis("onvif:Device/axis:Sensor/PIR", {"other": "1"}),
        _axis("onvif:Device/axis:Sensor/PIR", {"state": 1}),
        _axis("onvif:Device/axis:Sensor/PIR", {"state": "1"}, timestamp="now"),
        _axis("onvif:Device/axis:Sensor/PIR", {"state": "1"}, message=[]),
        _axis("onvif:CameraApplicationPlatform/axis:FireSmokeDetection/C1P1", {"active": "1"}),
        _axis(
            "onvif:CameraApplicationPlatform/axis:FireSmokeDetection/C1P1",
            {"active": "1", "class": "fire", "score": "high"},
        ),
        _axis(
            "onvif:CameraApplicationPlatform/axis:FireSmokeDetection/C1P1",
            {"active": "1", "class": "fire", "score": "1.5"},
        ),
        b'["a list"]',
        b'{"topic": 42}',
    ],
)
def test_axis_wrong_types(payload: bytes) -> None:
    with pytest.raises(PayloadError) as err:
        DEFAULT.parse("ACCC8E012345/event/tns:onvif/Device/tns:axis/Sensor/PIR", payload)
    assert err.value.reason == "wrong_type"


# -- generic ----------------------------------------------------------------------------
def test_generic_events() -> None:
    det = one(DEFAULT, formats.generic_event("plant_room", "smoke", 0.87, 1.7e9))
    assert det == Detection(
        0 + 2, "generic", "plant_room", "smoke", "smoke", True, "plant_room:smoke", 0.87
    )
    end = DEFAULT.parse("cameras/plant_room/event", b'{"event":"smoke","state":"inactive"}')
    assert isinstance(end, Detection)
    assert end.active is False
    assert end.score is None
    zoned = DEFAULT.parse("cameras/c1/event", b'{"event":"fire","zones":["a","b"],"score":1}')
    assert isinstance(zoned, Detection)
    assert zoned.zones == ("a", "b")
    assert zoned.score == 1.0


@pytest.mark.parametrize(
    "body",
    [
        {"event": 17},
        {"event": "smoke", "state": "on"},
        {"event": "smoke", "score": "high"},
        {"event": "smoke", "score": True},
        {"event": "smoke", "score": -0.1},
        {"event": "smoke", "time": "yesterday"},
        {"event": "smoke", "zones": "lobby"},
        {"event": "smoke", "camera": "other"},
        {"camera": "c1"},
    ],
)
def test_generic_wrong_types(body: dict[str, Any]) -> None:
    with pytest.raises(PayloadError) as err:
        DEFAULT.parse("cameras/c1/event", json.dumps(body).encode())
    assert err.value.reason == "wrong_type"
    with pytest.raises(PayloadError) as nan:
        DEFAULT.parse("cameras/c1/event", b'{"event":"smoke","score":NaN}')
    assert nan.value.reason == "wrong_type"


def test_documented_generic_example_parses() -> None:
    text = DOCS.read_text()
    section = text[text.index("## `camera-mqtt`") :]
    examples = re.findall(r"`(\{\"camera\": .*?\})`", section)
    assert examples, "the generic example is missing from docs/drivers.md"
    for example in examples:
        det = DEFAULT.parse("cameras/plant_room/event", example.encode())
        assert isinstance(det, Detection)
        assert det.camera == "plant_room"


# -- what every format shares -----------------------------------------------------------
@pytest.mark.parametrize("spec", DEFAULT_CAMERAS[1:], ids=lambda s: s.kind.value)
@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault.MALFORMED_JSON, "malformed"),
        (Fault.WRONG_TYPES, "wrong_type"),
        (Fault.OVERSIZE, "oversize"),
    ],
)
def test_emulator_faults_are_typed(spec: Any, fault: Fault, reason: str) -> None:
    [msg] = fault_messages(fault, spec, "frigate", 1.7e9, random.Random(1))
    with pytest.raises(PayloadError) as err:
        one(DEFAULT, msg)
    assert err.value.reason == reason


def test_json_limits() -> None:
    p = make({"format": "generic"}, max_payload_bytes=256)
    body = b'{"event":"smoke","pad":"' + b"x" * 300 + b'"}'
    with pytest.raises(PayloadError) as over:
        p.parse("cameras/c/event", body)
    assert over.value.reason == "oversize"
    exact = b'{"event":"smoke","pad":"' + b"x" * (256 - 26) + b'"}'
    assert len(exact) == 256
    assert isinstance(p.parse("cameras/c/event", exact), Detection)
    for junk in (b"[" * 100 + b"]" * 100, b"\xff\xfe{", b"", b'{"event": "smo'):
        with pytest.raises(PayloadError) as bad:
            p.parse("cameras/c/event", junk)
        assert bad.value.reason == ("wrong_type" if junk.startswith(b"[[") else "malformed")
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(PayloadError) as rec:
        make({"format": "generic"}, max_payload_bytes=300_000).parse("cameras/c/event", deep)
    assert rec.value.reason == "malformed"


def test_routing_prefixes_names_allow_list_labels() -> None:
    p = make(
        {
            "format": "frigate",
            "prefix": "site/nvr1",
            "cameras": ["hall"],
            "names": {"cam_01": "hall"},
            "labels": {"flame": "fire"},
        },
        {"format": "axis", "prefix": "axis"},
        {"format": "generic", "prefix": "hik", "zones": {"dock": ["yard"]}},
    )
    assert p.filters() == [
        "site/nvr1/available",
        "site/nvr1/events",
        "site/nvr1/+/+/snapshot",
        "axis/+/event/#",
        "hik/+/event",
    ]
    obj = frigate_obj("flame")
    obj.camera = "cam_01"
    det = one(p, formats.frigate_event("site/nvr1", "new", obj.as_dict(), obj.as_dict()))
    assert (det.camera, det.label, det.device_label) == ("hall", "fire", "flame")
    other = frigate_obj()
    other.camera = "yard_cam"
    assert isinstance(
        one(p, formats.frigate_event("site/nvr1", "new", other.as_dict(), other.as_dict())), Ignored
    )
    person = frigate_obj("dog")
    person.camera = "cam_01"
    assert isinstance(
        one(p, formats.frigate_event("site/nvr1", "new", person.as_dict(), person.as_dict())),
        Ignored,
    )
    ax = formats.axis_event("ACCC8E012345", "tamper", True, 1, 1.0)
    assert isinstance(p.parse("axis/" + ax.topic, ax.payload), Detection)
    assert isinstance(p.parse(ax.topic, ax.payload), Ignored)  # no group without a prefix
    gen = p.parse("hik/dock/event", b'{"event":"person"}')
    assert isinstance(gen, Detection)
    assert gen.zones == ("yard",)
    for topic in ("frigate/events", "site/nvr1/x/snapshot", "hik/a/b/event", "hik//event"):
        assert isinstance(p.parse(topic, b"{}"), Ignored), topic
    assert p.format_of("hik/dock/event") == "generic"
    assert p.format_of("nowhere") is None


@settings(max_examples=300, deadline=None)
@given(
    topic=st.sampled_from(
        [
            "frigate/available",
            "frigate/events",
            "frigate/lobby/fire/snapshot",
            "ACCC8E012345/event/tns:onvif/Device/tns:axis/Sensor/PIR",
            "cameras/c/event",
        ]
    ),
    payload=st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=10),
            lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
            max_leaves=20,
        ).map(lambda v: json.dumps(v).encode()),
    ),
)
def test_any_payload_is_parsed_or_typed_error(topic: str, payload: bytes) -> None:
    reason: str | None = None
    out: object = None
    try:
        out = DEFAULT.parse(topic, payload)
    except PayloadError as exc:  # any other exception fails the test
        reason = exc.reason
    if reason is None:
        assert isinstance(out, Detection | Availability | Snapshot | Ignored)
    else:
        assert reason in REASONS


# -- config -----------------------------------------------------------------------------
def test_config_defaults() -> None:
    cfg = CameraMqttConfig(broker="mqtts://broker.local")
    assert [g.format for g in cfg.groups] == ["frigate", "axis", "generic"]
    assert [g.topic_prefix for g in cfg.groups] == ["frigate", "", "cameras"]
    assert (cfg.min_score, cfg.repeat_timeout, cfg.snapshot_max_bytes) == (0.5, 5.0, 262144)
    assert cfg.max_payload_bytes == 65536
    assert cfg.score_thresholds == [0.7, 0.9]
    assert CameraMqttConfig(
        broker="mqtt://h", score_thresholds=[0.9, 0.6, 0.9]
    ).score_thresholds == [0.6, 0.9]


@pytest.mark.parametrize(
    ("options", "key", "fix"),
    [
        ({"broker": "tcp://h"}, "devices.cams.options.broker", "mqtt://host"),
        (
            {"broker": "mqtt://h", "groups": [{"format": "generic", "prefix": "a//b"}]},
            "devices.cams.options.groups[0].prefix",
            "no + or #",
        ),
        (
            {"broker": "mqtt://h", "groups": [{"format": "frigate", "silence_timeout": 5}]},
            "devices.cams.options.groups[0]",
            "",
        ),
        ({"broker": "mqtt://h", "min_score": -1}, "devices.cams.options.min_score", "0..1"),
        (
            {"broker": "mqtt://h", "snapshot_cache": 5000},
            "devices.cams.options.snapshot_cache",
            "least",
        ),
        (
            {"broker": "mqtt://h", "groups": [{"format": "axis", "names": {"X": "bad name"}}]},
            "devices.cams.options.groups[0].names",
            "A-Z",
        ),
        (
            {"broker": "mqtt://h", "groups": [{"format": "axis", "labels": {"x": "car"}}]},
            "devices.cams.options.groups[0].labels.x",
            "fire",
        ),
    ],
)
def test_config_errors_name_the_key_and_fix(options: dict[str, Any], key: str, fix: str) -> None:
    with pytest.raises(ConfigError) as err:
        driver.create("camera-mqtt", options, instance="cams", prefix="devices.cams.options")
    assert err.value.key == key
    assert fix in (err.value.fix or "")


def test_group_rules() -> None:
    assert Group(format="axis").topic_prefix == ""
    assert Group(format="generic", prefix="a/b").topic_prefix == "a/b"
    with pytest.raises(ConfigError):
        parse_config(CameraMqttConfig, {"broker": "mqtts://h", "password": "x"})
    with pytest.raises(ConfigError):
        parse_config(CameraMqttConfig, {"broker": "mqtt://h:99999"})
