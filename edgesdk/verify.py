"""Verifying consumer side: trusted keys, signature checks, and sequence tracking.

:class:`Verifier` turns signed bytes into a trusted :class:`~edgesdk.batch.Batch` or raises:
:class:`~edgesdk.errors.UnknownKeyError` (kid not trusted), :class:`~edgesdk.errors.SignatureError`
(bad signature, or a key signing for a site/gateway it is not bound to, or outside its
validity), :class:`~edgesdk.errors.ProtocolError` (malformed payload behind a valid
signature). It keeps no per-message state, so one instance serves many threads.

:class:`SequenceTracker` (one stream) and :class:`StreamTracker` (many) turn a sequence of
verified batches into typed anomalies: duplicates, conflicts, gaps, reordering, broken
``prev`` chains, boot counters going backwards. Gaps are reported **as soon as they are
seen** (a consumer may need to alert at once); a batch that later fills a gap is reported as
:class:`Reordered` and shrinks the open gap; :meth:`StreamTracker.open_gaps` is the live view
and :meth:`StreamTracker.finish` the final one, with ``accounted`` recomputed against every
``lost`` notice seen so far (notices can arrive after the gap).
"""

from __future__ import annotations

import bisect
import dataclasses
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import ClassVar, TypeAlias

from cryptography import x509

from edgesdk import batch as _batch
from edgesdk import cose
from edgesdk.batch import Batch
from edgesdk.errors import ConfigError, SignatureError, UnknownKeyError

__all__ = [
    "Anomaly",
    "BootRegression",
    "BrokenChain",
    "Conflict",
    "Duplicate",
    "Gap",
    "LostLedger",
    "Reordered",
    "SequenceTracker",
    "Stale",
    "StreamKey",
    "StreamTracker",
    "TrackerSummary",
    "TrustedKey",
    "Verifier",
]

_URN_PREFIX = "urn:edge:"


@dataclass(frozen=True)
class TrustedKey:
    """A public key we trust, optionally bound to one site/gateway and a validity window.

    ``not_before``/``not_after`` are timezone-aware; they are compared with the batch's
    sealing time ``t``.
    """

    public_key: cose.PublicKey
    site: str | None = None
    gw: str | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None
    source: str = "key"


def _identity_from_san(cert: x509.Certificate) -> tuple[str | None, str | None]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None, None
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    edge = [u for u in uris if u.startswith(_URN_PREFIX)]
    if not edge:
        return None, None
    if len(edge) > 1:
        raise ConfigError(f"certificate has {len(edge)} urn:edge: SAN URIs; expected one")
    parts = edge[0][len(_URN_PREFIX) :].split(":")
    # provisioning also issues urn:edge:<site>:ca (the site CA) and
    # urn:edge:<site>:operator:<name> (people): neither may sign batches
    if parts[1:2] in (["ca"], ["operator"]):
        raise ConfigError(f"{edge[0]!r} names a site CA or an operator, not a gateway")
    if len(parts) != 2 or not all(_batch.valid_name(p) for p in parts):
        raise ConfigError(f"SAN URI {edge[0]!r} is not urn:edge:<site>:<gw>")
    return parts[0], parts[1]


def _iso(when: datetime | None) -> str:
    return "-" if when is None else when.isoformat()


def _load_cert(cert: x509.Certificate | bytes) -> x509.Certificate:
    if isinstance(cert, x509.Certificate):
        return cert
    try:
        if cert.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(cert)
        return x509.load_der_x509_certificate(cert)
    except ValueError as exc:
        raise ConfigError(f"not a readable X.509 certificate (PEM or DER): {exc}") from exc


