"""What a verifying consumer reports: one typed outcome per thing it learned or refused.

Nothing a gateway sends is dropped silently: every MQTT message becomes at least one
outcome — :class:`Verified` (with the sequence anomalies it revealed), :class:`Rejected`
(with a machine-readable ``reason``) — and every key learned from a birth message a
:class:`KeyLearned`. :class:`Summary` holds the counters a caller alerts on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeAlias, get_args

from edgesdk.batch import Batch
from edgesdk.verify import Anomaly, Gap, StreamKey

__all__ = [
    "REJECT_REASONS",
    "ConsumerAnomaly",
    "KeyLearned",
    "Outcome",
    "RejectReason",
    "Rejected",
    "Repeated",
    "Summary",
    "Verified",
]

RejectReason: TypeAlias = Literal[
    "malformed",
    "unknown-key",
    "bad-signature",
    "wrong-gateway",
    "outside-validity",
    "wrong-topic",
    "untrusted-cert",
]
"""Why a message (or a certificate in a birth) was refused.

``malformed``: not a well-formed signed batch. ``unknown-key``: signed by a key nobody
vouched for (a forgery, or a gateway whose birth was not seen). ``bad-signature``: the
signature does not verify (corruption or tampering). ``wrong-gateway``: a key bound to one
gateway signed for another. ``outside-validity``: sealed outside the certificate's
validity. ``wrong-topic``: the topic's site/gateway/stream disagree with the payload (a
valid batch re-published elsewhere). ``untrusted-cert``: a birth's certificate does not
chain to a trusted site CA (or does not match the birth).
"""

REJECT_REASONS: tuple[RejectReason, ...] = get_args(RejectReason)


@dataclass(frozen=True, slots=True)
class Repeated:
    """The stream's current ``state`` message again (a retained re-send, or overlapping
    subscriptions): harmless, counted apart from :class:`~edgesdk.verify.Duplicate`."""

    kind: ClassVar[str] = "repeated"
    key: StreamKey
    seq: int


ConsumerAnomaly: TypeAlias = Anomaly | Repeated


@dataclass(frozen=True, slots=True)
class Verified:
    """A batch whose signature, key binding and topic all checked out.

    ``anomalies`` are what the sequence tracker saw in it (duplicate, gap, ...): the batch
    is authentic, but the caller may still need to act (a gap is missing data).
    """

    topic: str
    batch: Batch
    anomalies: tuple[ConsumerAnomaly, ...] = ()
    retained: bool = False

    @property
    def clean(self) -> bool:
        """No anomaly at all."""
        return not self.anomalies


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message (or a certificate inside a birth) that must not be trusted.

    ``payload`` is the message exactly as received, for forensics.
    """

    topic: str
    reason: RejectReason
    detail: str
    payload: bytes = field(default=b"", repr=False)


@dataclass(frozen=True, slots=True)
class KeyLearned:
    """A signing key now trusted because a birth carried its CA-issued certificate.

    ``previous`` is true for a rotated-out key (``birth.previous_certs``): batches it sealed
    before the rotation still verify while the backlog drains.
    """

    topic: str
    site: str
    gw: str
    kid: bytes
    subject: str
    not_before: dt.datetime
    not_after: dt.datetime
    previous: bool = False


Outcome: TypeAlias = Verified | Rejected | KeyLearned


@dataclass(frozen=True, slots=True)
class Summary:
    """Counters over everything a consumer saw; ``gaps`` are the seqs still missing now.

    ``duplicates`` are repeats of a batch already seen (a replay, or a redelivery after a
    reconnect); ``repeats`` are harmless re-sends of the current state message.
    """

    messages: int = 0
    verified: int = 0
    rejected: Mapping[str, int] = field(default_factory=dict)
    keys_learned: int = 0
    events: int = 0
    readings: int = 0
    duplicates: int = 0
    repeats: int = 0
    conflicts: int = 0
    reordered: int = 0
    broken_chain: int = 0
    boot_regressions: int = 0
    stale: int = 0
    gap_reports: int = 0
    gaps: tuple[Gap, ...] = ()
    parked: int = 0

    @property
    def unknown_key(self) -> int:
        return self.rejected.get("unknown-key", 0)

    @property
    def invalid(self) -> int:
        """Rejections other than ``unknown-key``."""
        return sum(n for reason, n in self.rejected.items() if reason != "unknown-key")

    @property
    def gaps_accounted(self) -> int:
        """Missing seqs a ``lost`` notice explains."""
        return sum(g.count for g in self.gaps if g.accounted)

    @property
    def gaps_unexplained(self) -> int:
        """Missing seqs nothing explains: data lost without notice."""
        return sum(g.count for g in self.gaps if not g.accounted)

    @property
    def integrity_ok(self) -> bool:
        """Nothing refused, no unexplained gap, no conflicting or broken chain."""
        return not (
            self.invalid
            or self.unknown_key
            or self.gaps_unexplained
            or self.conflicts
            or self.broken_chain
            or self.boot_regressions
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly copy (gaps as ``{site, gw, stream, first, last, accounted}``)."""
        return {
            "messages": self.messages,
            "verified": self.verified,
            "invalid": self.invalid,
            "unknown_key": self.unknown_key,
            "rejected": dict(sorted(self.rejected.items())),
            "keys_learned": self.keys_learned,
            "events": self.events,
            "readings": self.readings,
            "duplicates": self.duplicates,
            "repeats": self.repeats,
            "conflicts": self.conflicts,
            "reordered": self.reordered,
            "broken_chain": self.broken_chain,
            "boot_regressions": self.boot_regressions,
            "stale": self.stale,
            "gap_reports": self.gap_reports,
            "gaps_accounted": self.gaps_accounted,
            "gaps_unexplained": self.gaps_unexplained,
            "open_gaps": [
                {
                    "site": g.key[0],
                    "gw": g.key[1],
                    "stream": g.key[2],
                    "first": g.first,
                    "last": g.last,
                    "accounted": g.accounted,
                }
                for g in self.gaps
            ],
        }
