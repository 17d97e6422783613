"""edgesdk.batch: sealing, deterministic payloads, and strict decoding of every field."""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgesdk import batch, cose
from edgesdk.batch import CONTENT_TYPE, ZERO_DIGEST, BatchHeader, LostRange
from edgesdk.errors import ProtocolError
from edgesdk.model import Event, EventState, Reading, Severity

KEY = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUB = KEY.public_key()
T0 = 1767225600.0

READINGS = (
    Reading("panel1", "zone3/smoke", 0.12, "%/m", T0 - 0.5),
    Reading("panel1", "zone3/temp", 21, "Cel", T0 - 0.25),
    Reading("beacon7", "alarm", True, None, T0),
    Reading("cam2", "label", "smoke", None, T0),
    Reading("cam2", "snapshot", b"\x00\xff", None, T0 + 1),
)
EVENTS = (
    Event(
        "fire",
        Severity.FIRE,
        EventState.ACTIVE,
        "panel1",
        T0 - 0.5,
        {"zone": 3, "point": "L1D12", "nested": {"a": [1, 2.5, None, b"\x01"]}},
        id="0123456789abcdef0123456789abcdef",
    ),
    Event("man-down", "alarm", "cleared", "beacon7", T0, {}, id="e2"),
)


def header(seq: int = 1, prev: bytes = ZERO_DIGEST, **kw: Any) -> BatchHeader:
    base: dict[str, Any] = {
        "site": "site1",
        "gw": "gw1",
        "stream": "telemetry",
        "seq": seq,
        "prev": prev,
        "boot": 4,
        "t": T0 + 2,
    }
    base.update(kw)
    return BatchHeader(**base)


def sealed(**kw: Any) -> bytes:
    return batch.seal(header(), key=KEY, readings=READINGS, events=EVENTS, **kw)


def test_seal_decode_round_trip() -> None:
    lost = (LostRange("telemetry", 7, 9, "store-full"), LostRange("alarm", 2, 2, "expired"))
    message = sealed(lost=lost)
    got = batch.decode(message)
    assert (got.site, got.gw, got.stream, got.seq, got.prev, got.boot) == (
        "site1",
        "gw1",
        "telemetry",
        1,
        ZERO_DIGEST,
        4,
    )
    assert got.t == T0 + 2
    assert isinstance(got.t, float)
    assert got.readings == READINGS
    assert got.events == EVENTS
    assert got.lost == lost
    assert got.kid == batch.kid_for(PUB)
    assert got.alg == cose.ALG_EDDSA
    assert got.digest == hashlib.sha256(message).digest() == batch.digest(message)
    assert got.raw == message
    assert dict(got.extra) == {}


def test_envelope_is_the_documented_profile() -> None:
    message = sealed()
    assert message[0] == 0xD2  # tag 18
    sign = cose.parse1(message)
    assert sign.protected_bytes == cbor2.dumps(
        {1: -8, 3: CONTENT_TYPE, 4: batch.kid_for(PUB)}, canonical=True
    )
    assert dict(sign.protected) == {1: -8, 3: CONTENT_TYPE, 4: batch.kid_for(PUB)}
    assert dict(sign.unprotected) == {}
    assert cose.verify1(message, PUB) == sign.payload


def test_payload_is_deterministic_with_text_keys() -> None:
    payload = batch.encode_payload(header(), readings=READINGS, events=EVENTS)
    body = cbor2.loads(payload)
    assert list(body) == sorted(body, key=lambda k: (len(k.encode()), k.encode()))
    assert set(body) == {"v", "site", "gw", "stream", "seq", "prev", "boot", "t", "senml", "events"}
    assert body["v"] == 1
    # canonical re-encoding reproduces the bytes (RFC 8949 4.2), and encoding is repeatable
    assert cbor2.dumps(body, canonical=True) == payload
    assert batch.encode_payload(header(), readings=READINGS, events=EVENTS) == payload
    # event maps carry exactly the documented keys
    assert set(body["events"][0]) == {"id", "kind", "sev", "state", "src", "t", "data"}
    assert body["events"][0]["sev"] == "fire"
    assert body["events"][1]["state"] == "cleared"
    # the SenML pack uses CBOR integer labels
    assert all(isinstance(k, int) for rec in body["senml"] for k in rec)