class Verifier:
    """Verifies signed batches against pinned keys (no per-message state: thread-safe).

    Certificates are pinned as trust anchors themselves: no chain building, no revocation
    lookups. Revoke a key by building a new Verifier without it.
    """

    def __init__(self, keys: Mapping[bytes, cose.PublicKey | TrustedKey] | None = None) -> None:
        self._keys: dict[bytes, TrustedKey] = {}
        self._write_lock = threading.Lock()
        for kid, key in (keys or {}).items():
            self.add_key(key, kid=kid)

    @property
    def keys(self) -> Mapping[bytes, TrustedKey]:
        """The trusted keys by kid (a snapshot)."""
        return dict(self._keys)

    def add_key(
        self,
        key: cose.PublicKey | TrustedKey,
        *,
        kid: bytes | None = None,
        site: str | None = None,
        gw: str | None = None,
        source: str = "key",
    ) -> bytes:
        """Trust ``key`` (under ``kid``, default :func:`~edgesdk.batch.kid_for`); returns kid."""
        trusted = key if isinstance(key, TrustedKey) else TrustedKey(key, site, gw, source=source)
        if cose.key_family(trusted.public_key) not in ("ed25519", "ed448", "p256"):
            raise ConfigError(f"unsupported key type {type(trusted.public_key).__name__}")
        kid = _batch.kid_for(trusted.public_key) if kid is None else kid
        with self._write_lock:  # copy-on-write: verify() reads without a lock
            keys = dict(self._keys)
            keys[kid] = trusted
            self._keys = keys
        return kid

    def add_certificate(
        self, cert: x509.Certificate | bytes, *, source: str | None = None
    ) -> bytes:
        """Trust a certificate's key, bound to ``urn:edge:{site}:{gw}`` from its SAN if any."""
        loaded = _load_cert(cert)
        site, gw = _identity_from_san(loaded)
        try:
            public_key = loaded.public_key()
        except ValueError as exc:
            raise ConfigError(f"certificate key cannot be loaded: {exc}") from exc
        if not isinstance(public_key, cose.PublicKey):
            raise ConfigError(f"certificate key type {type(public_key).__name__} unsupported")
        trusted = TrustedKey(
            public_key,
            site,
            gw,
            loaded.not_valid_before_utc,
            loaded.not_valid_after_utc,
            source or f"certificate {loaded.subject.rfc4514_string()}",
        )
        return self.add_key(trusted)

    @classmethod
    def from_cert_files(cls, paths: Iterable[str | Path]) -> Verifier:
        """A verifier trusting every certificate in the given PEM or DER files."""
        verifier = cls()
        for path in paths:
            try:
                data = Path(path).read_bytes()
            except OSError as exc:
                raise ConfigError(f"cannot read certificate: {exc}", file=str(path)) from exc
            try:
                certs = (
                    x509.load_pem_x509_certificates(data)
                    if data.lstrip().startswith(b"-----BEGIN")
                    else [x509.load_der_x509_certificate(data)]
                )
            except ValueError as exc:
                raise ConfigError(f"not a certificate: {exc}", file=str(path)) from exc
            for cert in certs:
                try:
                    verifier.add_certificate(cert, source=str(path))
                except ConfigError as exc:
                    raise ConfigError(exc.reason, file=str(path), fix=exc.fix) from exc
        return verifier

    def verify(self, message: bytes) -> Batch:
        """Verify and decode one signed batch (see the module docstring for the errors)."""
        sign = cose.parse1(message)
        kid = sign.protected.get(cose.HDR_KID)
        if not isinstance(kid, bytes):  # parse1 checked its type; None: absent
            raise UnknownKeyError("message names no key (no kid in the protected header)")
        trusted = self._keys.get(kid)
        if trusted is None:
            raise UnknownKeyError(f"kid {kid.hex()} is not trusted")
        cose.verify_parsed(sign, trusted.public_key)
        alg, _, payload = _batch.check_envelope(sign)
        result = _batch.batch_from_parts(message, alg, kid, payload)
        if trusted.site is not None and result.site != trusted.site:
            raise SignatureError(
                f"key {trusted.source} is bound to site {trusted.site!r}, "
                f"but signed a batch for site {result.site!r}"
            )
        if trusted.gw is not None and result.gw != trusted.gw:
            raise SignatureError(
                f"key {trusted.source} is bound to gateway {trusted.gw!r}, "
                f"but signed a batch for gateway {result.gw!r}"
            )
        # compared as epoch seconds: a hostile t (1e300) cannot overflow a datetime
        if (trusted.not_before is not None and result.t < trusted.not_before.timestamp()) or (
            trusted.not_after is not None and result.t > trusted.not_after.timestamp()
        ):
            raise SignatureError(
                f"batch sealed at t={result.t} is outside the validity of {trusted.source} "
                f"({_iso(trusted.not_before)} .. {_iso(trusted.not_after)})"
            )
        return result


