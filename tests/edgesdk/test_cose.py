"""edgesdk.cose: round trips for every algorithm, and negatives derived from eddsa-sig-01."""

from __future__ import annotations

import json
from collections.abc import Callable

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgesdk import cose
from edgesdk.errors import ProtocolError, SignatureError
from tests.support import VECTORS

_VEC = json.loads((VECTORS / "cose/eddsa-examples/eddsa-sig-01.json").read_text())
KEY = ed25519.Ed25519PrivateKey.from_private_bytes(
    bytes.fromhex(_VEC["input"]["sign0"]["key"]["d_hex"])
)
PUB = KEY.public_key()
GOOD = bytes.fromhex(_VEC["output"]["cbor"])
PAYLOAD = b"This is the content."


def _parts(message: bytes = GOOD) -> list[object]:
    item = cbor2.loads(message)
    assert isinstance(item, cbor2.CBORTag)
    assert item.tag == 18
    parts: list[object] = list(item.value)
    return parts


def _message(parts: list[object], tag: int | None = 18) -> bytes:
    return cbor2.dumps(parts if tag is None else cbor2.CBORTag(tag, parts))


def _resign(protected: bytes, unprotected: dict[object, object] | None = None) -> bytes:
    """A message with these exact protected bytes, correctly signed with KEY."""
    sig = KEY.sign(cose.sig_structure(protected, b"", PAYLOAD))
    return _message([protected, unprotected or {}, PAYLOAD, sig])


def test_good_vector_verifies() -> None:
    assert cose.verify1(GOOD, PUB) == PAYLOAD


def _flip(index: int) -> Callable[[list[object]], None]:
    def mutate(parts: list[object]) -> None:
        value = parts[index]
        assert isinstance(value, bytes)
        parts[index] = bytes([value[0] ^ 0x01]) + value[1:]

    return mutate


def _flip_last(index: int) -> Callable[[list[object]], None]:
    def mutate(parts: list[object]) -> None:
        value = parts[index]
        assert isinstance(value, bytes)
        parts[index] = value[:-1] + bytes([value[-1] ^ 0x80])

    return mutate


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (_flip(2), "bad signature"),  # payload first bit
        (_flip_last(2), "bad signature"),  # payload last bit
        (_flip(3), "bad signature"),  # signature R
        (_flip_last(3), "bad signature"),  # signature S
        (lambda p: p.__setitem__(0, cbor2.dumps({1: -8, 3: 1})), "bad signature"),  # ctyp
        (lambda p: p.__setitem__(0, cbor2.dumps({1: -8})), "bad signature"),  # ctyp removed
        (lambda p: p.__setitem__(0, cbor2.dumps({1: -19, 3: 0})), "bad signature"),  # alg swap
        (lambda p: p.__setitem__(0, cbor2.dumps({1: -7, 3: 0})), "does not match"),
        (lambda p: p.__setitem__(0, cbor2.dumps({1: -9, 3: 0})), "does not match"),
        (lambda p: p.__setitem__(0, cbor2.dumps({1: -35, 3: 0})), "unsupported alg"),
        (lambda p: p.__setitem__(0, cbor2.dumps({1: "EdDSA", 3: 0})), "unsupported alg"),
        (lambda p: p.__setitem__(0, cbor2.dumps({1: True, 3: 0})), "alg must be"),
        (lambda p: p.__setitem__(0, cbor2.dumps({3: 0})), "no alg"),
        (lambda p: p.__setitem__(0, b""), "no alg"),
        (lambda p: p.__setitem__(0, cbor2.dumps([1, -8])), "must encode a map"),
        (lambda p: p.__setitem__(0, {1: -8}), "protected header must be a byte string"),
        (lambda p: p.__setitem__(1, []), "unprotected header must be a map"),
        (lambda p: p.__setitem__(1, {4: b"11", 3: 0}), "both buckets"),
        (lambda p: p.__setitem__(1, {4: 1}), "kid must be a byte string"),
        (lambda p: p.__setitem__(1, {1.5: 1}), "label"),
        (lambda p: p.__setitem__(1, {2: [4]}), "crit must be in the protected"),
        (lambda p: p.__setitem__(2, None), "detached"),
        (lambda p: p.__setitem__(2, "text"), "payload must be"),
        (lambda p: p.__setitem__(3, p[3][:-1]), "signature is 63 bytes"),  # type: ignore[index]
        (lambda p: p.__setitem__(3, p[3] + b"\0"), "signature is 65 bytes"),  # type: ignore[operator]
        (lambda p: p.__setitem__(3, b""), "signature is 0 bytes"),
        (lambda p: p.append(b""), "array of 4"),
        (lambda p: p.pop(), "array of 4"),
    ],
)
def test_eddsa_negative(mutate: Callable[[list[object]], None], match: str) -> None:
    parts = _parts()
    mutate(parts)
    with pytest.raises(SignatureError, match=match):
        cose.verify1(_message(parts), PUB)