def test_ed25519_sealing_is_reproducible() -> None:
    assert sealed() == sealed()


def test_kid_is_sha256_of_spki_truncated() -> None:
    for pub in (PUB, ec.generate_private_key(ec.SECP256R1()).public_key()):
        der = pub.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        assert batch.kid_for(pub) == hashlib.sha256(der).digest()[:16]
    assert batch.kid_for(PUB) != batch.kid_for(ed25519.Ed25519PrivateKey.generate().public_key())


def test_p256_batches() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    message = batch.seal(header(), key=key, readings=READINGS)
    got = batch.decode(message)
    assert got.alg == cose.ALG_ES256
    assert got.kid == batch.kid_for(key.public_key())
    assert cose.verify1(message, key.public_key()) == cose.parse1(message).payload


def test_chain_of_batches() -> None:
    prev = ZERO_DIGEST
    digests = []
    for seq in range(1, 5):
        message = batch.seal(header(seq, prev), key=KEY, readings=READINGS[:1])
        got = batch.decode(message)
        assert got.seq == seq
        assert got.prev == prev
        prev = got.digest
        digests.append(got.digest)
    assert len(set(digests)) == 4


def test_default_time_is_now() -> None:
    before = time.time()
    got = batch.decode(batch.seal(header(t=None), key=KEY))
    assert before <= got.t <= time.time() + 1
    # an int time is encoded as a float
    assert isinstance(batch.decode(batch.seal(header(t=5), key=KEY)).t, float)


def test_empty_batch() -> None:
    got = batch.decode(batch.seal(header(), key=KEY))
    assert got.readings == ()
    assert got.events == ()
    assert got.lost == ()