# --- sequence tracking ------------------------------------------------------------------

StreamKey: TypeAlias = tuple[str, str, str]
"""(site, gw, stream)."""


@dataclass(frozen=True, slots=True)
class Duplicate:
    """The same seq again with the same digest: a harmless redelivery."""

    kind: ClassVar[str] = "duplicate"
    key: StreamKey
    seq: int
    digest: bytes


@dataclass(frozen=True, slots=True)
class Conflict:
    """The same seq with a *different* digest: two different batches claim one place."""

    kind: ClassVar[str] = "conflict"
    key: StreamKey
    seq: int
    first_digest: bytes
    digest: bytes


@dataclass(frozen=True, slots=True)
class Gap:
    """Seqs ``first..last`` missing; ``accounted`` when a ``lost`` notice covers them."""

    kind: ClassVar[str] = "gap"
    key: StreamKey
    first: int
    last: int
    accounted: bool

    @property
    def count(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True, slots=True)
class Reordered:
    """A seq older than the highest seen, not seen before; usually fills a gap."""

    kind: ClassVar[str] = "reordered"
    key: StreamKey
    seq: int
    filled_gap: bool


@dataclass(frozen=True, slots=True)
class BrokenChain:
    """Batch ``seq``'s ``prev`` is not the digest of batch ``seq - 1``."""

    kind: ClassVar[str] = "broken-chain"
    key: StreamKey
    seq: int
    expected_prev: bytes
    prev: bytes


@dataclass(frozen=True, slots=True)
class BootRegression:
    """A higher seq carries a lower boot counter than a lower seq."""

    kind: ClassVar[str] = "boot-regression"
    key: StreamKey
    seq: int
    boot: int
    earlier_seq: int
    earlier_boot: int


@dataclass(frozen=True, slots=True)
class Stale:
    """A seq so old its digest was forgotten (beyond the window): duplicate or conflict."""

    kind: ClassVar[str] = "stale"
    key: StreamKey
    seq: int


Anomaly: TypeAlias = Duplicate | Conflict | Gap | Reordered | BrokenChain | BootRegression | Stale


@dataclass(slots=True)
class TrackerSummary:
    """Counts for one stream; ``missing*`` are the seqs still missing right now."""

    batches: int = 0
    highest: int = 0
    duplicates: int = 0
    conflicts: int = 0
    gaps: int = 0
    reordered: int = 0
    broken_chain: int = 0
    boot_regressions: int = 0
    stale: int = 0
    missing: int = 0
    missing_accounted: int = 0


def _add_interval(spans: list[tuple[int, int]], first: int, last: int) -> None:
    """Insert ``first..last`` into a sorted list of disjoint intervals, merging overlaps."""
    i = bisect.bisect_left(spans, (first, first))
    if i > 0 and spans[i - 1][1] >= first - 1:
        i -= 1
    j = i
    while j < len(spans) and spans[j][0] <= last + 1:
        first, last = min(first, spans[j][0]), max(last, spans[j][1])
        j += 1
    spans[i:j] = [(first, last)]


def _split(spans: list[tuple[int, int]], first: int, last: int) -> list[tuple[int, int, bool]]:
    """``first..last`` cut into pieces, each flagged True where ``spans`` cover it."""
    out: list[tuple[int, int, bool]] = []
    pos = first
    for a, b in spans:
        if b < pos:
            continue
        if a > last:
            break
        if a > pos:
            out.append((pos, a - 1, False))
        out.append((max(a, pos), min(b, last), True))
        pos = min(b, last) + 1
        if pos > last:
            break
    if pos <= last:
        out.append((pos, last, False))
    return out


