"""edgesdk.verify.Verifier: trusted keys, certificates and their site/gateway binding."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from edgesdk import batch, cose
from edgesdk.batch import CONTENT_TYPE, ZERO_DIGEST, BatchHeader
from edgesdk.errors import ConfigError, ProtocolError, SignatureError, UnknownKeyError
from edgesdk.model import Reading
from edgesdk.verify import TrustedKey, Verifier

T0 = 1767225600.0  # 2026-01-01T00:00:00Z
GW1 = ed25519.Ed25519PrivateKey.generate()
GW2 = ec.generate_private_key(ec.SECP256R1())
READING = Reading("panel1", "zone1/smoke", 0.5, "%/m", T0)


def seal(
    key: cose.PrivateKey = GW1, *, site: str = "site1", gw: str = "gw1", t: float = T0
) -> bytes:
    header = BatchHeader(site, gw, "telemetry", 1, ZERO_DIGEST, 1, t)
    return batch.seal(header, key=key, readings=[READING])


def make_cert(
    key: Any,
    *,
    uris: tuple[str, ...] = ("urn:edge:site1:gw1",),
    not_before: dt.datetime | None = None,
    days: int = 3650,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gw1.site1")])
    start = not_before or dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
    )
    if uris:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(u) for u in uris]),
            critical=False,
        )
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm)


def test_trusted_key_verifies() -> None:
    verifier = Verifier()
    kid = verifier.add_key(GW1.public_key())
    assert kid == batch.kid_for(GW1.public_key())
    message = seal()
    got = verifier.verify(message)
    assert got == batch.decode(message)
    assert got.readings == (READING,)


def test_keys_mapping_and_trusted_key_objects() -> None:
    kid1, kid2 = batch.kid_for(GW1.public_key()), batch.kid_for(GW2.public_key())
    verifier = Verifier({kid1: GW1.public_key(), kid2: TrustedKey(GW2.public_key(), "site1")})
    assert verifier.verify(seal()).gw == "gw1"
    assert verifier.verify(seal(GW2, gw="gw9")).gw == "gw9"
    with pytest.raises(SignatureError, match="bound to site"):
        verifier.verify(seal(GW2, site="site2"))
    assert set(verifier.keys) == {kid1, kid2}


def test_unknown_key() -> None:
    verifier = Verifier()
    verifier.add_key(GW2.public_key())
    with pytest.raises(UnknownKeyError, match="not trusted"):
        verifier.verify(seal())
    assert issubclass(UnknownKeyError, SignatureError)


def test_missing_kid_is_unknown_key() -> None:
    payload = batch.encode_payload(BatchHeader("site1", "gw1", "telemetry", 1, ZERO_DIGEST, 1, T0))
    message = cose.sign1(payload, GW1, protected={3: CONTENT_TYPE})
    verifier = Verifier()
    verifier.add_key(GW1.public_key())
    with pytest.raises(UnknownKeyError, match="no kid"):
        verifier.verify(message)
    # a kid only in the unprotected bucket is not covered by the signature: not used
    unprotected_kid = cose.sign1(
        payload,
        GW1,
        protected={3: CONTENT_TYPE},
        unprotected={4: batch.kid_for(GW1.public_key())},
    )
    with pytest.raises(UnknownKeyError, match="no kid in the protected header"):
        verifier.verify(unprotected_kid)


def test_tampered_message_fails_signature_not_unknown_key() -> None:
    verifier = Verifier()
    verifier.add_key(GW1.public_key())
    message = seal()
    sign = cose.parse1(message)
    assert sign.payload is not None
    tampered = cbor2.dumps(
        cbor2.CBORTag(
            18, [sign.protected_bytes, {}, sign.payload.replace(b"site1", b"site2"), sign.signature]
        )
    )
    with pytest.raises(SignatureError, match="bad signature") as info:
        verifier.verify(tampered)
    assert not isinstance(info.value, UnknownKeyError)


def test_kid_substitution_is_caught() -> None:
    """A message signed by GW2 but naming GW1's kid fails: the kid picks GW1's key."""
    payload = batch.encode_payload(BatchHeader("site1", "gw1", "telemetry", 1, ZERO_DIGEST, 1, T0))
    forged = cose.sign1(
        payload, GW2, protected={3: CONTENT_TYPE, 4: batch.kid_for(GW1.public_key())}
    )
    verifier = Verifier()
    verifier.add_key(GW1.public_key())
    with pytest.raises(SignatureError, match="does not match"):
        verifier.verify(forged)


def test_malformed_payload_after_valid_signature_is_protocol_error() -> None:
    verifier = Verifier()
    verifier.add_key(GW1.public_key())
    kid = batch.kid_for(GW1.public_key())
    bad = cose.sign1(cbor2.dumps({"v": 2}), GW1, protected={3: CONTENT_TYPE, 4: kid})
    with pytest.raises(ProtocolError, match=r"lacks|version"):
        verifier.verify(bad)
    wrong_ct = cose.sign1(cbor2.dumps({}), GW1, protected={3: "text/plain", 4: kid})
    with pytest.raises(ProtocolError, match="content type"):
        verifier.verify(wrong_ct)


def test_duplicate_payload_key_behind_a_valid_signature() -> None:
    """A trusted key signing a payload with "site" twice: rejected, never half-read."""
    payload = batch.encode_payload(BatchHeader("site1", "gw1", "telemetry", 1, ZERO_DIGEST, 1, T0))
    assert payload[0] == 0xAA  # map of 10 pairs
    doubled = b"\xab" + payload[1:] + cbor2.dumps("site") + cbor2.dumps("site2")
    kid = batch.kid_for(GW1.public_key())
    message = cose.sign1(doubled, GW1, protected={3: CONTENT_TYPE, 4: kid})
    verifier = Verifier()
    verifier.add_key(GW1.public_key(), site="site2")
    with pytest.raises(ProtocolError, match="Duplicate map key: 'site'"):
        verifier.verify(message)


def test_malformed_envelope_is_signature_error() -> None:
    verifier = Verifier()
    verifier.add_key(GW1.public_key())
    for junk in (b"", b"\xd2\x80", b"garbage", seal()[:-3]):
        with pytest.raises(SignatureError):
            verifier.verify(junk)


@pytest.mark.parametrize("form", ["object", "pem", "der"])
def test_certificate_binds_site_and_gateway(form: str) -> None:
    cert = make_cert(GW1)
    data: x509.Certificate | bytes = {
        "object": cert,
        "pem": cert.public_bytes(serialization.Encoding.PEM),
        "der": cert.public_bytes(serialization.Encoding.DER),
    }[form]
    verifier = Verifier()
    kid = verifier.add_certificate(data)
    assert kid == batch.kid_for(GW1.public_key())
    trusted = verifier.keys[kid]
    assert (trusted.site, trusted.gw) == ("site1", "gw1")
    assert trusted.not_before == dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    assert "gw1.site1" in trusted.source
    assert verifier.verify(seal()).gw == "gw1"
    with pytest.raises(SignatureError, match=r"bound to gateway 'gw1'.*'gw2'"):
        verifier.verify(seal(gw="gw2"))
    with pytest.raises(SignatureError, match=r"bound to site 'site1'.*'site9'"):
        verifier.verify(seal(site="site9"))


def test_certificate_without_edge_uri_is_unbound() -> None:
    verifier = Verifier()
    verifier.add_certificate(make_cert(GW2, uris=("https://example.invalid/x",)))
    verifier.add_certificate(make_cert(GW1, uris=()))
    assert verifier.verify(seal(GW2, site="any", gw="other")).site == "any"
    assert verifier.verify(seal(GW1, site="x", gw="y")).gw == "y"


def test_certificate_validity_window_uses_the_sealing_time() -> None:
    verifier = Verifier()
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    verifier.add_certificate(make_cert(GW1, not_before=start, days=1))
    assert verifier.verify(seal(t=T0 + 60)).t == T0 + 60
    with pytest.raises(SignatureError, match="outside the validity"):
        verifier.verify(seal(t=T0 - 60))
    with pytest.raises(SignatureError, match="outside the validity"):
        verifier.verify(seal(t=T0 + 2 * 86400))
    with pytest.raises(SignatureError, match="outside the validity"):
        verifier.verify(seal(t=1e300))  # far beyond any datetime: still a clean rejection


@pytest.mark.parametrize(
    ("uris", "match"),
    [
        (("urn:edge:site1",), "not urn:edge"),
        (("urn:edge:site1:gw1:extra",), "not urn:edge"),
        (("urn:edge::gw1",), "not urn:edge"),
        (("urn:edge:site1:gw/1",), "not urn:edge"),
        (("urn:edge:a:b", "urn:edge:c:d"), "expected one"),
        (("urn:edge:site1:ca",), "not a gateway"),
        (("urn:edge:site1:operator:alice",), "not a gateway"),
    ],
)
def test_bad_certificate_identity_is_config_error(uris: tuple[str, ...], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Verifier().add_certificate(make_cert(GW1, uris=uris))


def test_unusable_certificates_are_config_errors() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(ConfigError, match="unsupported"):
        Verifier().add_certificate(make_cert(rsa_key))
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(ConfigError, match="unsupported"):
        Verifier().add_certificate(make_cert(p384))
    with pytest.raises(ConfigError, match="X\\.509"):
        Verifier().add_certificate(b"not a certificate")
    with pytest.raises(ConfigError, match="X\\.509"):
        Verifier().add_certificate(
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
        )


def test_from_cert_files(tmp_path: Path) -> None:
    pem = tmp_path / "both.pem"
    pem.write_bytes(
        make_cert(GW1).public_bytes(serialization.Encoding.PEM)
        + make_cert(GW2, uris=("urn:edge:site1:gw2",)).public_bytes(serialization.Encoding.PEM)
    )
    der = tmp_path / "gw3.der"
    gw3 = ed25519.Ed25519PrivateKey.generate()
    der.write_bytes(
        make_cert(gw3, uris=("urn:edge:site2:gw3",)).public_bytes(serialization.Encoding.DER)
    )
    verifier = Verifier.from_cert_files([pem, str(der)])
    assert len(verifier.keys) == 3
    assert verifier.verify(seal(GW2, gw="gw2")).gw == "gw2"
    assert verifier.verify(seal(gw3, site="site2", gw="gw3")).site == "site2"
    assert verifier.keys[batch.kid_for(gw3.public_key())].source == str(der)
    with pytest.raises(ConfigError, match="cannot read"):
        Verifier.from_cert_files([tmp_path / "missing.pem"])
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigError, match=r"junk\.pem"):
        Verifier.from_cert_files([junk])
    operator = tmp_path / "alice.pem"
    operator.write_bytes(
        make_cert(gw3, uris=("urn:edge:site2:operator:alice",)).public_bytes(
            serialization.Encoding.PEM
        )
    )
    with pytest.raises(ConfigError, match=r"alice\.pem: .*not a gateway"):
        Verifier.from_cert_files([operator])


def test_add_key_rejects_unsupported_keys() -> None:
    with pytest.raises(ConfigError, match="unsupported"):
        Verifier().add_key(ec.generate_private_key(ec.SECP384R1()).public_key())


def test_parallel_verification() -> None:
    """One Verifier, four threads, keys added concurrently: every result is right."""
    verifier = Verifier()
    verifier.add_key(GW1.public_key())
    messages = [seal(t=T0 + i) for i in range(40)]
    errors: list[BaseException] = []
    results: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        try:
            got = [verifier.verify(m).t for m in messages]
            with lock:
                results.extend(got)
        except BaseException as exc:  # reported below
            errors.append(exc)

    def add_keys() -> None:
        for _ in range(20):
            verifier.add_key(ed25519.Ed25519PrivateKey.generate().public_key())

    threads = [threading.Thread(target=work) for _ in range(4)]
    threads.append(threading.Thread(target=add_keys))
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=30)
    assert not any(th.is_alive() for th in threads)
    assert errors == []
    assert sorted(results) == sorted([T0 + i for i in range(40)] * 4)
    assert len(verifier.keys) == 21
