"""The durable, alarm-first store: sealed batches in SQLite (WAL), sent in lane order.

Why SQLite in WAL mode with ``synchronous=FULL``: a batch counts as accepted only once its
transaction is on disk (the WAL is fsynced at every commit), and sequence/chain state is
committed in the **same** transaction as the batch, so a crash (``kill -9``, power loss)
can never reuse a ``seq`` nor break a ``prev`` chain. See ``docs/durability.md``.

Early streams (the gateway's ``alarm`` stream): a batch is signed at once on the caller's
thread (:meth:`Store.prepare`) and may be published **before** its commit (:meth:`Store.commit`)
finishes, so an alarm never waits for the disk's fsync. That is safe because ``seq`` numbers
are reserved durably ahead (``_RESERVE`` past the last committed one, in the same
transactions): a batch is published early only within the reservation, and after an unclean
stop the stream resumes one seq past it, with a signed ``lost`` notice (reason
``unconfirmed``) for the seqs no commit recorded. A clean close gives the reservation back.

Lanes: ``ALARM`` (events of severity fire..trouble) is always drained first, then
``EVIDENCE`` (camera snapshots), then ``TELEMETRY``. Only telemetry is ever shed: when it
exceeds its byte or age cap, or the disk runs low, the oldest telemetry batches are deleted
and the next sealed batch (of any stream) carries a signed ``lost`` notice for each range.

All methods are synchronous and must be called from one thread at a time (the gateway runs
them on a dedicated single-thread executor so fsyncs never block the event loop).
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from edgesdk.batch import BatchHeader, LostRange, digest
from edgesdk.errors import StoreError
from edgesdk.model import Event, Reading, ReadingBlock

__all__ = [
    "SCHEMA_VERSION",
    "Lane",
    "Prepared",
    "SealRequest",
    "SealResult",
    "Sealer",
    "Store",
    "StoreStats",
    "Stored",
]


class Lane(enum.IntEnum):
    """Delivery priority: lower drains first."""

    ALARM = 0
    EVIDENCE = 1
    TELEMETRY = 2


class Sealer(Protocol):
    """Signs one batch (``edgesdk.batch.seal`` with the gateway's key bound)."""

    def __call__(
        self,
        header: BatchHeader,
        *,
        readings: Sequence[Reading | ReadingBlock],
        events: Sequence[Event],
        lost: Sequence[LostRange],
        extra: dict[str, Any] | None,
    ) -> bytes: ...


@dataclass(frozen=True, slots=True)
class SealRequest:
    stream: str
    lane: Lane
    readings: Sequence[Reading | ReadingBlock] = ()
    events: Sequence[Event] = ()
    extra: dict[str, Any] | None = None

    @property
    def count(self) -> int:
        """How many readings (a block counts its values)."""
        return sum(len(r.values) if type(r) is ReadingBlock else 1 for r in self.readings)


@dataclass(frozen=True, slots=True)
class Stored:
    """One sealed batch waiting in the outbox."""

    id: int
    lane: Lane
    stream: str
    seq: int
    created: float
    readings: int
    message: bytes


@dataclass(frozen=True, slots=True)
class Prepared:
    """A batch of an early stream, signed but not yet committed (see :meth:`Store.prepare`).

    ``early`` says whether its ``seq`` lies within the durable reservation, i.e. whether it
    may be published before :meth:`Store.commit` has returned.
    """

    lane: Lane
    stream: str
    seq: int
    created: float
    readings: int
    message: bytes
    early: bool


@dataclass(slots=True)
class SealResult:
    stored: list[Stored] = field(default_factory=list)
    shed: list[LostRange] = field(default_factory=list)  # telemetry dropped in this call


@dataclass(frozen=True, slots=True)
class _Shed:
    ranges: list[LostRange] = field(default_factory=list)
    bytes: int = 0
    batches: int = 0
    readings: int = 0


@dataclass(frozen=True, slots=True)
class StoreStats:
    boot: int
    batches: dict[str, int]  # lane name -> batches waiting
    bytes: dict[str, int]
    oldest: dict[str, float | None]  # lane name -> created time of the oldest waiting
    shed_batches: int
    shed_readings: int


# Numbered migrations; index + 1 is the schema version they produce. Never edit one that
# has shipped: add the next. tests/gateway/test_store_migrations.py opens old files.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE streams (
        stream TEXT PRIMARY KEY,
        next_seq INTEGER NOT NULL,
        last_digest BLOB NOT NULL
    );
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        lane INTEGER NOT NULL,
        stream TEXT NOT NULL,
        seq INTEGER NOT NULL,
        created REAL NOT NULL,
        readings INTEGER NOT NULL,
        message BLOB NOT NULL,
        carried TEXT,
        UNIQUE (stream, seq)
    );
    CREATE INDEX outbox_lane ON outbox (lane, id);
    CREATE TABLE lost (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        stream TEXT NOT NULL,
        first INTEGER NOT NULL,
        last INTEGER NOT NULL,
        reason TEXT NOT NULL
    );
    """,
    """
    CREATE TABLE reserved (stream TEXT PRIMARY KEY, through INTEGER NOT NULL);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