class LostLedger:
    """Every ``lost`` notice seen, by (site, gw, stream); shared by a gateway's streams."""

    def __init__(self) -> None:
        self._spans: dict[StreamKey, list[tuple[int, int]]] = {}

    def record(self, batch: Batch) -> None:
        """Remember the batch's notices (idempotent: ranges are merged)."""
        for lost in batch.lost:
            spans = self._spans.setdefault((batch.site, batch.gw, lost.stream), [])
            _add_interval(spans, lost.first, lost.last)

    def split(self, key: StreamKey, first: int, last: int) -> list[tuple[int, int, bool]]:
        """``first..last`` cut into (first, last, accounted) pieces."""
        return _split(self._spans.get(key, []), first, last)


class SequenceTracker:
    """Tracks one (site, gw, stream): not thread-safe (use :class:`StreamTracker`).

    ``first_seq`` is where the stream is expected to start (1: seqs below the first one
    observed are gaps); ``None`` starts tracking at the first seq observed (a consumer that
    joins a live stream). Digests are remembered for the last ``window`` seqs; an older seq
    seen again is reported as :class:`Stale`.
    """

    def __init__(
        self,
        key: StreamKey,
        *,
        first_seq: int | None = 1,
        window: int = 4096,
        ledger: LostLedger | None = None,
    ) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        self.key = key
        self._ledger = ledger if ledger is not None else LostLedger()
        self._window = window
        self._started = first_seq is not None
        self._highest = 0 if first_seq is None else first_seq - 1
        self._floor = 0  # seqs <= floor were forgotten
        self._seen: dict[int, tuple[bytes, bytes, int]] = {}  # seq -> (digest, prev, boot)
        self._order: list[int] = []  # sorted seen seqs still in the window
        self._missing: list[tuple[int, int]] = []
        self._summary = TrackerSummary()

    def observe(self, batch: Batch) -> list[Anomaly]:
        """Account for one (verified) batch; returns the anomalies it reveals."""
        if (batch.site, batch.gw, batch.stream) != self.key:
            raise ValueError(f"batch of {(batch.site, batch.gw, batch.stream)} fed to {self.key}")
        self._ledger.record(batch)
        s = self._summary
        s.batches += 1
        seq = batch.seq
        known = self._seen.get(seq)
        if known is not None:
            if known[0] == batch.digest:
                s.duplicates += 1
                return [Duplicate(self.key, seq, batch.digest)]
            s.conflicts += 1
            return [Conflict(self.key, seq, known[0], batch.digest)]
        out: list[Anomaly] = []
        if self._take_missing(seq):
            out.append(Reordered(self.key, seq, filled_gap=True))
        elif seq <= self._floor:
            s.stale += 1
            return [Stale(self.key, seq)]
        elif seq > self._highest:
            if not self._started:
                self._started, self._highest = True, seq - 1
            if seq > self._highest + 1:
                out.extend(self._open_gap(self._highest + 1, seq - 1))
            self._highest = seq
        else:
            out.append(Reordered(self.key, seq, filled_gap=False))
        s.reordered += sum(1 for a in out if isinstance(a, Reordered))
        out.extend(self._check_neighbours(batch))
        self._remember(batch)
        s.highest = self._highest
        return out

    def _open_gap(self, first: int, last: int) -> list[Anomaly]:
        _add_interval(self._missing, first, last)
        gaps = [Gap(self.key, a, b, acc) for a, b, acc in self._ledger.split(self.key, first, last)]
        self._summary.gaps += len(gaps)
        return list(gaps)

    def _take_missing(self, seq: int) -> bool:
        i = bisect.bisect_right(self._missing, (seq, 2**65)) - 1
        if i < 0:
            return False
        a, b = self._missing[i]
        if not a <= seq <= b:
            return False
        pieces = [(x, y) for x, y in ((a, seq - 1), (seq + 1, b)) if x <= y]
        self._missing[i : i + 1] = pieces
        return True

    def _check_neighbours(self, batch: Batch) -> list[Anomaly]:
        out: list[Anomaly] = []
        seq = batch.seq
        below = self._seen.get(seq - 1)
        if below is not None and batch.prev != below[0]:
            out.append(BrokenChain(self.key, seq, below[0], batch.prev))
        above = self._seen.get(seq + 1)
        if above is not None and above[1] != batch.digest:
            out.append(BrokenChain(self.key, seq + 1, batch.digest, above[1]))
        i = bisect.bisect_left(self._order, seq)
        if i > 0:
            lower = self._order[i - 1]
            if self._seen[lower][2] > batch.boot:
                out.append(BootRegression(self.key, seq, batch.boot, lower, self._seen[lower][2]))
        if i < len(self._order):
            higher = self._order[i]
            if self._seen[higher][2] < batch.boot:
                out.append(BootRegression(self.key, higher, self._seen[higher][2], seq, batch.boot))
        self._summary.broken_chain += sum(1 for a in out if isinstance(a, BrokenChain))
        self._summary.boot_regressions += sum(1 for a in out if isinstance(a, BootRegression))
        return out

    def _remember(self, batch: Batch) -> None:
        self._seen[batch.seq] = (batch.digest, batch.prev, batch.boot)
        bisect.insort(self._order, batch.seq)
        limit = self._highest - self._window
        if limit > self._floor:
            drop = bisect.bisect_right(self._order, limit)
            for old in self._order[:drop]:
                del self._seen[old]
            del self._order[:drop]
            self._floor = limit

    def open_gaps(self) -> list[Gap]:
        """Seqs missing right now, ``accounted`` against every notice seen so far."""
        return [
            Gap(self.key, a, b, acc)
            for first, last in self._missing
            for a, b, acc in self._ledger.split(self.key, first, last)
        ]

    def finish(self) -> list[Gap]:
        """The final unresolved gaps (call when the stream's input is exhausted)."""
        return self.open_gaps()

    def summary(self) -> TrackerSummary:
        """A copy of the counts, with the current missing totals."""
        gaps = self.open_gaps()
        return dataclasses.replace(
            self._summary,
            missing=sum(g.count for g in gaps),
            missing_accounted=sum(g.count for g in gaps if g.accounted),
        )


