"""docs/protocols/beacon-serial.md: every worked example is what the codec produces."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from drivers.beacon_serial.codec import (
    Ack,
    Alarm,
    AlarmCause,
    Evacuate,
    Frame,
    FrameType,
    Hello,
    Message,
    ReceiverStatus,
    Telemetry,
    TelemetryFlags,
    decode,
    encode,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocols" / "beacon-serial.md"
BEACON = 0x0A0B0C0D

EXAMPLES: dict[str, tuple[Message, int, int]] = {
    "telemetry": (
        Telemetry(142, 36.55, 48.2, 734, 241.3, 87, TelemetryFlags.SENSOR_CONTACT, -67),
        7,
        BEACON,
    ),
    "telemetry-none": (
        Telemetry(
            None,
            33.1,
            -4.5,
            12,
            None,
            14,
            TelemetryFlags.DISTRESS | TelemetryFlags.FALL | TelemetryFlags.LOW_BATTERY,
            -91,
        ),
        9,
        BEACON,
    ),
    "alarm": (Alarm(AlarmCause.DISTRESS, 5), 8, BEACON),
    "receiver-status": (
        ReceiverStatus(uptime=3600, frames_received=14400, noise_floor=-101),
        42,
        0,
    ),
    "hello": (Hello(firmware=0x0203, model=7, wearer_age=34, rated_pressure=300.0), 0, BEACON),
    "ack": (Ack(FrameType.ALARM, 8), 1, BEACON),
    "evacuate": (Evacuate(), 2, BEACON),
    "evacuate-all": (Evacuate(), 3, 0),
}

_BLOCK = re.compile(r"<!-- example: ([a-z-]+) -->\s*```text\n([0-9A-F ]+)\n```")


def _doc_examples() -> dict[str, bytes]:
    found = {name: bytes.fromhex(hexes) for name, hexes in _BLOCK.findall(DOC.read_text())}
    assert found, f"no worked examples found in {DOC}"
    return found


def test_doc_has_an_example_of_every_frame_type() -> None:
    examples = _doc_examples()
    assert set(examples) == set(EXAMPLES)
    assert {decode(raw).type for raw in examples.values()} == set(FrameType)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_doc_example_is_what_the_codec_encodes(name: str) -> None:
    message, seq, beacon = EXAMPLES[name]
    raw = _doc_examples()[name]
    assert raw == encode(message, seq, beacon)
    assert decode(raw) == Frame(seq=seq, beacon=beacon, message=message)


def test_doc_field_table_matches_the_telemetry_example() -> None:
    text = DOC.read_text()
    raw = _doc_examples()["telemetry"]
    # the breakdown table lists the example's bytes in order, one field per row
    cells = re.findall(r"^\| `([0-9A-F ]+)` \|", text, flags=re.MULTILINE)
    assert bytes.fromhex(" ".join(cells)) == raw
