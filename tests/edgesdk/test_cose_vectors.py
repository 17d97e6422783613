"""Every COSE_Sign1 vector of the IETF COSE WG example set (shared/vectors/cose)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519

from edgesdk import cose
from edgesdk.errors import SignatureError
from tests.support import VECTORS

COSE_DIR = VECTORS / "cose"
SIGN1_FILES = sorted(
    [
        *COSE_DIR.glob("sign1-tests/*.json"),
        COSE_DIR / "eddsa-examples/eddsa-sig-01.json",
        COSE_DIR / "eddsa-examples/eddsa-sig-02.json",
        COSE_DIR / "RFC8152/Appendix_C_2_1.json",
        *COSE_DIR.glob("ecdsa-examples/*.json"),
        *COSE_DIR.glob("countersign*/*.json"),
    ]
)


def _b64int(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


def _keys(jwk: dict[str, Any]) -> tuple[cose.PrivateKey, cose.PublicKey]:
    if jwk["kty"] == "OKP":
        d = bytes.fromhex(jwk["d_hex"])
        priv: cose.PrivateKey = (
            ed25519.Ed25519PrivateKey.from_private_bytes(d)
            if jwk["crv"] == "Ed25519"
            else ed448.Ed448PrivateKey.from_private_bytes(d)
        )
        pub = priv.public_key()
        assert pub.public_bytes_raw() == bytes.fromhex(jwk["x_hex"])
        return priv, pub
    assert jwk["crv"] == "P-256"
    numbers = ec.EllipticCurvePublicNumbers(_b64int(jwk["x"]), _b64int(jwk["y"]), ec.SECP256R1())
    priv_ec = ec.derive_private_key(_b64int(jwk["d"]), ec.SECP256R1())
    assert priv_ec.public_key().public_numbers() == numbers
    return priv_ec, numbers.public_key()


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _vector_id(path: Path) -> str:
    return str(path.relative_to(COSE_DIR))


def test_vector_set_is_complete() -> None:
    # 9 sign1-tests + 2 eddsa + RFC 8152 C.2.1 + 1 ecdsa + 3 countersign = 16 Sign1 vectors
    assert len(SIGN1_FILES) == 16
    assert all(p.is_file() for p in SIGN1_FILES)


@pytest.mark.parametrize("path", SIGN1_FILES, ids=_vector_id)
def test_sign1_vector(path: Path) -> None:
    vec = _load(path)
    sign0 = vec["input"]["sign0"]
    _, pub = _keys(sign0["key"])
    message = bytes.fromhex(vec["output"]["cbor"])
    aad = bytes.fromhex(sign0.get("external", ""))
    plaintext = vec["input"]["plaintext"].encode()
    # sign-pass-01 carries alg only in the unprotected bucket: our policy rejects that by
    # default and accepts it only on explicit opt-in (see edgesdk.cose).
    interop = "sign-pass-01" in path.name
    if vec.get("fail"):
        for allow in (False, True):
            with pytest.raises(SignatureError):
                cose.verify1(message, pub, external_aad=aad, allow_unprotected_alg=allow)
        return
    if interop:
        with pytest.raises(SignatureError, match="unprotected"):
            cose.verify1(message, pub, external_aad=aad)
    payload = cose.verify1(message, pub, external_aad=aad, allow_unprotected_alg=interop)
    assert payload == plaintext


# Vectors whose message was changed after ToBeSign was computed: that is why they fail.
TAMPERED = {
    "sign-fail-02.json",  # last payload byte
    "sign-fail-03.json",  # alg -999
    "sign-fail-04.json",  # alg "unknown"
    "sign-fail-06.json",  # protected attribute added
    "sign-fail-07.json",  # protected attribute removed
}


@pytest.mark.parametrize("path", SIGN1_FILES, ids=_vector_id)
def test_sig_structure_matches_tobesign(path: Path) -> None:
    vec = _load(path)
    message = bytes.fromhex(vec["output"]["cbor"])
    aad = bytes.fromhex(vec["input"]["sign0"].get("external", ""))
    expected = bytes.fromhex(vec["intermediates"]["ToBeSign_hex"])
    if path.name == "sign-fail-01.json":  # only the tag (998) is wrong
        with pytest.raises(SignatureError, match="tag 998"):
            cose.parse1(message)
        message = b"\xd2" + message[3:]
    sign = cose.parse1(message)
    assert sign.payload is not None
    # sign-pass-01 transmits an empty protected map as h'A0' but signs h'' (RFC 9052 4.4)
    prot = sign.protected_bytes if sign.protected else b""
    ours = cose.sig_structure(prot, aad, sign.payload)
    if path.name in TAMPERED:
        assert ours != expected
    else:
        assert ours == expected


EDDSA_FILES = [
    p
    for p in SIGN1_FILES
    if _load(p)["input"]["sign0"]["key"]["kty"] == "OKP" and "fail" not in p.name
]


@pytest.mark.parametrize("path", EDDSA_FILES, ids=_vector_id)
def test_eddsa_resign_is_deterministic(path: Path) -> None:
    """Ed25519/Ed448 are deterministic: re-signing with d reproduces the vector's bytes."""
    vec = _load(path)
    sign0 = vec["input"]["sign0"]
    priv, pub = _keys(sign0["key"])
    expected = bytes.fromhex(vec["output"]["cbor"])
    original = cose.parse1(expected)
    assert original.payload is not None
    tbs = bytes.fromhex(vec["intermediates"]["ToBeSign_hex"])
    assert isinstance(priv, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)
    assert priv.sign(tbs) == original.signature
    # and our sign1 over the same protected map reproduces the whole message when the
    # unprotected bucket is the same
    message = cose.sign1(
        original.payload,
        priv,
        protected=dict(original.protected),
        unprotected=dict(original.unprotected),
    )
    assert message == expected
    assert cose.verify1(message, pub) == original.payload


