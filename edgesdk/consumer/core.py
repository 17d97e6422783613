"""The consumer's sans-I/O core: (topic, bytes) in, typed outcomes out.

:class:`Inspector` holds everything except the network: trust (site CAs, pinned and learned
keys), the sequence tracker and the counters. The MQTT client (:mod:`.client`) only moves
bytes into :meth:`Inspector.feed`; tests and other transports (files, HTTP) can feed it
directly.

Order of checks for one message: the topic must be ``{prefix}/{site}/{gw}/{stream}``; a
birth on a ``state`` topic may teach its signing key (see :mod:`.trust`); then the
signature and key binding (:class:`~edgesdk.verify.Verifier`); then the payload's
site/gw/stream must equal the topic's; then the tracker. A message signed by a key not yet
known is **parked** for ``unknown_key_grace`` seconds, because MQTT does not order messages
across topics: after a consumer restart, batches queued in its session arrive before the
retained birth that teaches their key. When the grace ends it is rejected as
``unknown-key``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509

from edgesdk import batch as _batch
from edgesdk import cose
from edgesdk.batch import Batch
from edgesdk.consumer.outcomes import (
    KeyLearned,
    Outcome,
    Rejected,
    RejectReason,
    Repeated,
    Summary,
    Verified,
)
from edgesdk.consumer.tracking import STATE_STREAM, LocalTracker, Tracker
from edgesdk.consumer.trust import SiteTrust
from edgesdk.errors import ConfigError, ProtocolError, SignatureError, UnknownKeyError
from edgesdk.verify import (
    BootRegression,
    BrokenChain,
    Conflict,
    Duplicate,
    Gap,
    Reordered,
    Stale,
    StreamKey,
    Verifier,
)

__all__ = ["Inspector"]

_COUNTED: dict[type, str] = {
    Duplicate: "duplicates",
    Repeated: "repeats",
    Conflict: "conflicts",
    Reordered: "reordered",
    BrokenChain: "broken_chain",
    BootRegression: "boot_regressions",
    Stale: "stale",
    Gap: "gap_reports",
}


# A gateway never sends more: telemetry batches are ~20 KB, snapshots at most 1 MiB (the
# gateway's snapshot_max_bytes cap), births a few KB with their certificates. Decoding an
# unverified message costs up to ~150x its size in memory, so bigger ones are refused
# before any decoding.
MAX_PAYLOAD = 2 << 20
MAX_STATE_PAYLOAD = 64 << 10


@dataclass(slots=True)
class _Parked:
    deadline: float
    topic: str
    where: StreamKey
    payload: bytes
    kid: bytes
    retained: bool


class Inspector:
    """Verifies and tracks messages; keeps the counters behind :meth:`summary`.

    ``tracker`` defaults to :class:`~.tracking.LocalTracker` (join live streams: no gap
    before the first seq seen). ``prefix`` is the topic prefix (``edge/v1``).
    Not thread-safe: one task feeds it.
    """

    def __init__(
        self,
        trust: SiteTrust,
        *,
        tracker: Tracker | None = None,
        prefix: str = "edge/v1",
        unknown_key_grace: float = 2.0,
        max_parked: int = 10_000,
        max_payload: int = MAX_PAYLOAD,
        max_state_payload: int = MAX_STATE_PAYLOAD,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if unknown_key_grace < 0 or max_parked < 0:
            raise ConfigError("unknown_key_grace and max_parked must be >= 0")
        if max_payload < 1024 or max_state_payload < 1024:
            raise ConfigError("max_payload and max_state_payload must be >= 1024 bytes")
        self.max_payload = max_payload
        self.max_state_payload = max_state_payload
        self.trust = trust
        self.tracker: Tracker = tracker if tracker is not None else LocalTracker()
        self.prefix = prefix.strip("/")
        self._prefix_levels = self.prefix.split("/") if self.prefix else []
        self.grace = unknown_key_grace
        self.max_parked = max_parked
        self._clock = clock
        self._parked: list[_Parked] = []
        self._counts: dict[str, int] = dict.fromkeys(
            ["messages", "verified", "keys_learned", "events", "readings", *_COUNTED.values()], 0
        )
        self._rejected: dict[str, int] = {}

    # -- input -------------------------------------------------------------------------
    def parse_topic(self, topic: str) -> StreamKey | None:
        """(site, gw, stream) of a ``{prefix}/{site}/{gw}/{stream}`` topic, else None."""
        levels = topic.split("/")
        n = len(self._prefix_levels)
        if len(levels) != n + 3 or levels[:n] != self._prefix_levels:
            return None
        site, gw, stream = levels[n:]
        if not all(_batch.valid_name(x) for x in (site, gw, stream)):
            return None
        return site, gw, stream

    def feed(self, topic: str, payload: bytes, *, retained: bool = False) -> list[Outcome]:
        """Everything one message reveals (empty while it waits for its key)."""
        self._counts["messages"] += 1
        where = self.parse_topic(topic)
        if where is None:
            detail = f"topic is not {self.prefix}/<site>/<gw>/<stream>"
            return self._count([Rejected(topic, "wrong-topic", detail, payload)])
        limit = self.max_state_payload if where[2] == STATE_STREAM else self.max_payload
        if len(payload) > limit:
            # decoding costs memory before the signature can be checked: refuse first
            detail = f"{len(payload)} bytes, over the {limit}-byte limit for this stream"
            return self._count([Rejected(topic, "malformed", detail, payload[:64])])
        out: list[Outcome] = []
        if where[2] == STATE_STREAM:
            unverified = _birth(payload)
            if unverified is not None and _where(unverified) == where:
                learned = self._learn_current(topic, unverified, payload)
                out.extend(learned)
                if any(isinstance(o, Rejected) for o in learned):
                    return self._count(out)
        out.extend(self._check(topic, where, payload, retained, park=True))
        if self._parked and any(isinstance(o, KeyLearned) for o in out):
            out.extend(self._retry_parked())
        return self._count(out)

    def expire(self) -> list[Outcome]:
        """Reject parked messages whose grace ended (call when :meth:`next_deadline` passes)."""
        now = self._clock()
        due = [p for p in self._parked if p.deadline <= now]
        if not due:
            return []
        self._parked = [p for p in self._parked if p.deadline > now]
        return self._count([self._unknown(p) for p in due])

    def flush(self) -> list[Outcome]:
        """Reject every parked message now (the consumer is stopping)."""
        parked, self._parked = self._parked, []
        return self._count([self._unknown(p) for p in parked])

    def next_deadline(self) -> float | None:
        """Clock time at which :meth:`expire` has something to do, or None."""
        return min((p.deadline for p in self._parked), default=None)

    @property
    def messages(self) -> int:
        """Messages fed so far."""
        return self._counts["messages"]

    @property
    def parked(self) -> int:
        """Messages waiting for their key."""
        return len(self._parked)

    def summary(self) -> Summary:
        c = self._counts
        return Summary(
            messages=c["messages"],
            verified=c["verified"],
            rejected=dict(self._rejected),
            keys_learned=c["keys_learned"],
            events=c["events"],
            readings=c["readings"],
            duplicates=c["duplicates"],
            repeats=c["repeats"],
            conflicts=c["conflicts"],
            reordered=c["reordered"],
            broken_chain=c["broken_chain"],
            boot_regressions=c["boot_regressions"],
            stale=c["stale"],
            gap_reports=c["gap_reports"],
            gaps=tuple(self.tracker.open_gaps()),
            parked=len(self._parked),
        )

    # -- verification --------------------------------------------------------------------
    def _check(
        self, topic: str, where: StreamKey, payload: bytes, retained: bool, *, park: bool
    ) -> list[Outcome]:
        try:
            b = self.trust.verifier.verify(payload)
        except UnknownKeyError as exc:
            kid = _kid(payload)
            if park and kid is not None and self.grace > 0 and len(self._parked) < self.max_parked:
                deadline = self._clock() + self.grace
                self._parked.append(_Parked(deadline, topic, where, payload, kid, retained))
                return []
            return [Rejected(topic, "unknown-key", str(exc), payload)]
        except SignatureError as exc:
            reason, detail = self._classify(payload, exc)
            return [Rejected(topic, reason, detail, payload)]
        except ProtocolError as exc:
            return [Rejected(topic, "malformed", str(exc), payload)]
        if _where(b) != where:
            detail = f"the payload is for {'/'.join(_where(b))}, the topic for {'/'.join(where)}"
            return [Rejected(topic, "wrong-topic", detail, payload)]
        out: list[Outcome] = [Verified(topic, b, tuple(self.tracker.observe(b)), retained)]
        if b.stream == STATE_STREAM and isinstance(b.extra.get("birth"), dict):
            out.extend(self._learn_previous(topic, b))
        return out

    def _classify(self, payload: bytes, exc: SignatureError) -> tuple[RejectReason, str]:
        """Why the verifier said no: structure, signature, or a good signature by a key
        that may not sign this (another gateway, outside its validity)."""
        try:
            unverified = _batch.decode(payload)
        except ProtocolError as bad:
            return "malformed", str(bad)
        key = self.trust.verifier.keys.get(unverified.kid)
        if key is None:  # pragma: no cover - the verifier found it a moment ago
            return "unknown-key", str(exc)
        try:
            cose.verify_parsed(cose.parse1(payload), key.public_key)
        except SignatureError as bad:
            return "bad-signature", str(bad)
        if (key.site is not None and unverified.site != key.site) or (
            key.gw is not None and unverified.gw != key.gw
        ):
            return "wrong-gateway", str(exc)
        return "outside-validity", str(exc)

    def _unknown(self, p: _Parked) -> Rejected:
        detail = f"kid {p.kid.hex()} is not trusted (no birth taught it within {self.grace:g} s)"
        return Rejected(p.topic, "unknown-key", detail, p.payload)

    def _retry_parked(self) -> list[Outcome]:
        keys = self.trust.verifier.keys
        ready = [p for p in self._parked if p.kid in keys]
        self._parked = [p for p in self._parked if p.kid not in keys]
        out: list[Outcome] = []
        for p in ready:
            out.extend(self._check(p.topic, p.where, p.payload, p.retained, park=False))
        return out

    # -- learning keys from births -------------------------------------------------------
    def _learn_current(self, topic: str, birth: Batch, payload: bytes) -> list[Outcome]:
        der = birth.extra["birth"].get("cert")
        if der is None:
            return []

        def refuse(detail: str, reason: RejectReason = "untrusted-cert") -> list[Outcome]:
            return [Rejected(topic, reason, f"birth certificate: {detail}", payload)]

        try:
            cert = x509.load_der_x509_certificate(der)
            kid = self.trust.kid_of(cert)
        except (ValueError, SignatureError) as exc:
            return refuse(f"not a usable DER certificate: {exc}")
        if kid != birth.kid:
            return refuse(f"for kid {kid.hex()}, but the birth is signed by {birth.kid.hex()}")
        if self.trust.covers(cert) or (not self.trust.cas and self.trust.trusts(kid)):
            return []  # the usual case: a retained birth seen again (or a pinned key)
        try:
            self.trust.check(cert, site=birth.site, gw=birth.gw, at=birth.t)
        except SignatureError as exc:
            return refuse(str(exc))
        probe = Verifier()
        try:
            probe.add_certificate(cert)
            probe.verify(payload)
        except (ConfigError, SignatureError, ProtocolError) as exc:
            return refuse(f"the birth does not verify with it: {exc}", "bad-signature")
        return [self._learned(topic, cert, birth, previous=False, at=birth.t)]

    def _learn_previous(self, topic: str, birth: Batch) -> list[Outcome]:
        out: list[Outcome] = []
        if not self.trust.cas:
            return out  # pinned keys only: births teach nothing (pin old certificates too)
        for i, der in enumerate(birth.extra["birth"].get("previous_certs", [])):
            try:
                cert = x509.load_der_x509_certificate(der)
                if self.trust.covers(cert):
                    continue
                out.append(self._learned(topic, cert, birth, previous=True, at=None))
            except (ValueError, SignatureError) as exc:
                detail = f"birth previous_certs[{i}]: {exc}"
                out.append(Rejected(topic, "untrusted-cert", detail, birth.raw))
        return out

    def _learned(
        self, topic: str, cert: x509.Certificate, birth: Batch, *, previous: bool, at: float | None
    ) -> KeyLearned:
        source = f"birth of {birth.site}/{birth.gw}: {cert.subject.rfc4514_string()}"
        kid = self.trust.learn(cert, site=birth.site, gw=birth.gw, at=at, source=source)
        return KeyLearned(
            topic,
            birth.site,
            birth.gw,
            kid,
            cert.subject.rfc4514_string(),
            cert.not_valid_before_utc,
            cert.not_valid_after_utc,
            previous=previous,
        )

    # -- counting ------------------------------------------------------------------------
    def _count(self, outcomes: list[Outcome]) -> list[Outcome]:
        c = self._counts
        for o in outcomes:
            if isinstance(o, Verified):
                c["verified"] += 1
                c["events"] += len(o.batch.events)
                c["readings"] += len(o.batch.readings)
                for a in o.anomalies:
                    name = _COUNTED.get(type(a))
                    if name is not None:
                        c[name] += 1
            elif isinstance(o, Rejected):
                self._rejected[o.reason] = self._rejected.get(o.reason, 0) + 1
            else:
                c["keys_learned"] += 1
        return outcomes


def _where(b: Batch) -> StreamKey:
    return b.site, b.gw, b.stream


def _birth(payload: bytes) -> Batch | None:
    """The unverified batch if it is a birth (only used to find its certificate)."""
    try:
        b = _batch.decode(payload)
    except ProtocolError:
        return None
    return b if isinstance(b.extra.get("birth"), dict) else None


def _kid(payload: bytes) -> bytes | None:
    try:
        kid = cose.parse1(payload).protected.get(cose.HDR_KID)
    except SignatureError:
        return None
    return kid if isinstance(kid, bytes) else None