@pytest.mark.parametrize(
    ("crit", "match"),
    [
        ([99], "not understood"),
        (["x-custom"], "not understood"),
        ([], "non-empty array"),
        (4, "non-empty array"),
        ([3, 33], "not understood"),
        ([5], "not understood"),
        ([1.0], "label"),
    ],
)
def test_crit_rejected(crit: object, match: str) -> None:
    protected = cbor2.dumps({1: -8, 2: crit, 3: 0}, canonical=True)
    with pytest.raises(SignatureError, match=match):
        cose.verify1(_resign(protected, {4: b"11"}), PUB)


def test_crit_naming_understood_labels_passes() -> None:
    protected = cbor2.dumps({1: -8, 2: [3], 3: 0}, canonical=True)
    assert cose.verify1(_resign(protected, {4: b"11"}), PUB) == PAYLOAD
    # ... but a crit label absent from the protected bucket is refused
    protected = cbor2.dumps({1: -8, 2: [4], 3: 0}, canonical=True)
    with pytest.raises(SignatureError, match="absent"):
        cose.verify1(_resign(protected, {4: b"11"}), PUB)


@pytest.mark.parametrize(
    ("protected_hex", "unprotected_hex", "where"),
    [
        ("A3012703000301", "A1044231 31", "protected"),  # {1:-8, 3:0, 3:1}
        ("A201270127", "A1044231 31", "protected"),  # alg twice
        ("A201270300", "A204423131044232 32", "unprotected"),  # kid twice
        ("A201270300", "A20442313118044232 32", "unprotected"),  # kid twice, 2nd non-preferred
        ("A201270300", "A2074001A201010102", "unprotected"),  # nested dup inside a value
    ],
)
def test_duplicate_map_keys_rejected(protected_hex: str, unprotected_hex: str, where: str) -> None:
    protected = bytes.fromhex(protected_hex)
    unprotected = bytes.fromhex(unprotected_hex.replace(" ", ""))
    sig = KEY.sign(cose.sig_structure(protected, b"", PAYLOAD))
    # hand-assembled: cbor2 cannot encode a map with duplicate keys
    message = (
        b"\xd2\x84" + cbor2.dumps(protected) + unprotected + cbor2.dumps(PAYLOAD) + cbor2.dumps(sig)
    )
    with pytest.raises(SignatureError, match=r"[Dd]uplicate"):
        cose.verify1(message, PUB)
    with pytest.raises(SignatureError, match=r"[Dd]uplicate"):
        cose.parse1(message)


@pytest.mark.parametrize(
    ("tag", "match"),
    [(98, "tag 98"), (17, "tag 17"), (998, "tag 998"), (55799, "tag 55799"), (16, "tag 16")],
)
def test_wrong_tag_rejected(tag: int, match: str) -> None:
    with pytest.raises(SignatureError, match=match):
        cose.verify1(_message(_parts(), tag=tag), PUB)


def test_untagged_accepted_and_nested_tags_rejected() -> None:
    untagged = _message(_parts(), tag=None)
    assert cose.verify1(untagged, PUB) == PAYLOAD
    assert cose.parse1(untagged).tagged is False
    assert cose.parse1(GOOD).tagged is True
    # tag 18 inside tag 18, or a tag on an inner item, is malformed
    with pytest.raises(SignatureError):
        cose.verify1(b"\xd2" + GOOD, PUB)
    parts = _parts()
    parts[2] = cbor2.CBORTag(24, PAYLOAD)
    with pytest.raises(SignatureError, match="tags are not allowed"):
        cose.verify1(_message(parts), PUB)


