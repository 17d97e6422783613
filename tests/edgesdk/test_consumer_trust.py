"""The consumer's trust and verification core, fed directly (no broker): learning keys
from births only through a site CA, every certificate defect, rotation, and the reason
each bad message is rejected with."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from edgesdk.batch import LostRange
from edgesdk.consumer import Inspector, KeyLearned, Rejected, SiteTrust, Verified
from edgesdk.errors import ConfigError, SignatureError
from tests.edgesdk.test_consumer_support import T0, Chain, birth_extra, fire, issue, reading
from tests.pki import TestPKI

STATE = "edge/v1/hq/gw1/state"
TELEMETRY = "edge/v1/hq/gw1/telemetry"
NOW = T0 + 10


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def pki(tmp_path: Path) -> TestPKI:
    return TestPKI(tmp_path / "pki")


@pytest.fixture
def key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def inspector(pki: TestPKI, **kw: object) -> Inspector:
    return Inspector(SiteTrust([pki.ca_cert]), **kw)  # type: ignore[arg-type]


def test_birth_teaches_the_key_and_batches_verify(
    pki: TestPKI, key: ed25519.Ed25519PrivateKey
) -> None:
    insp = inspector(pki)
    cert = issue(pki, key)
    state, data = Chain(key, stream="state"), Chain(key)
    out = insp.feed(STATE, state.next(extra=birth_extra(cert)))
    assert [type(o) for o in out] == [KeyLearned, Verified]
    learned = out[0]
    assert isinstance(learned, KeyLearned)
    assert (learned.site, learned.gw, learned.previous) == ("hq", "gw1", False)
    assert learned.not_after == cert.not_valid_after_utc
    for i in range(3):
        (v,) = insp.feed(TELEMETRY, data.next(readings=[reading(i)]))
        assert isinstance(v, Verified) and v.clean and v.batch.seq == i + 1
    s = insp.summary()
    assert (s.verified, s.keys_learned, s.readings, s.invalid, s.unknown_key) == (4, 1, 3, 0, 0)
    assert s.integrity_ok
    # the retained birth again: nothing new learned, a harmless repeat
    (again,) = insp.feed(STATE, state.sealed[0], retained=True)
    assert isinstance(again, Verified) and again.retained
    assert [a.kind for a in again.anomalies] == ["repeated"]


def test_batches_wait_for_the_birth_that_teaches_their_key(
    pki: TestPKI, key: ed25519.Ed25519PrivateKey
) -> None:
    clock = Clock()
    insp = inspector(pki, clock=clock, unknown_key_grace=2.0)
    data = Chain(key)
    assert insp.feed(TELEMETRY, data.next(readings=[reading(1)])) == []
    assert insp.feed(TELEMETRY, data.next(readings=[reading(2)])) == []
    assert insp.parked == 2 and insp.next_deadline() == 1002.0
    clock.now += 1.0
    assert insp.expire() == []
    out = insp.feed(STATE, Chain(key, stream="state").next(extra=birth_extra(issue(pki, key))))
    kinds = [(type(o).__name__, getattr(getattr(o, "batch", None), "seq", None)) for o in out]
    assert kinds == [("KeyLearned", None), ("Verified", 1), ("Verified", 1), ("Verified", 2)]
    assert insp.parked == 0 and all(o.clean for o in out if isinstance(o, Verified))


def test_unknown_key_is_rejected_when_the_grace_ends(
    pki: TestPKI, key: ed25519.Ed25519PrivateKey
) -> None:
    clock = Clock()
    insp = inspector(pki, clock=clock, unknown_key_grace=0.5)
    forged = Chain(key).next(events=[fire()])
    assert insp.feed("edge/v1/hq/gw1/alarm", forged) == []
    clock.now += 0.6
    (rej,) = insp.expire()
    assert isinstance(rej, Rejected) and rej.reason == "unknown-key" and rej.payload == forged
    assert "not trusted" in rej.detail
    # without grace it is rejected at once; flush() rejects what is still parked
    assert [o.reason for o in inspector(pki, unknown_key_grace=0).feed(TELEMETRY, forged)] == [  # type: ignore[union-attr]
        "unknown-key"
    ]
    insp.feed(TELEMETRY, forged)
    assert [o.reason for o in insp.flush()] == ["unknown-key"]  # type: ignore[union-attr]
    assert insp.summary().unknown_key == 2 and not insp.summary().integrity_ok


def test_birth_from_another_ca_is_refused_and_batches_stay_unknown(
    tmp_path: Path, pki: TestPKI, key: ed25519.Ed25519PrivateKey
) -> None:
    other = TestPKI(tmp_path / "other")  # same site, same CA name: only the signature differs
    assert other.ca_cert.subject == pki.ca_cert.subject
    insp = inspector(pki, unknown_key_grace=0)
    (rej,) = insp.feed(STATE, Chain(key, stream="state").next(extra=birth_extra(issue(other, key))))
    assert isinstance(rej, Rejected) and rej.reason == "untrusted-cert"
    assert "not signed by the site CA" in rej.detail
    (data,) = insp.feed(TELEMETRY, Chain(key).next(readings=[reading(1)]))
    assert isinstance(data, Rejected) and data.reason == "unknown-key"
    assert insp.summary().keys_learned == 0 and insp.summary().invalid == 1


def _name(**attrs: str) -> x509.Name:
    oids = {"O": NameOID.ORGANIZATION_NAME, "CN": NameOID.COMMON_NAME}
    return x509.Name([x509.NameAttribute(oids[k], v) for k, v in attrs.items()])


DAY = dt.timedelta(days=1)
NO_SIGN = x509.KeyUsage(False, True, False, False, False, False, False, False, False)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"key_usage": None}, "lacks digitalSignature"),
        ({"key_usage": NO_SIGN}, "lacks digitalSignature"),
        ({"ca": True}, "CA certificate cannot"),
        ({"not_before": dt.datetime.now(dt.UTC) - 40 * DAY}, "not at"),
        ({"not_before": dt.datetime.now(dt.UTC) + 2 * DAY}, "not at"),
        ({"uris": ("urn:edge:hq:gw2",)}, "not urn:edge:hq:gw1"),
        ({"uris": ("urn:edge:hq:operator:alice",)}, "not urn:edge:hq:gw1"),
        ({"uris": ("urn:edge:hq:ca",)}, "not urn:edge:hq:gw1"),
        ({"uris": ("urn:edge:hq:gw1", "urn:edge:hq:gw2")}, "2 urn:edge: SAN URIs"),
        ({"uris": ()}, "0 urn:edge: SAN URIs"),
        ({"issuer": _name(CN="someone else")}, "issued by CN=someone else"),
    ],
)
def test_certificate_defects_are_refused(
    pki: TestPKI, key: ed25519.Ed25519PrivateKey, kw: dict[str, object], message: str
) -> None:
    trust = SiteTrust([pki.ca_cert])
    cert = issue(pki, key, **kw)  # type: ignore[arg-type]
    with pytest.raises(SignatureError, match=message):
        trust.check(cert, site="hq", gw="gw1", at=NOW)
    # the same defect in a birth: refused, nothing learned
    insp = Inspector(trust, unknown_key_grace=0)
    (rej,) = insp.feed(STATE, Chain(key, stream="state").next(extra=birth_extra(cert)))
    assert isinstance(rej, Rejected) and rej.reason == "untrusted-cert"
    assert not trust.trusts(SiteTrust.kid_of(cert))


def _ca(
    pki: TestPKI, *, uris: tuple[str, ...] = (), permitted: x509.Name | None = None
) -> x509.Certificate:
    """A variant of the site CA certificate (same key and name, other extensions)."""
    now = dt.datetime.now(dt.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(pki.ca_cert.subject)
        .issuer_name(pki.ca_cert.subject)
        .public_key(pki.ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - DAY)
        .not_valid_after(now + 30 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
    )
    if uris:
        b = b.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(u) for u in uris]), False
        )
    if permitted is not None:
        b = b.add_extension(x509.NameConstraints([x509.DirectoryName(permitted)], None), True)
    return b.sign(pki.ca_key, hashes.SHA256())


def test_a_site_ca_vouches_only_for_its_site_and_names(
    pki: TestPKI, key: ed25519.Ed25519PrivateKey
) -> None:
    cert = issue(pki, key, subject=_name(O="edgesdk site hq", CN="gw1 signing"))
    SiteTrust([_ca(pki, uris=("urn:edge:hq:ca",))]).check(cert, site="hq", gw="gw1", at=NOW)
    plant = SiteTrust([_ca(pki, uris=("urn:edge:plant:ca",))])
    with pytest.raises(SignatureError, match="is for site 'plant'"):
        plant.check(cert, site="hq", gw="gw1", at=NOW)
    constrained = SiteTrust([_ca(pki, permitted=_name(O="edgesdk site hq"))])
    constrained.check(cert, site="hq", gw="gw1", at=NOW)
    outside = issue(pki, key, subject=_name(O="edgesdk site plant", CN="gw1 signing"))
    with pytest.raises(SignatureError, match="outside the CA's name constraints"):
        constrained.check(outside, site="hq", gw="gw1", at=NOW)


def test_trust_anchors_are_checked(
    tmp_path: Path, pki: TestPKI, key: ed25519.Ed25519PrivateKey
) -> None:
    with pytest.raises(ConfigError, match="not a CA certificate"):
        SiteTrust([issue(pki, key)])
    with pytest.raises(ConfigError, match="no trust anchors"):
        SiteTrust([])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no certificates"):
        SiteTrust.from_files(certs_dir=tmp_path / "empty")
    (tmp_path / "junk.pem").write_text("-----BEGIN CERTIFICATE-----\nnope\n")
    with pytest.raises(ConfigError, match=r"junk\.pem"):
        SiteTrust.from_files([tmp_path / "junk.pem"])


def test_pinned_certificate_directory_needs_no_birth(
    tmp_path: Path, pki: TestPKI, key: ed25519.Ed25519PrivateKey
) -> None:
    pins = tmp_path / "pins"
    pins.mkdir()
    (pins / "gw1.pem").write_bytes(issue(pki, key).public_bytes(serialization.Encoding.PEM))
    (pins / "notes.txt").write_text("ignored")
    insp = Inspector(SiteTrust.from_files(certs_dir=pins), unknown_key_grace=0)
    (v,) = insp.feed(TELEMETRY, Chain(key).next(readings=[reading(1)]))
    assert isinstance(v, Verified)
    # without a CA a birth teaches nothing, and is not held against the gateway
    old = issue(pki, ed25519.Ed25519PrivateKey.generate())
    birth = Chain(key, stream="state").next(extra=birth_extra(issue(pki, key), [old]))
    assert [type(o).__name__ for o in insp.feed(STATE, birth)] == ["Verified"]
    assert insp.summary().integrity_ok and insp.summary().keys_learned == 0


def test_birth_must_be_signed_by_its_own_certificate(
    pki: TestPKI, key: ed25519.Ed25519PrivateKey
) -> None:
    insp = inspector(pki, unknown_key_grace=0)
    other = ed25519.Ed25519PrivateKey.generate()
    (rej,) = insp.feed(STATE, Chain(other, stream="state").next(extra=birth_extra(issue(pki, key))))
    assert isinstance(rej, Rejected) and rej.reason == "untrusted-cert" and "for kid" in rej.detail
    birth = bytearray(Chain(key, stream="state").next(extra=birth_extra(issue(pki, key))))
    birth[-1] ^= 0x01  # the signature's last bit
    (rej,) = insp.feed(STATE, bytes(birth))
    assert isinstance(rej, Rejected) and rej.reason == "bad-signature"
    assert "does not verify" in rej.detail
    (rej,) = insp.feed(STATE, Chain(key, stream="state").next(extra=birth_extra(b"not DER")))
    assert isinstance(rej, Rejected) and rej.reason == "untrusted-cert"
    assert insp.summary().keys_learned == 0


def test_rotation_keeps_old_key_batches_verifying(
    pki: TestPKI, key: ed25519.Ed25519PrivateKey
) -> None:
    new_key = ed25519.Ed25519PrivateKey.generate()
    old_cert, new_cert = issue(pki, key), issue(pki, new_key)
    insp = inspector(pki)
    data = Chain(key)
    backlog = [data.next(readings=[reading(i)]) for i in range(3)]  # sealed before rotation
    assert insp.feed(TELEMETRY, backlog[0]) == []  # parked: nobody vouched for the old key yet
    out = insp.feed(
        STATE, Chain(new_key, stream="state").next(extra=birth_extra(new_cert, [old_cert]))
    )
    learned = [o for o in out if isinstance(o, KeyLearned)]
    assert [k.previous for k in learned] == [False, True]
    assert [o.batch.seq for o in out if isinstance(o, Verified)] == [1, 1]  # birth, backlog[0]
    for message in backlog[1:]:
        (v,) = insp.feed(TELEMETRY, message)
        assert isinstance(v, Verified) and v.clean
    (v,) = insp.feed(TELEMETRY, data.next(readings=[reading(9)], key=new_key))
    assert isinstance(v, Verified) and v.clean and v.batch.seq == 4
    s = insp.summary()
    assert (s.keys_learned, s.verified, s.gaps) == (2, 5, ())


def test_refused_previous_certificate_is_reported(
    tmp_path: Path, pki: TestPKI, key: ed25519.Ed25519PrivateKey
) -> None:
    other = TestPKI(tmp_path / "other")
    stranger = ed25519.Ed25519PrivateKey.generate()
    insp = inspector(pki)
    out = insp.feed(
        STATE,
        Chain(key, stream="state").next(
            extra=birth_extra(issue(pki, key), [issue(other, stranger)])
        ),
    )
    assert [type(o).__name__ for o in out] == ["KeyLearned", "Verified", "Rejected"]
    rej = out[2]
    assert isinstance(rej, Rejected) and rej.reason == "untrusted-cert"
    assert "previous_certs[0]" in rej.detail
    assert not insp.summary().integrity_ok


@pytest.fixture
def taught(pki: TestPKI, key: ed25519.Ed25519PrivateKey) -> Inspector:
    insp = inspector(pki, unknown_key_grace=0)
    insp.feed(STATE, Chain(key, stream="state").next(extra=birth_extra(issue(pki, key))))
    return insp


def test_each_bad_message_gets_its_reason(
    taught: Inspector, key: ed25519.Ed25519PrivateKey
) -> None:
    data = Chain(key)
    good = data.next(readings=[reading(1)])
    corrupted = bytearray(data.next(readings=[reading(2)]))
    corrupted[-1] ^= 0x01
    claims_gw2 = Chain(key, gw="gw2").next(readings=[reading(3)])
    late = Chain(key).next(readings=[reading(4)], t=T0 + 400 * 86400)
    cases = [
        ("edge/v1/hq/gw2/telemetry", good, "wrong-topic", "payload is for hq/gw1/telemetry"),
        ("edge/v1/hq/gw1/alarm", good, "wrong-topic", "topic for hq/gw1/alarm"),
        ("edge/v1/hq/gw1", good, "wrong-topic", "topic is not edge/v1/"),
        ("other/hq/gw1/telemetry", good, "wrong-topic", "topic is not edge/v1/"),
        (TELEMETRY, bytes(corrupted), "bad-signature", "bad signature"),
        ("edge/v1/hq/gw2/telemetry", claims_gw2, "wrong-gateway", "bound to gateway 'gw1'"),
        (TELEMETRY, late, "outside-validity", "outside the validity"),
        (TELEMETRY, b"hello", "malformed", ""),
        (
            TELEMETRY,
            Chain(ed25519.Ed25519PrivateKey.generate()).next(),
            "unknown-key",
            "not trusted",
        ),
    ]
    for topic, message, reason, detail in cases:
        (rej,) = taught.feed(topic, message)
        assert isinstance(rej, Rejected), (topic, reason)
        assert (rej.reason, rej.topic) == (reason, topic)
        assert detail in rej.detail, (reason, rej.detail)
    s = taught.summary()
    assert s.unknown_key == 1 and s.invalid == len(cases) - 1 and s.verified == 1
    assert s.rejected["wrong-topic"] == 4


def test_replays_duplicates_conflicts_and_gaps(
    taught: Inspector, key: ed25519.Ed25519PrivateKey
) -> None:
    data, state = Chain(key), Chain(key, stream="state", seq=1, prev=bytes(range(32)))
    msgs = [data.next(readings=[reading(i)]) for i in range(2)]  # seqs 1, 2
    data.skip(2)  # 3..4 will be announced lost
    msgs.append(data.next())  # 5
    data.skip(2)  # 6..7 vanish without notice
    msgs.append(data.next())  # 8
    for m in msgs:
        taught.feed(TELEMETRY, m)
    (notice,) = taught.feed(STATE, state.next(lost=[LostRange("telemetry", 3, 4, "store-full")]))
    assert isinstance(notice, Verified) and notice.clean  # no gap tracking on the state stream
    (replay,) = taught.feed(TELEMETRY, msgs[1])
    assert isinstance(replay, Verified) and [a.kind for a in replay.anomalies] == ["duplicate"]
    twin = Chain(key).next(readings=[reading(99)])  # a different batch claiming seq 1
    (conflict,) = taught.feed(TELEMETRY, twin)
    assert isinstance(conflict, Verified) and [a.kind for a in conflict.anomalies] == ["conflict"]
    s = taught.summary()
    assert (s.duplicates, s.conflicts, s.gap_reports) == (1, 1, 2)
    assert (s.gaps_accounted, s.gaps_unexplained) == (2, 2)
    assert [(g.first, g.last, g.accounted) for g in s.gaps] == [(3, 4, True), (6, 7, False)]
    assert not s.integrity_ok
    d = s.as_dict()
    assert d["gaps_unexplained"] == 2 and d["open_gaps"][1]["first"] == 6


def test_state_stream_only_has_to_grow(taught: Inspector, key: ed25519.Ed25519PrivateKey) -> None:
    state = Chain(key, stream="state", seq=1, prev=bytes(range(32)))
    death = state.next(extra={"death": {"reason": "connection-lost", "boot": 1}})  # seq 2
    state.skip(1)
    birth = state.next(extra={"birth": {"boot": 2}})  # seq 4: a state gap is normal
    outs = [taught.feed(STATE, m)[0] for m in (death, birth, death)]
    assert all(isinstance(o, Verified) for o in outs)
    assert [[a.kind for a in o.anomalies] for o in outs] == [[], [], ["duplicate"]]  # type: ignore[union-attr]
    assert taught.summary().gaps == ()


def test_summary_is_a_snapshot(taught: Inspector) -> None:
    s = taught.summary()
    assert dataclasses.replace(s).verified == 1 and s.parked == 0


def test_renewed_certificate_for_the_same_key_extends_its_validity(
    pki: TestPKI, key: ed25519.Ed25519PrivateKey
) -> None:
    now = dt.datetime.now(dt.UTC)
    old = issue(pki, key, not_before=now - dt.timedelta(minutes=4), days=1)
    renewed = issue(pki, key, not_before=now + dt.timedelta(hours=12), days=17)
    hour = 3600.0
    insp = inspector(pki, unknown_key_grace=0)
    state = Chain(key, stream="state")
    out = insp.feed(STATE, state.next(extra=birth_extra(old), t=now.timestamp()))
    assert [type(o).__name__ for o in out] == ["KeyLearned", "Verified"]
    out = insp.feed(STATE, state.next(extra=birth_extra(renewed), t=now.timestamp() + 13 * hour))
    assert [type(o).__name__ for o in out] == ["KeyLearned", "Verified"]
    data = Chain(key)
    early = data.next(readings=[reading(1)], t=now.timestamp() + hour)  # only the old cert
    late = data.next(readings=[reading(2)], t=now.timestamp() + 48 * hour)  # only the renewal
    assert all(isinstance(insp.feed(TELEMETRY, m)[0], Verified) for m in (early, late))
    # the same birth again teaches nothing new
    assert [type(o).__name__ for o in insp.feed(STATE, state.sealed[1])] == ["Verified"]