# Room kept free on the data filesystem: a ballast file deleted when the disk fills, so
# the store still has space to shed telemetry and commit alarms.
_BALLAST = ".ballast"
_BALLAST_BYTES = 4 << 20
_WAL_PAGES = 512  # pages of WAL between automatic checkpoints (SQLite's default: 1000)
_WAL_LIMIT = 2 << 20  # bytes the WAL file is truncated to after a checkpoint
_WAL_TRIM = 2 * _WAL_LIMIT  # a WAL above this after a commit is truncated at once
# Seqs of an early stream reserved past its last commit: how many of its batches may be
# published before their commits. Commits normally take 1-2 ms, so even a 500 ms disk stall
# with an alarm batch every 50 ms stays within it; past it, batches wait for their commit.
# After an unclean stop, up to this many seqs are declared ``unconfirmed``.
_RESERVE = 16
UNCONFIRMED = "unconfirmed"  # the lost-notice reason for seqs reserved when the gateway died


def _is_disk_full(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code == sqlite3.SQLITE_FULL or "disk is full" in str(exc)


class Store:
    """The outbox of sealed batches for one gateway identity."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        site: str,
        gw: str,
        sealer: Sealer,
        telemetry_max_bytes: int = 1 << 30,
        telemetry_max_age: float = 7 * 86400.0,
        min_free_bytes: int = 16 << 20,
        clock: Callable[[], float] = time.time,
        early_streams: Iterable[str] = (),
    ) -> None:
        self.dir = Path(data_dir)
        self.path = self.dir / "store.sqlite"
        self._wal = self.dir / "store.sqlite-wal"
        self.site = site
        self.gw = gw
        self._sealer = sealer
        self.telemetry_max_bytes = telemetry_max_bytes
        self.telemetry_max_age = telemetry_max_age
        self.min_free_bytes = min_free_bytes
        self._clock = clock
        self._db: sqlite3.Connection | None = None
        self._streams: dict[str, tuple[int, bytes]] = {}  # committed: next seq, last digest
        self._early = frozenset(early_streams)
        # early streams: next seq and digest as signed by prepare(), ahead of _streams
        self._signed: dict[str, tuple[int, bytes]] = {}
        self._reserved: dict[str, int] = {}  # early stream -> highest seq durably reserved
        self.unconfirmed: list[LostRange] = []  # declared at this open (an unclean stop)
        self._telemetry_bytes = 0
        self._seals_since_disk_check = 0
        self._disk_cap: int | None = None
        self.boot = 0
        self.shed_batches = 0
        self.shed_readings = 0

    # -- opening ------------------------------------------------------------------------
    def open(self) -> None:
        """Open (creating or migrating), and count one more boot, durably."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            # checkpoint every 2 MiB of WAL and truncate the file back to 2 MiB after one:
            # the WAL holds no data the database does not, so its size is pure overhead
            # (docs/durability.md)
            db.execute(f"PRAGMA wal_autocheckpoint={_WAL_PAGES}")
            db.execute(f"PRAGMA journal_size_limit={_WAL_LIMIT}")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA busy_timeout=5000")
            self._db = db
            self._migrate()
            with self._txn():
                row = db.execute("SELECT value FROM meta WHERE key='boot'").fetchone()
                self.boot = (int(row[0]) if row else 0) + 1
                db.execute("INSERT OR REPLACE INTO meta VALUES ('boot', ?)", (str(self.boot),))
                for key, value in (("site", self.site), ("gw", self.gw)):
                    db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (key, value))
                self._streams = {
                    s: (n, bytes(d))
                    for s, n, d in db.execute("SELECT stream, next_seq, last_digest FROM streams")
                }
                self._resume_reservations(db)
            self._check_identity()
            (tb,) = db.execute(
                "SELECT COALESCE(SUM(LENGTH(message)), 0) FROM outbox WHERE lane = ?",
                (int(Lane.TELEMETRY),),
            ).fetchone()
            self._telemetry_bytes = int(tb)
        except sqlite3.Error as exc:
            self.close()
            raise StoreError(f"cannot open store {self.path}: {exc}") from exc
        except BaseException:
            self.close()
            raise
        self._ensure_ballast()

    def _resume_reservations(self, db: sqlite3.Connection) -> None:
        """In the boot transaction: skip the seqs the last run reserved but never committed
        (it stopped uncleanly, and may have published some of them early), declaring them
        in a ``lost`` notice, then reserve afresh for this run's early streams."""
        self.unconfirmed = []
        for stream, through in db.execute("SELECT stream, through FROM reserved").fetchall():
            nxt, prev = self._streams.get(stream, (1, bytes(32)))
            if through >= nxt:
                # ``through + 1`` is never used: the batch that resumes the stream is then
                # never next to one that may have left early (whose digest is unknown here)
                last = through + 1
                notice = LostRange(stream, nxt, last, UNCONFIRMED)
                self.unconfirmed.append(notice)
                db.execute(
                    "INSERT INTO lost (stream, first, last, reason) VALUES (?, ?, ?, ?)",
                    (stream, nxt, last, UNCONFIRMED),
                )
                if nxt == 1:  # nothing committed yet; a seq above 1 needs a non-zero prev
                    prev = hashlib.sha256(b"").digest()
                self._streams[stream] = (last + 1, prev)
                db.execute(
                    "INSERT OR REPLACE INTO streams VALUES (?, ?, ?)", (stream, last + 1, prev)
                )
        db.execute("DELETE FROM reserved")
        self._reserved = {}
        self._signed = {}
        for stream in sorted(self._early):
            committed = self._streams.get(stream, (1, bytes(32)))
            self._signed[stream] = committed
            self._reserved[stream] = committed[0] - 1 + _RESERVE
            db.execute("INSERT INTO reserved VALUES (?, ?)", (stream, self._reserved[stream]))

    def _migrate(self) -> None:
        db = self._require()
        (version,) = db.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema {version}, newer than this gateway's {SCHEMA_VERSION}; "
                "upgrade the gateway (downgrades are not supported)"
            )
        for number in range(version + 1, SCHEMA_VERSION + 1):
            # one transaction per migration (executescript would commit on its own)
            with self._txn():
                for statement in _split_sql(MIGRATIONS[number - 1]):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={number}")

    def _check_identity(self) -> None:
        db = self._require()
        rows = dict(db.execute("SELECT key, value FROM meta WHERE key IN ('site', 'gw')"))
        if rows.get("site") != self.site or rows.get("gw") != self.gw:
            raise StoreError(
                f"{self.path} belongs to {rows.get('site')}/{rows.get('gw')}, not "
                f"{self.site}/{self.gw}; use another data_dir"
            )

    def close(self) -> None:
        """Close; a clean close gives back the reservations of early streams whose every
        signed batch was committed (the next open then declares nothing unconfirmed)."""
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                for stream in sorted(self._early):
                    nxt = self._streams.get(stream, (1, b""))[0]
                    if stream in self._signed and self._signed[stream][0] == nxt:
                        self._db.execute(
                            "UPDATE reserved SET through = ? WHERE stream = ?", (nxt - 1, stream)
                        )
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()
            self._db = None

    def _require(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError("store is not open")
        return self._db

    @contextlib.contextmanager
    def _txn(self) -> Any:
        db = self._require()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # -- sealing ------------------------------------------------------------------------
    def seal(self, requests: Sequence[SealRequest]) -> SealResult:
        """Seal, sign and durably store batches, in one transaction.

        When this returns, every batch in the result is on disk with its ``seq`` and chain
        state; if it raises, none is and no ``seq`` was consumed.
        """
        result = self._writing(lambda: self._seal_once(requests))
        if all(r.lane is Lane.TELEMETRY for r in requests):
            self._trim_wal()  # never on an alarm's way out
        return result

    def _writing(self, write: Callable[[], SealResult]) -> SealResult:
        """Run one storing transaction; on a full disk, relieve it and try again (three
        attempts in all). Every SQLite error comes out as a StoreError."""
        for attempt in range(3):
            try:
                return write()
            except sqlite3.OperationalError as exc:
                if not _is_disk_full(exc) or attempt == 2:
                    raise StoreError(f"cannot store batch: {exc}") from exc
                self._relieve_disk()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot store batch: {exc}") from exc
        raise StoreError("unreachable")  # pragma: no cover

    def _seal_once(self, requests: Sequence[SealRequest]) -> SealResult:
        if any(r.stream in self._early for r in requests):
            raise ValueError("an early stream is sealed with prepare() and commit()")
        result = SealResult()
        streams = dict(self._streams)
        telemetry_bytes = self._telemetry_bytes
        shed = _Shed()
        now = self._clock()
        with self._txn() as db:
            if any(r.lane is Lane.TELEMETRY for r in requests):
                shed = self._enforce_retention(db, now)
                telemetry_bytes -= shed.bytes
            lost = self._take_lost(db)
            for req in requests:
                seq, prev = streams.get(req.stream, (1, bytes(32)))
                header = BatchHeader(
                    site=self.site,
                    gw=self.gw,
                    stream=req.stream,
                    seq=seq,
                    prev=prev,
                    boot=self.boot,
                    t=now,
                )
                count = req.count
                message = self._sealer(
                    header,
                    readings=req.readings,
                    events=req.events,
                    lost=lost,
                    extra=req.extra,
                )
                carried = _dump_lost(lost) if lost else None
                lost = []  # the first batch carries the notices
                result.stored.append(
                    _insert(db, streams, req.lane, req.stream, seq, now, count, message, carried)
                )
                if req.lane is Lane.TELEMETRY:
                    telemetry_bytes += len(message)
        # committed: only now does in-memory state move
        self._streams = streams
        self._telemetry_bytes = telemetry_bytes
        self.shed_batches += shed.batches
        self.shed_readings += shed.readings
        result.shed = shed.ranges
        return result

    # -- early streams -------------------------------------------------------------------
    def prepare(self, req: SealRequest) -> Prepared:
        """Sign the next batch of an early stream now, without the disk.

        Runs on the caller's thread (the event loop), not the store's: only this method
        moves an early stream's signing state, so calls must not overlap each other (they
        may overlap anything else). The batch carries no ``lost`` notices (they wait for the
        next sealed batch of another stream). Commit it with :meth:`commit`, in order.
        """
        if req.stream not in self._early:
            raise ValueError(f"{req.stream!r} is not an early stream of this store")
        seq, prev = self._signed[req.stream]
        now = self._clock()
        header = BatchHeader(
            site=self.site, gw=self.gw, stream=req.stream, seq=seq, prev=prev, boot=self.boot, t=now
        )
        message = self._sealer(
            header, readings=req.readings, events=req.events, lost=(), extra=req.extra
        )
        self._signed[req.stream] = (seq + 1, digest(message))
        early = seq <= self._reserved.get(req.stream, 0)
        return Prepared(req.lane, req.stream, seq, now, req.count, message, early)

    def commit(self, prepared: Sequence[Prepared]) -> SealResult:
        """Store prepared batches durably, in one transaction, and extend the reservation.

        When this returns, every batch is on disk with its chain state; if it raises, none
        is, and the same batches are to be committed again (their seqs stay taken). A batch
        committed already is skipped (not in the result).
        """
        return self._writing(lambda: self._commit_once(prepared))

    def _commit_once(self, prepared: Sequence[Prepared]) -> SealResult:
        result = SealResult()
        streams = dict(self._streams)
        reserved = dict(self._reserved)
        with self._txn() as db:
            for p in prepared:
                expected = streams.get(p.stream, (1, b""))[0]
                if p.seq < expected:
                    continue  # committed already (its caller was cancelled waiting for it)
                if p.seq != expected:
                    raise StoreError(
                        f"{p.stream} batch {p.seq} committed out of order (next is {expected})"
                    )
                result.stored.append(
                    _insert(db, streams, p.lane, p.stream, p.seq, p.created, p.readings, p.message)
                )
                reserved[p.stream] = p.seq + _RESERVE
                db.execute(
                    "INSERT OR REPLACE INTO reserved VALUES (?, ?)", (p.stream, reserved[p.stream])
                )
        self._streams = streams
        self._reserved = reserved
        return result

    def _trim_wal(self) -> None:
        """Truncate a WAL a large group commit left above twice its limit.

        SQLite checkpoints after such a commit but truncates the WAL only when the next
        write begins, so after a burst (a backlog sealed during an outage) the file stays
        that large while nothing is written: 6.6 MB of 39.5 MB on the drain benchmark.
        Nothing reads the WAL but this connection, so the checkpoint waits for no one;
        it runs after telemetry seals only, so an alarm's batch never waits for it.
        """
        try:
            size = os.stat(self._wal).st_size
        except OSError:
            return
        if size > _WAL_TRIM:
            with contextlib.suppress(sqlite3.Error):
                self._require().execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def seal_unstored(
        self, stream: str, *, events: Sequence[Event] = (), extra: dict[str, Any] | None = None
    ) -> bytes:
        """Seal a batch that is published directly (birth, death): the ``seq`` and chain
        state are committed, but the message does not wait in the outbox."""
        if stream in self._early:
            raise ValueError("an early stream is sealed with prepare() and commit()")
        try:
            with self._txn() as db:
                seq, prev = self._streams.get(stream, (1, bytes(32)))
                header = BatchHeader(
                    site=self.site,
                    gw=self.gw,
                    stream=stream,
                    seq=seq,
                    prev=prev,
                    boot=self.boot,
                    t=self._clock(),
                )
                message = self._sealer(header, readings=(), events=events, lost=(), extra=extra)
                db.execute(
                    "INSERT OR REPLACE INTO streams VALUES (?, ?, ?)",
                    (stream, seq + 1, digest(message)),
                )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot seal {stream} batch: {exc}") from exc
        self._streams[stream] = (seq + 1, digest(message))
        return message

    # -- retention ----------------------------------------------------------------------
    def _enforce_retention(self, db: sqlite3.Connection, now: float) -> _Shed:
        """Drop the oldest telemetry beyond the caps and queue lost notices, in the
        caller's transaction. The cap is checked before the incoming batch is added, so the
        lane may exceed it by one batch."""
        cap = self.telemetry_max_bytes
        self._seals_since_disk_check += 1
        if self._seals_since_disk_check >= 16:
            self._seals_since_disk_check = 0
            self._disk_cap = self._disk_cap_now(db)
        if self._disk_cap is not None:
            cap = min(cap, self._disk_cap)
        oldest_allowed = now - self.telemetry_max_age
        budget = self._telemetry_bytes
        dropped: list[tuple[int, str, int, int, int, str | None]] = []
        after = 0
        while budget > 0:
            rows = db.execute(
                "SELECT id, stream, seq, LENGTH(message), readings, carried, created FROM outbox "
                "WHERE lane = ? AND id > ? ORDER BY id LIMIT 256",
                (int(Lane.TELEMETRY), after),
            ).fetchall()
            if not rows:
                break
            within = False
            for rid, stream, seq, size, nread, carried, created in rows:
                if budget <= cap and created >= oldest_allowed:
                    within = True
                    break
                dropped.append((rid, stream, seq, size, nread, carried))
                budget -= size
            if within:
                break
            after = rows[-1][0]
        if not dropped:
            return _Shed()
        db.executemany("DELETE FROM outbox WHERE id = ?", [(d[0],) for d in dropped])
        ranges = _ranges([(d[1], d[2]) for d in dropped], "retention")
        requeued = [r for d in dropped if d[5] for r in _load_lost(d[5])]
        db.executemany(
            "INSERT INTO lost (stream, first, last, reason) VALUES (?, ?, ?, ?)",
            [(r.stream, r.first, r.last, r.reason) for r in [*requeued, *ranges]],
        )
        return _Shed(
            ranges, self._telemetry_bytes - budget, len(dropped), sum(d[4] for d in dropped)
        )

    def _disk_cap_now(self, db: sqlite3.Connection) -> int | None:
        """A telemetry cap that keeps ``min_free_bytes`` free on the filesystem, or None.

        Pages freed by shedding stay inside the database file (SQLite reuses them), so
        they count as free room: the filesystem's free space alone would keep shrinking
        the cap to nothing.
        """
        free = self._free_bytes()
        if free is None:
            return None
        (pages,) = db.execute("PRAGMA freelist_count").fetchone()
        (page_size,) = db.execute("PRAGMA page_size").fetchone()
        room = free + int(pages) * int(page_size)
        if room >= self.min_free_bytes:
            return None
        return max(0, self._telemetry_bytes - (self.min_free_bytes - room))

    def _take_lost(self, db: sqlite3.Connection) -> list[LostRange]:
        rows = db.execute("SELECT stream, first, last, reason FROM lost ORDER BY id").fetchall()
        if rows:
            db.execute("DELETE FROM lost")
        return [LostRange(s, f, la, r) for s, f, la, r in rows]

    def pending_lost(self) -> list[LostRange]:
        """Lost notices waiting for the next sealed batch (for status and tests)."""
        rows = self._require().execute("SELECT stream, first, last, reason FROM lost ORDER BY id")
        return [LostRange(s, f, la, r) for s, f, la, r in rows]

    # -- disk ---------------------------------------------------------------------------
    def _free_bytes(self) -> int | None:
        try:
            st = os.statvfs(self.dir)
        except OSError:
            return None
        return st.f_bavail * st.f_frsize

    def _ensure_ballast(self) -> None:
        path = self.dir / _BALLAST
        if path.exists():
            return
        free = self._free_bytes()
        if free is not None and free < 4 * _BALLAST_BYTES:
            return
        with contextlib.suppress(OSError), open(path, "wb") as f:
            f.truncate(0)
            f.write(b"\0" * _BALLAST_BYTES)
            f.flush()
            os.fsync(f.fileno())

    def _relieve_disk(self) -> None:
        """The disk is full: free the ballast, shed a quarter of the telemetry."""
        with contextlib.suppress(OSError):
            (self.dir / _BALLAST).unlink()
        saved = self.telemetry_max_bytes
        try:
            self.telemetry_max_bytes = self._telemetry_bytes * 3 // 4
            with self._txn() as db:
                shed = self._enforce_retention(db, self._clock())
            self._telemetry_bytes -= shed.bytes
            self.shed_batches += shed.batches
            self.shed_readings += shed.readings
            with contextlib.suppress(sqlite3.Error):
                self._require().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self.telemetry_max_bytes = saved

    # -- delivery -----------------------------------------------------------------------
    def pending(self, lane: Lane, *, after: int = 0, limit: int = 64) -> list[Stored]:
        """Waiting batches of one lane with ``id > after``, oldest first."""
        rows = self._require().execute(
            "SELECT id, stream, seq, created, readings, message FROM outbox "
            "WHERE lane = ? AND id > ? ORDER BY id LIMIT ?",
            (int(lane), after, limit),
        )
        return [Stored(i, lane, s, q, c, n, bytes(m)) for i, s, q, c, n, m in rows]

    def ack(self, delivered: Iterable[Stored]) -> int:
        """The broker has these (PUBACK): remove them. Not fsynced on its own: a crash
        before the next durable commit only means they are sent again (consumers dedupe
        by seq). Returns how many were still waiting (retention may have shed some)."""
        items = list(delivered)
        if not items:
            return 0
        db = self._require()
        try:
            db.execute("PRAGMA synchronous=NORMAL")
            removed = 0
            freed = 0
            with self._txn():
                for item in items:
                    cur = db.execute("DELETE FROM outbox WHERE id = ?", (item.id,))
                    if cur.rowcount and item.lane is Lane.TELEMETRY:
                        freed += len(item.message)
                    removed += cur.rowcount
            self._telemetry_bytes -= freed
            return removed
        except sqlite3.Error as exc:
            raise StoreError(f"cannot remove delivered batches: {exc}") from exc
        finally:
            with contextlib.suppress(sqlite3.Error):
                db.execute("PRAGMA synchronous=FULL")

    def stats(self) -> StoreStats:
        db = self._require()
        batches: dict[str, int] = {}
        sizes: dict[str, int] = {}
        oldest: dict[str, float | None] = {}
        for lane in Lane:
            n, b, o = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(message)), 0), MIN(created) FROM outbox "
                "WHERE lane = ?",
                (int(lane),),
            ).fetchone()
            key = lane.name.lower()
            batches[key], sizes[key], oldest[key] = int(n), int(b), o
        return StoreStats(self.boot, batches, sizes, oldest, self.shed_batches, self.shed_readings)

    def next_seq(self, stream: str) -> int:
        return self._streams.get(stream, (1, b""))[0]