@pytest.mark.parametrize("cut", [1, 2, 5, 10, len(GOOD) // 2, len(GOOD) - 1])
def test_truncated_rejected(cut: int) -> None:
    with pytest.raises(SignatureError):
        cose.verify1(GOOD[:cut], PUB)


@pytest.mark.parametrize(
    "junk",
    [b"", b"\x00", b"\xff", b"\xd2", b"\xd2\xff", b"\x1c", b"\xdf", b"\xa0", b"null", GOOD + b"\0"],
)
def test_junk_rejected(junk: bytes) -> None:
    with pytest.raises(SignatureError):
        cose.verify1(junk, PUB)


def test_not_bytes_rejected() -> None:
    with pytest.raises(SignatureError, match="bytes"):
        cose.verify1("d284", PUB)  # type: ignore[arg-type]


def test_wrong_keys_rejected() -> None:
    other = ed25519.Ed25519PrivateKey.generate().public_key()
    with pytest.raises(SignatureError, match="bad signature"):
        cose.verify1(GOOD, other)
    with pytest.raises(SignatureError, match="does not match"):
        cose.verify1(GOOD, ec.generate_private_key(ec.SECP256R1()).public_key())
    # EdDSA (-8) covers Ed448 too: the 64-byte Ed25519 signature is then the wrong size
    with pytest.raises(SignatureError, match="ed448 needs 114"):
        cose.verify1(GOOD, ed448.Ed448PrivateKey.generate().public_key())


def test_unprotected_alg_only_is_refused_unless_opted_in() -> None:
    parts = _parts()
    sig = KEY.sign(cose.sig_structure(b"", b"", PAYLOAD))
    message = _message([b"", {1: -8, 4: b"11"}, PAYLOAD, sig])
    del parts
    with pytest.raises(SignatureError, match="unprotected"):
        cose.verify1(message, PUB)
    assert cose.verify1(message, PUB, allow_unprotected_alg=True) == PAYLOAD
    # opting in never lets an unprotected alg pick a different key type
    with pytest.raises(SignatureError, match="does not match"):
        cose.verify1(
            message,
            ec.generate_private_key(ec.SECP256R1()).public_key(),
            allow_unprotected_alg=True,
        )


KEYS: list[tuple[str, cose.PrivateKey, int]] = [
    ("ed25519", ed25519.Ed25519PrivateKey.generate(), cose.ALG_EDDSA),
    ("ed25519-fully-specified", ed25519.Ed25519PrivateKey.generate(), cose.ALG_ED25519),
    ("ed448", ed448.Ed448PrivateKey.generate(), cose.ALG_EDDSA),
    ("p256", ec.generate_private_key(ec.SECP256R1()), cose.ALG_ES256),
    ("p256-fully-specified", ec.generate_private_key(ec.SECP256R1()), cose.ALG_ESP256),
]


@pytest.mark.parametrize(("name", "key", "alg"), KEYS, ids=[k[0] for k in KEYS])
def test_round_trip_every_algorithm(name: str, key: cose.PrivateKey, alg: int) -> None:
    payload = b"\x00\x01 edge payload \xff" * 10
    message = cose.sign1(
        payload, key, kid=b"kid-1", protected={1: alg}, unprotected={33: b"x"}, external_aad=b"ad"
    )
    assert message[0] == 0xD2
    sign = cose.parse1(message)
    assert sign.alg == alg
    assert sign.kid == b"kid-1"
    assert sign.protected[4] == b"kid-1"  # kid is protected
    assert sign.unprotected == {33: b"x"}
    assert cose.verify1(message, key.public_key(), external_aad=b"ad") == payload
    with pytest.raises(SignatureError, match="bad signature"):
        cose.verify1(message, key.public_key(), external_aad=b"other")
    with pytest.raises(SignatureError, match="bad signature"):
        cose.verify1(message, key.public_key())


def test_default_alg_follows_key_type() -> None:
    assert cose.parse1(cose.sign1(b"x", KEY)).alg == cose.ALG_EDDSA
    assert cose.parse1(cose.sign1(b"x", ed448.Ed448PrivateKey.generate())).alg == cose.ALG_EDDSA
    p256 = ec.generate_private_key(ec.SECP256R1())
    assert cose.parse1(cose.sign1(b"x", p256)).alg == cose.ALG_ES256


def test_es256_signature_is_raw_r_s_not_der() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    sign = cose.parse1(cose.sign1(b"payload", key))
    assert len(sign.signature) == 64
    # the same signature in DER form is refused (wrong length)
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    der = encode_dss_signature(
        int.from_bytes(sign.signature[:32], "big"), int.from_bytes(sign.signature[32:], "big")
    )
    parts = [sign.protected_bytes, {}, b"payload", der]
    with pytest.raises(SignatureError, match="signature is"):
        cose.verify1(_message(parts), key.public_key())
    # and a raw signature verifies with cryptography directly
    key.public_key().verify(
        der,
        cose.sig_structure(sign.protected_bytes, b"", b"payload"),
        ec.ECDSA(hashes.SHA256()),
    )


def test_sign_misuse_is_a_value_or_type_error() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(TypeError, match="unsupported"):
        cose.sign1(b"x", p384)
    with pytest.raises(SignatureError, match="does not match"):
        cose.verify1(GOOD, p384.public_key())
    with pytest.raises(ValueError, match="cannot be used"):
        cose.sign1(b"x", KEY, protected={1: cose.ALG_ES256})
    with pytest.raises(ValueError, match="cannot be used"):
        cose.sign1(b"x", ed448.Ed448PrivateKey.generate(), protected={1: cose.ALG_ED25519})
    with pytest.raises(ValueError, match="both buckets"):
        cose.sign1(b"x", KEY, protected={3: 0}, unprotected={3: 0})
    with pytest.raises(ValueError, match="protected bucket"):
        cose.sign1(b"x", KEY, unprotected={1: -8})


def test_detached_payload_only_on_request() -> None:
    attached = cose.parse1(cose.sign1(PAYLOAD, KEY))
    detached = _message([attached.protected_bytes, {}, None, attached.signature])
    with pytest.raises(SignatureError, match="detached"):
        cose.verify1(detached, PUB)
    assert cose.verify1(detached, PUB, detached_payload=PAYLOAD) == PAYLOAD
    with pytest.raises(SignatureError, match="bad signature"):
        cose.verify1(detached, PUB, detached_payload=PAYLOAD + b"!")
    with pytest.raises(SignatureError, match="carries a payload"):
        cose.verify1(cose.sign1(PAYLOAD, KEY), PUB, detached_payload=PAYLOAD)


def test_parse1_exposes_the_structure() -> None:
    sign = cose.parse1(GOOD)
    assert sign.protected == {1: -8, 3: 0}
    assert sign.protected_bytes == bytes.fromhex("A201270300")
    assert sign.unprotected == {4: b"11"}
    assert sign.payload == PAYLOAD
    assert sign.alg == cose.ALG_EDDSA
    assert sign.kid == b"11"
    assert len(sign.signature) == 64


@pytest.mark.parametrize(
    ("data_hex", "match"),
    [
        ("a201010102", "Duplicate"),
        ("a20101f93c0002", "Duplicate"),  # 1 and 1.0 collide in Python
        ("81a201010102", "Duplicate"),  # nested
        ("c11a514b67b0", "tags are not allowed"),
        ("d81c81d81d00", "tags are not allowed"),  # value sharing: cyclic structure
        ("0101", "trailing"),
        ("61ff", "malformed"),  # invalid UTF-8
        ("1c", "malformed"),
        ("5bffffffffffffffff", "malformed"),  # absurd length, truncated
        ("81" * 100 + "01", "malformed"),  # too deep
    ],
)
def test_loads_strict_rejects(data_hex: str, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        cose.loads_strict(bytes.fromhex(data_hex))


def test_loads_strict_accepts_plain_data() -> None:
    value = {"a": [1, -2, 1.5, b"\0", "t", None, True, {"b": {}}]}
    assert cose.loads_strict(cbor2.dumps(value)) == value
    assert cose.loads_strict(bytes.fromhex("bf6161f5ff")) == {"a": True}  # indefinite map


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    position=st.integers(min_value=0, max_value=len(GOOD) - 1),
    replacement=st.binary(min_size=0, max_size=3),
    drop=st.integers(min_value=0, max_value=3),
)
def test_mutations_only_ever_raise_signature_error(
    position: int, replacement: bytes, drop: int
) -> None:
    """Any splice of the good message either verifies to the same payload or raises
    SignatureError: never another exception, never a different payload."""
    mutated = GOOD[:position] + replacement + GOOD[position + drop :]
    try:
        payload = cose.verify1(mutated, PUB)
    except SignatureError:
        return
    assert payload == PAYLOAD
