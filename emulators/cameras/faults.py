"""Broken messages, as misconfigured cameras and bridges really send them (sans-I/O).

Each builder returns the messages one injection publishes on the camera's own event
topic, so a consumer sees the fault exactly where a real one would arrive.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from emulators.cameras import formats
from emulators.cameras.model import CameraSpec, Fault, Kind, Message

__all__ = ["fault_messages", "flood_messages"]


def _sample(spec: CameraSpec, prefix: str, now: float, rng: random.Random) -> Message:
    """A well-formed event of this camera, the raw material for the faults."""
    if spec.kind is Kind.FRIGATE:
        obj = formats.FrigateObject(
            id=formats.event_id(now, rng),
            camera=spec.id,
            label="person",
            start_time=now,
            frame_time=now,
            score=0.81,
            box=formats.random_box(rng),
            current_zones=list(spec.zones),
            entered_zones=list(spec.zones),
        )
        return formats.frigate_event(prefix, "new", obj.as_dict(), obj.as_dict())
    if spec.kind is Kind.AXIS:
        assert spec.mac is not None
        return formats.axis_event(spec.mac, "smoke", True, int(now * 1000), 0.81)
    return formats.generic_event(spec.id, "smoke", 0.81, now)


def fault_messages(
    fault: Fault, spec: CameraSpec, prefix: str, now: float, rng: random.Random
) -> list[Message]:
    """The message(s) of one injection of ``fault`` (not FLOOD: see :func:`flood_messages`)."""
    good = _sample(spec, prefix, now, rng)
    if fault is Fault.MALFORMED_JSON:
        # cut mid-object, as a bridge with a too-small buffer does
        return [Message(good.topic, good.payload[: len(good.payload) // 2], qos=good.qos)]
    if fault is Fault.WRONG_TYPES:
        if spec.kind is Kind.FRIGATE:
            before = {
                "id": formats.event_id(now, rng),
                "camera": spec.id,
                "label": "person",
                "score": "0.9",
                "top_score": "high",
                "start_time": str(now),
                "current_zones": "lobby",
                "box": "0,0,10,10",
            }
            payload = formats.dumps({"type": "update", "before": before})  # no "after"
        elif spec.kind is Kind.AXIS:
            payload = formats.dumps(
                {
                    "timestamp": str(now),
                    "topic": 42,
                    "message": {"source": [], "key": None, "data": {"state": 1}},
                }
            )
        else:
            payload = formats.dumps(
                {"camera": spec.id, "event": 17, "state": True, "score": "high", "time": str(now)}
            )
        return [Message(good.topic, payload, qos=good.qos)]
    if fault is Fault.OVERSIZE:
        # valid JSON, valid shape, one field blown up past 256 KiB
        text = good.payload.decode()
        pad = '"padding":"' + "x" * formats.OVERSIZE_BYTES + '",'
        return [Message(good.topic, (text[0] + pad + text[1:]).encode(), qos=good.qos)]
    raise ValueError(f"{fault} has no single message; use flood_messages")


def flood_messages(
    spec: CameraSpec, prefix: str, now: float, rng: random.Random, count: int, spacing: float
) -> Iterator[Message]:
    """``count`` well-formed messages of a flapping detection, ``spacing`` s apart in time."""
    if spec.kind is Kind.FRIGATE:
        obj = formats.FrigateObject(
            id=formats.event_id(now, rng),
            camera=spec.id,
            label="person",
            start_time=now,
            frame_time=now,
            score=0.6,
            box=formats.random_box(rng),
        )
        yield formats.frigate_event(prefix, "new", obj.as_dict(), obj.as_dict())
        for i in range(1, count):
            before = obj.as_dict()
            obj.observe(
                now + i * spacing, round(0.6 + 0.3 * ((i * 7) % 10) / 10, 2), list(spec.zones), None
            )
            yield formats.frigate_event(prefix, "update", before, obj.as_dict())
    elif spec.kind is Kind.AXIS:
        assert spec.mac is not None
        for i in range(count):
            yield formats.axis_event(
                spec.mac, "motion", i % 2 == 0, int((now + i * spacing) * 1000), 1.0
            )
    else:
        for i in range(count):
            yield formats.generic_event(spec.id, "person", 0.7, now + i * spacing)
