"""Camera payload formats, faults, scenarios and the JPEG encoder, without any I/O."""

from __future__ import annotations

import itertools
import json
import random
import re
import struct
from typing import Any

import pytest

from edgesdk.errors import CommandError, ConfigError
from emulators.cameras import (
    CameraEmulator,
    CameraSpec,
    Fault,
    Kind,
    formats,
    jpeg,
    parse_broker_url,
)
from emulators.cameras.faults import fault_messages, flood_messages
from emulators.cameras.model import DEFAULT_CAMERAS
from emulators.cameras.scenarios import Detect, End, Offline, scenario_steps

FRIGATE_FIELDS = {
    "id", "camera", "frame_time", "label", "sub_label", "score", "top_score",
    "false_positive", "start_time", "end_time", "box", "area", "region",
    "current_zones", "entered_zones", "has_snapshot", "has_clip", "stationary",
}  # fmt: skip
EVENT_ID = re.compile(r"^\d{10}\.\d{6}-[a-z0-9]{6}$")


# --------------------------------------------------------------------------- JPEG


def _huffman(bits: bytes, vals: bytes) -> dict[tuple[int, int], int]:
    table: dict[tuple[int, int], int] = {}
    code, k = 0, 0
    for length in range(1, 17):
        for _ in range(bits[length - 1]):
            table[(length, code)] = vals[k]
            code += 1
            k += 1
        code <<= 1
    return table