def test_extra_keys_round_trip() -> None:
    der = b"0\x82\x01\x00fake-der"
    extra = {
        "birth": {
            "version": "0.1.0",
            "boot": 4,
            "devices": [{"name": "panel1", "driver": "modbus-panel"}],
            "cert": der,
            "previous_certs": [der],
            "active": [{"id": "e1", "kind": "fire", "sev": "fire", "src": "p", "t": T0}],
        },
        "x-future": [1, {"a": b"\x02"}],
    }
    got = batch.decode(batch.seal(header(stream="state"), key=KEY, extra=extra))
    assert dict(got.extra) == extra
    got = batch.decode(
        batch.seal(
            header(stream="state"), key=KEY, extra={"death": {"boot": 4, "reason": "shutdown"}}
        )
    )
    assert dict(got.extra) == {"death": {"boot": 4, "reason": "shutdown"}}


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"seq": 0}, "seq"),
        ({"seq": -1}, "seq"),
        ({"seq": True}, "seq"),
        ({"seq": 2**64}, "seq"),
        ({"seq": 2, "prev": ZERO_DIGEST}, "zero bytes exactly"),
        ({"seq": 1, "prev": b"\x01" * 32}, "zero bytes exactly"),
        ({"prev": b"\x00" * 31}, "32 bytes"),
        ({"prev": "00" * 32}, "32 bytes"),
        ({"boot": -1}, "boot"),
        ({"boot": 1.0}, "boot"),
        ({"site": ""}, "site"),
        ({"site": "a/b"}, "site"),
        ({"gw": "gw:1"}, "gw"),
        ({"gw": "gw1\n"}, "gw"),
        ({"stream": "x" * 65}, "stream"),
        ({"stream": "#"}, "stream"),
        ({"t": math.nan}, "finite"),
        ({"t": -1.0}, "finite"),
    ],
)
def test_bad_header_is_a_value_error(kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        batch.seal(header(**kw), key=KEY)


def test_bad_extra_and_data_are_value_errors() -> None:
    with pytest.raises(ValueError, match="replace standard"):
        batch.encode_payload(header(), extra={"seq": 5})
    with pytest.raises(ValueError, match="text"):
        batch.encode_payload(header(), extra={1: 5})  # type: ignore[dict-item]
    bad_event = Event("fire", "fire", "active", "p", T0, {"x": object()})
    with pytest.raises(ValueError, match="cannot be encoded"):
        batch.encode_payload(header(), events=[bad_event])
    with pytest.raises(ValueError, match="lost range"):
        batch.encode_payload(header(), lost=[LostRange("telemetry", 5, 4, "x")])
    with pytest.raises(ValueError, match="lost range"):
        batch.encode_payload(header(), lost=[LostRange("telemetry", 0, 4, "x")])


def _payload() -> dict[str, Any]:
    body: dict[str, Any] = cbor2.loads(
        batch.encode_payload(
            header(),
            readings=READINGS,
            events=EVENTS,
            lost=[LostRange("alarm", 1, 2, "expired")],
        )
    )
    return body


def _sign(body: Any, protected: dict[int, Any] | None = None) -> bytes:
    prot = {3: CONTENT_TYPE, 4: batch.kid_for(PUB)} if protected is None else protected
    return cose.sign1(cbor2.dumps(body, canonical=True), KEY, protected=prot)


def _set(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    body = _payload()
    target: Any = body
    for step in path[:-1]:
        target = target[step]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return body


_DELETE = object()

BAD_PAYLOADS: list[tuple[str, tuple[Any, ...], Any, str]] = [
    ("v2", ("v",), 2, "version"),
    ("v-true", ("v",), True, "version"),
    ("v-missing", ("v",), _DELETE, "lacks"),
    ("site-int", ("site",), 5, "site"),
    ("site-empty", ("site",), "", "site"),
    ("site-slash", ("site",), "a/b", "site"),
    ("site-newline", ("site",), "site1\n", "site"),
    ("gw-missing", ("gw",), _DELETE, "lacks"),
    ("stream-bytes", ("stream",), b"x", "stream"),
    ("seq-0", ("seq",), 0, "seq"),
    ("seq-neg", ("seq",), -5, "seq"),
    ("seq-float", ("seq",), 1.0, "seq"),
    ("seq-huge-bignum", ("seq",), 2**64, "tags are not allowed"),
    ("seq-2-zero-prev", ("seq",), 2, "all zero"),
    ("prev-short", ("prev",), b"\x00" * 31, "32-byte"),
    ("prev-text", ("prev",), "0" * 32, "32-byte"),
    ("prev-nonzero-seq1", ("prev",), b"\x01" * 32, "all zero"),
    ("boot-neg", ("boot",), -1, "boot"),
    ("boot-text", ("boot",), "1", "boot"),
    ("t-int", ("t",), 5, "float"),
    ("t-nan", ("t",), math.nan, "float"),
    ("t-inf", ("t",), math.inf, "float"),
    ("t-missing", ("t",), _DELETE, "lacks"),
    ("senml-map", ("senml",), {}, "senml"),
    ("senml-bad-record", ("senml", 0), "x", "record"),
    ("senml-bad-device", ("senml", 0, -2), "pa nel/", "record 0"),
    ("events-map", ("events",), {}, "events"),
    ("event-not-map", ("events", 0), [1], "events\\[0\\]"),
    ("event-missing-key", ("events", 0, "id"), _DELETE, "missing"),
    ("event-unknown-key", ("events", 0, "zzz"), 1, "unknown"),
    ("event-sev-unknown", ("events", 0, "sev"), "apocalypse", "severity"),
    ("event-sev-int", ("events", 0, "sev"), 1, "severity"),
    ("event-sev-list", ("events", 0, "sev"), [1], "severity"),
    ("event-state-unknown", ("events", 0, "state"), "gone", "state"),
    ("event-kind-empty", ("events", 0, "kind"), "", "kind"),
    ("event-src-int", ("events", 0, "src"), 3, "src"),
    ("event-id-bytes", ("events", 0, "id"), b"1", "id"),
    ("event-t-text", ("events", 0, "t"), "now", "float"),
    ("event-data-list", ("events", 0, "data"), [], "data"),
    ("event-data-int-key", ("events", 0, "data"), {1: 2}, "non-text key"),
    ("event-data-deep-int-key", ("events", 0, "data", "nested"), {1: 2}, "non-text key"),
    ("lost-map", ("lost",), {}, "lost"),
    ("lost-first-0", ("lost", 0, "first"), 0, "first"),
    ("lost-last-lt-first", ("lost", 0, "last"), 0, "last"),
    ("lost-reason-int", ("lost", 0, "reason"), 1, "reason"),
    ("lost-stream-bad", ("lost", 0, "stream"), "a b", "stream"),
    ("lost-extra-key", ("lost", 0, "x"), 1, "unknown"),
    ("birth-not-map", ("birth",), [1], "birth"),
    ("birth-version-int", ("birth",), {"version": 1}, "version"),
    ("birth-devices-text", ("birth",), {"devices": "panel1"}, "devices"),
    ("birth-boot-neg", ("birth",), {"boot": -1}, "boot"),
    ("birth-previous-text", ("birth",), {"previous_certs": ["x"]}, "previous_certs"),
    ("death-boot-text", ("death",), {"boot": "1"}, "boot"),
    ("birth-cert-text", ("birth",), {"cert": "PEM"}, "cert"),
    ("death-reason-int", ("death",), {"reason": 1}, "reason"),
    ("extra-int-key-in-value", ("x-ext",), {1: 1}, "non-text key"),
]


@pytest.mark.parametrize(
    ("path", "value", "match"), [b[1:] for b in BAD_PAYLOADS], ids=[b[0] for b in BAD_PAYLOADS]
)
def test_decode_rejects_bad_field(path: tuple[Any, ...], value: Any, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        batch.decode(_sign(_set(path, value)))


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ([1, 2], "payload must be a map"),
        ({1: 1}, "payload keys are text"),
        (b"x", "payload must be a map"),
    ],
)
def test_decode_rejects_bad_payload_shape(body: Any, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        batch.decode(_sign(body))


def test_decode_rejects_duplicate_payload_keys() -> None:
    payload = batch.encode_payload(header())
    assert payload[0] == 0xAA  # map of 10
    dup = b"\xab" + payload[1:] + cbor2.dumps("v") + cbor2.dumps(1)
    message = cose.sign1(dup, KEY, protected={3: CONTENT_TYPE, 4: batch.kid_for(PUB)})
    with pytest.raises(ProtocolError, match="Duplicate"):
        batch.decode(message)


@pytest.mark.parametrize(
    ("protected", "match"),
    [
        ({3: "application/cbor", 4: b"k" * 16}, "content type"),
        ({4: b"k" * 16}, "content type"),
        ({3: CONTENT_TYPE}, "kid"),
        ({3: CONTENT_TYPE, 4: b"k" * 8}, "kid"),
    ],
)
def test_decode_checks_the_envelope(protected: dict[int, Any], match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        batch.decode(_sign(_payload(), protected))


def test_decode_kid_must_be_protected() -> None:
    payload = cbor2.dumps(_payload(), canonical=True)
    message = cose.sign1(
        payload, KEY, protected={3: CONTENT_TYPE}, unprotected={4: batch.kid_for(PUB)}
    )
    with pytest.raises(ProtocolError, match="kid"):
        batch.decode(message)


@pytest.mark.parametrize("junk", [b"", b"\x00", b"garbage", b"\xd2\x84", b"\xd8\x62\x80"])
def test_decode_garbage_is_a_protocol_error(junk: bytes) -> None:
    with pytest.raises(ProtocolError, match="not a signed batch"):
        batch.decode(junk)


def test_decode_detached_is_a_protocol_error() -> None:
    sign = cose.parse1(sealed())
    detached = cbor2.dumps(cbor2.CBORTag(18, [sign.protected_bytes, {}, None, sign.signature]))
    with pytest.raises(ProtocolError, match="detached"):
        batch.decode(detached)


_GOOD = sealed()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    position=st.integers(min_value=0, max_value=len(_GOOD) - 1),
    replacement=st.binary(min_size=0, max_size=4),
    drop=st.integers(min_value=0, max_value=4),
)
def test_decode_never_crashes(position: int, replacement: bytes, drop: int) -> None:
    mutated = _GOOD[:position] + replacement + _GOOD[position + drop :]
    try:
        got = batch.decode(mutated)
    except ProtocolError:
        return
    assert got.raw == mutated