def _insert(
    db: sqlite3.Connection,
    streams: dict[str, tuple[int, bytes]],
    lane: Lane,
    stream: str,
    seq: int,
    created: float,
    readings: int,
    message: bytes,
    carried: str | None = None,
) -> Stored:
    """Put one signed batch in the outbox and move its stream's chain state (in ``streams``
    and in the table), in the caller's transaction: sealing and committing share it."""
    cur = db.execute(
        "INSERT INTO outbox (lane, stream, seq, created, readings, message, carried) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (int(lane), stream, seq, created, readings, message, carried),
    )
    rowid = cur.lastrowid
    assert rowid is not None
    streams[stream] = (seq + 1, digest(message))
    db.execute(
        "INSERT OR REPLACE INTO streams VALUES (?, ?, ?)", (stream, seq + 1, streams[stream][1])
    )
    return Stored(rowid, lane, stream, seq, created, readings, message)


def _split_sql(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _ranges(items: Sequence[tuple[str, int]], reason: str) -> list[LostRange]:
    """Collapse (stream, seq) pairs into contiguous ranges per stream."""
    out: list[LostRange] = []
    by_stream: dict[str, list[int]] = {}
    for stream, seq in items:
        by_stream.setdefault(stream, []).append(seq)
    for stream, seqs in by_stream.items():
        seqs.sort()
        first = last = seqs[0]
        for s in seqs[1:]:
            if s == last + 1:
                last = s
                continue
            out.append(LostRange(stream, first, last, reason))
            first = last = s
        out.append(LostRange(stream, first, last, reason))
    return out


def _dump_lost(lost: Sequence[LostRange]) -> str:
    return json.dumps([[r.stream, r.first, r.last, r.reason] for r in lost])


def _load_lost(text: str) -> list[LostRange]:
    return [LostRange(str(s), int(f), int(la), str(r)) for s, f, la, r in json.loads(text)]