def decode_jpeg(data: bytes) -> dict[str, Any]:
    """An independent reader for baseline JPEGs: markers, SOF0, and the entropy-coded scan.

    Walks every block with the Huffman tables the file declares (DC and AC, run/size
    symbols, EOB, ZRL) and returns the size and the first block's DC per component.
    """
    assert data[:2] == b"\xff\xd8", "no SOI"
    assert data[-2:] == b"\xff\xd9", "no EOI"
    i, tables, frame, scan = 2, {}, None, None
    quant: dict[int, bytes] = {}
    while scan is None:
        assert data[i] == 0xFF, f"bad marker at {i}"
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        body = data[i + 4 : i + 2 + length]
        if marker == 0xC0:
            precision, height, width, nf = struct.unpack(">BHHB", body[:6])
            comps = [tuple(body[6 + 3 * k : 9 + 3 * k]) for k in range(nf)]
            frame = (precision, width, height, comps)
        elif marker in (0xC1, 0xC2, 0xC3):
            raise AssertionError("not baseline")
        elif marker == 0xDB:
            quant[body[0] & 15] = body[1:65]
        elif marker == 0xC4:
            j = 0
            while j < len(body):
                tc_th = body[j]
                bits = body[j + 1 : j + 17]
                vals = body[j + 17 : j + 17 + sum(bits)]
                tables[(tc_th >> 4, tc_th & 15)] = _huffman(bits, vals)
                j += 17 + sum(bits)
        elif marker == 0xDA:
            ns = body[0]
            scan = [(body[1 + 2 * k], body[2 + 2 * k]) for k in range(ns)]
            start = i + 2 + length
        i += 2 + length
    assert frame is not None, "no SOF0"
    precision, width, height, comps = frame
    raw = data[start:-2]
    entropy = bytearray()
    j = 0
    while j < len(raw):
        entropy.append(raw[j])
        if raw[j] == 0xFF:
            assert raw[j + 1] == 0x00, "unexpected marker inside the scan"
            j += 1
        j += 1
    bitpos = 0

    def bit() -> int:
        nonlocal bitpos
        b = (entropy[bitpos // 8] >> (7 - bitpos % 8)) & 1
        bitpos += 1
        return b

    def symbol(table: dict[tuple[int, int], int]) -> int:
        code = 0
        for length in range(1, 17):
            code = (code << 1) | bit()
            if (length, code) in table:
                return table[(length, code)]
        raise AssertionError("no Huffman code matches")

    def extend(size: int) -> int:
        v = 0
        for _ in range(size):
            v = (v << 1) | bit()
        return v if size == 0 or v >= 1 << (size - 1) else v - (1 << size) + 1

    selectors = {cid: (td_ta >> 4, td_ta & 15) for cid, td_ta in scan}
    blocks = ((width + 7) // 8) * ((height + 7) // 8)
    dc = {cid: 0 for cid, _h, _q in comps}
    first: dict[int, int] = {}
    for _ in range(blocks):
        for cid, _h, _q in comps:
            td, ta = selectors[cid]
            dc[cid] += extend(symbol(tables[(0, td)]))
            first.setdefault(cid, dc[cid])
            k = 1
            while k < 64:
                rs = symbol(tables[(1, ta)])
                if rs == 0:
                    break
                k += 16 if rs == 0xF0 else (rs >> 4) + 1
                extend(rs & 15)
    left = len(entropy) * 8 - bitpos
    assert 0 <= left < 8, f"{left} bits left over after {blocks} blocks"
    assert all(bit() == 1 for _ in range(left)), "padding must be 1 bits"
    q0 = {cid: quant[q][0] for cid, _h, q in comps}
    return {
        "precision": precision,
        "width": width,
        "height": height,
        "components": len(comps),
        "first_dc": [first[cid] * q0[cid] / 8 + 128 for cid, _h, _q in comps],
    }


def _rgb(y: float, cb: float, cr: float) -> tuple[float, float, float]:
    return (
        y + 1.402 * (cr - 128),
        y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128),
        y + 1.772 * (cb - 128),
    )


@pytest.mark.parametrize("label", ["person", "fire", "smoke", "car"])
@pytest.mark.parametrize(("width", "height"), [(128, 72), (100, 50), (8, 8), (640, 360)])
def test_snapshot_is_a_decodable_baseline_jpeg(label: str, width: int, height: int) -> None:
    data = jpeg.snapshot(label, (0.0, 0.0, 1.0, 1.0), width=width, height=height)
    info = decode_jpeg(data)
    assert (info["width"], info["height"]) == (width, height)
    assert info["precision"] == 8
    assert info["components"] == 3
    # the box covers the frame, so the first block has the label's colour
    expected = jpeg.LABEL_COLOURS.get(label, (60, 120, 230))
    got = _rgb(*info["first_dc"])
    assert all(abs(g - e) <= 6 for g, e in zip(got, expected, strict=True)), (got, expected)
    assert len(data) < 4096 + width * height // 8


def test_snapshot_background_and_box_differ() -> None:
    a = jpeg.snapshot("fire", (0.5, 0.5, 0.9, 0.9))
    b = jpeg.snapshot("fire", (0.1, 0.1, 0.3, 0.3))
    assert a != b
    assert _rgb(*decode_jpeg(a)["first_dc"])[0] < 80  # dark scene in the corner


def test_jpeg_bad_size_is_refused() -> None:
    with pytest.raises(ValueError, match="blocks"):
        jpeg.encode_blocks(16, 16, [[(0, 0, 0)]])
    with pytest.raises(ValueError, match="size"):
        jpeg.encode_blocks(0, 8, [])


# --------------------------------------------------------------------------- formats


def test_frigate_object_has_the_real_fields() -> None:
    rng = random.Random(1)
    obj = formats.FrigateObject(
        id=formats.event_id(1700000000.5, rng), camera="lobby", label="smoke",
        start_time=1700000000.5, frame_time=1700000000.5, score=0.6,
        box=formats.random_box(rng),
    )  # fmt: skip
    before = obj.as_dict()
    obj.observe(1700000001.5, 0.8, ["lobby"], [10, 20, 110, 220])
    after = obj.as_dict()
    assert set(after) >= FRIGATE_FIELDS
    assert EVENT_ID.match(after["id"])
    assert after["top_score"] == 0.8
    assert before["top_score"] == 0.6
    assert before["false_positive"] is True
    assert after["false_positive"] is False
    assert after["area"] == 100 * 200
    assert after["entered_zones"] == ["lobby"]
    assert after["current_zones"] == ["lobby"]
    x1, y1, x2, y2 = after["region"]
    assert x2 - x1 == y2 - y1 >= 320  # square detection region
    assert x1 <= 10
    assert y1 <= 20
    assert x2 >= 110
    assert y2 >= 220
    assert x1 >= 0
    assert x2 <= formats.FRAME[0]
    assert y1 >= 0
    assert y2 <= formats.FRAME[1]
    msg = formats.frigate_event("frigate", "update", before, after)
    assert msg.topic == "frigate/events"
    assert not msg.retain
    assert json.loads(msg.payload) == {"type": "update", "before": before, "after": after}


def test_frigate_available_and_snapshot_messages() -> None:
    on, off = formats.frigate_available("nvr", True), formats.frigate_available("nvr", False)
    assert (on.topic, on.payload, on.retain) == ("nvr/available", b"online", True)
    assert (off.payload, off.retain) == (b"offline", True)
    snap = formats.frigate_snapshot("frigate", "lobby", "fire", b"\xff\xd8..")
    assert snap.topic == "frigate/lobby/fire/snapshot"
    assert snap.retain


@pytest.mark.parametrize(
    ("onvif", "mqtt"),
    [
        ("onvif:Device/axis:Sensor/PIR", "tns:onvif/Device/tns:axis/Sensor/PIR"),
        ("onvif:VideoSource/axis:Tampering", "tns:onvif/VideoSource/tns:axis/Tampering"),
    ],
)
def test_axis_topic_mapping(onvif: str, mqtt: str) -> None:
    assert formats.axis_mqtt_topic("ACCC8E012345", onvif) == "ACCC8E012345/event/" + mqtt


@pytest.mark.parametrize("label", ["person", "fire", "smoke", "motion", "tamper"])
def test_axis_payload_shape(label: str) -> None:
    msg = formats.axis_event("ACCC8E012345", label, True, 1700000000123, 0.9)
    body = json.loads(msg.payload)
    assert set(body) == {"timestamp", "topic", "message"}
    assert body["timestamp"] == 1700000000123
    assert msg.topic == formats.axis_mqtt_topic("ACCC8E012345", body["topic"])
    assert set(body["message"]) == {"source", "key", "data"}
    assert "1" in body["message"]["data"].values()
    assert all(isinstance(v, str) for v in body["message"]["data"].values())
    off = json.loads(formats.axis_event("ACCC8E012345", label, False, 1, 0.0).payload)
    assert "0" in off["message"]["data"].values()


def test_generic_payload() -> None:
    msg = formats.generic_event("plant_room", "smoke", 0.87, 1700000000.25)
    assert msg.topic == "cameras/plant_room/event"
    assert msg.qos == 1
    assert not msg.retain
    assert json.loads(msg.payload) == {
        "camera": "plant_room", "event": "smoke", "state": "active", "score": 0.87,
        "time": 1700000000.25,
    }  # fmt: skip


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize("spec", DEFAULT_CAMERAS[1:], ids=lambda s: s.kind.value)
def test_faults_are_broken_in_the_promised_way(spec: CameraSpec) -> None:
    rng = random.Random(3)
    good_topic = {
        Kind.FRIGATE: "frigate/events",
        Kind.AXIS: "ACCC8E012345/event/tns:onvif/CameraApplicationPlatform/tns:axis/"
        "FireSmokeDetection/Camera1Profile1",
        Kind.GENERIC: "cameras/plant_room/event",
    }[spec.kind]
    [bad] = fault_messages(Fault.MALFORMED_JSON, spec, "frigate", 1e9, rng)
    assert bad.topic == good_topic
    with pytest.raises(json.JSONDecodeError):
        json.loads(bad.payload)
    [wrong] = fault_messages(Fault.WRONG_TYPES, spec, "frigate", 1e9, rng)
    body = json.loads(wrong.payload)
    if spec.kind is Kind.FRIGATE:
        assert "after" not in body
        assert isinstance(body["before"]["score"], str)
    elif spec.kind is Kind.AXIS:
        assert isinstance(body["timestamp"], str)
    else:
        assert isinstance(body["score"], str)
    [big] = fault_messages(Fault.OVERSIZE, spec, "frigate", 1e9, rng)
    assert len(big.payload) > 256 * 1024
    assert isinstance(json.loads(big.payload), dict)
    flood = list(flood_messages(spec, "frigate", 1e9, rng, 50, 0.01))
    assert len(flood) == 50
    assert {m.topic for m in flood} <= {good_topic, *(m.topic for m in flood)}
    assert all(isinstance(json.loads(m.payload), dict) for m in flood)
    with pytest.raises(ValueError, match="flood"):
        fault_messages(Fault.FLOOD, spec, "frigate", 1e9, rng)


# --------------------------------------------------------------------------- scenarios


@pytest.mark.parametrize("name", ["quiet", "smoke-in-lobby", "camera-offline"])
def test_scenarios_are_reproducible(name: str) -> None:
    def take(seed: int) -> list[Any]:
        steps = scenario_steps(name, DEFAULT_CAMERAS, random.Random(seed))
        return list(itertools.islice(steps, 40))

    a, b, c = take(7), take(7), take(8)
    assert a == b
    assert len(a) >= 5
    assert [s.at for s in a] == sorted(s.at for s in a)
    if name != "camera-offline":
        assert a != c


def test_smoke_in_lobby_rises_then_fire() -> None:
    steps = list(
        itertools.islice(scenario_steps("smoke-in-lobby", DEFAULT_CAMERAS, random.Random(1)), 13)
    )
    detects = [s.action for s in steps if isinstance(s.action, Detect)]
    smoke = [d.score for d in detects if d.label == "smoke"]
    fire = [d.score for d in detects if d.label == "fire"]
    assert smoke == sorted(smoke)
    assert smoke[-1] > smoke[0] + 0.2
    assert fire == sorted(fire)
    assert len(fire) >= 2
    assert all(d.camera == "lobby" and d.zones == ("lobby",) for d in detects)
    first_fire = next(i for i, d in enumerate(detects) if d.label == "fire")
    assert all(d.label == "smoke" for d in detects[:first_fire])


def test_camera_offline_takes_every_camera_down() -> None:
    steps = list(scenario_steps("camera-offline", DEFAULT_CAMERAS, random.Random(1)))
    offline = [s for s in steps if isinstance(s.action, Offline)]
    assert {s.action.camera for s in offline} == {c.id for c in DEFAULT_CAMERAS}
    assert all(not s.action.clean for s in offline)  # type: ignore[union-attr]
    assert max(s.at for s in steps if not isinstance(s.action, Offline)) < offline[0].at
    assert not any(isinstance(s.action, End) for s in steps)


def test_quiet_ends_every_person() -> None:
    steps = list(itertools.islice(scenario_steps("quiet", DEFAULT_CAMERAS, random.Random(2)), 60))
    open_: set[str] = set()
    for step in steps:
        if isinstance(step.action, Detect):
            assert step.action.label == "person"
            open_.add(step.action.camera)
        elif isinstance(step.action, End):
            open_.discard(step.action.camera)
    assert len(open_) <= 1  # only the one cut off by islice may still be open


# --------------------------------------------------------------------------- configuration


def test_configuration_errors_are_typed() -> None:
    with pytest.raises(ConfigError, match="scenario"):
        CameraEmulator("mqtt://127.0.0.1:1", scenario="earthquake")
    with pytest.raises(ConfigError, match="Frigate"):
        CameraEmulator(
            "mqtt://127.0.0.1:1", cameras=[DEFAULT_CAMERAS[3]], scenario="smoke-in-lobby"
        )
    with pytest.raises(ConfigError, match="time_scale"):
        CameraEmulator("mqtt://127.0.0.1:1", time_scale=0)
    with pytest.raises(ConfigError, match="duplicate"):
        CameraEmulator("mqtt://127.0.0.1:1", cameras=[DEFAULT_CAMERAS[0]] * 2)
    with pytest.raises(ConfigError, match="broker"):
        parse_broker_url("http://127.0.0.1:1883")
    with pytest.raises(ConfigError, match="mac"):
        CameraSpec("dock", Kind.AXIS, mac="12:34")
    with pytest.raises(ConfigError, match="camera id"):
        CameraSpec("Bad Id", Kind.FRIGATE)
    assert parse_broker_url("mqtt://127.0.0.1") == ("127.0.0.1", 1883)
    assert parse_broker_url("tcp://127.0.0.1:1884") == ("127.0.0.1", 1884)


async def test_control_api_rejects_bad_requests_before_publishing() -> None:
    emu = CameraEmulator("mqtt://127.0.0.1:1", scenario="idle")  # never entered
    with pytest.raises(CommandError, match="unknown camera"):
        await emu.detect("attic", "fire", 0.9)
    with pytest.raises(CommandError, match="score"):
        await emu.detect("lobby", "fire", 1.5)
    with pytest.raises(CommandError, match="Axis"):
        await emu.detect("loading_dock", "car", 0.9)
    with pytest.raises(CommandError, match="unknown fault"):
        await emu.inject("gremlins")
    assert emu.counters.messages == 0