ECDSA_PASS = [
    p
    for p in SIGN1_FILES
    if _load(p)["input"]["sign0"]["key"]["kty"] == "EC" and not _load(p).get("fail")
]


@pytest.mark.parametrize("path", ECDSA_PASS, ids=_vector_id)
def test_es256_resign_verifies(path: Path) -> None:
    """cryptography's ECDSA is randomised: re-sign with d, then verify with x/y."""
    vec = _load(path)
    sign0 = vec["input"]["sign0"]
    priv, pub = _keys(sign0["key"])
    original = cose.parse1(bytes.fromhex(vec["output"]["cbor"]))
    assert original.payload is not None
    aad = bytes.fromhex(sign0.get("external", ""))
    prot = {1: cose.ALG_ES256, **dict(original.protected)}
    message = cose.sign1(original.payload, priv, protected=prot, external_aad=aad)
    assert cose.verify1(message, pub, external_aad=aad) == original.payload
    resigned = cose.parse1(message)
    assert len(resigned.signature) == 64  # raw r || s, not DER
    # the Sig_structure is the vector's (when the vector signs its own protected bytes)
    if original.protected:
        assert resigned.protected_bytes == original.protected_bytes
        tbs = cose.sig_structure(resigned.protected_bytes, aad, original.payload)
        assert tbs == bytes.fromhex(vec["intermediates"]["ToBeSign_hex"])


def test_cose_sign_multi_signer_is_rejected() -> None:
    """eddsa-01.json is a COSE_Sign (tag 98), not a Sign1: verify1 must refuse it."""
    vec = _load(COSE_DIR / "eddsa-examples/eddsa-01.json")
    _, pub = _keys(vec["input"]["sign"]["signers"][0]["key"])
    message = bytes.fromhex(vec["output"]["cbor"])
    with pytest.raises(SignatureError, match="tag 98"):
        cose.verify1(message, pub)
    # untagged, its fourth element is the signers array, not a signature
    untagged = cbor2.dumps(cbor2.loads(message).value)
    with pytest.raises(SignatureError, match="signature must be a byte string"):
        cose.verify1(untagged, pub)


def test_countersigned_vectors_keep_countersignatures_unprotected() -> None:
    for path in COSE_DIR.glob("countersign*/*.json"):
        sign = cose.parse1(bytes.fromhex(_load(path)["output"]["cbor"]))
        assert sign.unprotected.keys() & {7, 9}, path
        assert sign.kid == b"11"