@dataclass(eq=False)
class StreamTracker:
    """Many :class:`SequenceTracker`, one per (site, gw, stream), sharing one lost ledger.

    Thread-safe (one lock): several consumer threads may feed it.
    """

    first_seq: int | None = 1
    window: int = 4096
    _trackers: dict[StreamKey, SequenceTracker] = field(default_factory=dict, init=False)
    _ledger: LostLedger = field(default_factory=LostLedger, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def observe(self, batch: Batch) -> list[Anomaly]:
        """Route one batch to its stream's tracker; returns its anomalies."""
        key = (batch.site, batch.gw, batch.stream)
        with self._lock:
            tracker = self._trackers.get(key)
            if tracker is None:
                tracker = SequenceTracker(
                    key, first_seq=self.first_seq, window=self.window, ledger=self._ledger
                )
                self._trackers[key] = tracker
            return tracker.observe(batch)

    def streams(self) -> list[StreamKey]:
        with self._lock:
            return sorted(self._trackers)

    def open_gaps(self) -> list[Gap]:
        with self._lock:
            return [g for k in sorted(self._trackers) for g in self._trackers[k].open_gaps()]

    def finish(self) -> list[Gap]:
        """Final unresolved gaps of every stream."""
        return self.open_gaps()

    def summary(self) -> dict[StreamKey, TrackerSummary]:
        with self._lock:
            return {k: self._trackers[k].summary() for k in sorted(self._trackers)}
