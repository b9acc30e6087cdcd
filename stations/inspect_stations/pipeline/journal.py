"""The station's local state: a write-ahead journal of results, and what it has already done.

One SQLite file (``<state_dir>/journal.sqlite``, WAL, ``synchronous=FULL`` so every commit is
fsync'd) holds four tables:

``journal``
    results not yet written to a sink, one row per (result, sink), in order. Every result is
    committed here *before* its image is moved out of the inbox, so a crash at any moment loses
    nothing; the :class:`~inspect_stations.pipeline.writer.Writer` thread writes rows to their sink
    in
    order and deletes them. When the database is unreachable rows simply wait; they are
    written, oldest first, once it is back. Sinks are idempotent on the record's key (station
    and image sha256, or station and ``capture_id`` for a triggered capture), so a row replayed
    after a crash between "written" and "deleted" is not duplicated.
``done``
    the sha256 and verdict of every image this station has recorded, with the inbox path it came
    from, where it was to be filed and the error reason: an image still in the inbox after a crash
    is filed where its record says, without being inspected again; a *different* file with the
    same content (same sha256) is filed beside the first one and not recorded again. A triggered
    capture with the pixels of a recorded one is still recorded (its own part), and reported as
    a repeated frame.
``seen``
    for ``after = "leave"`` folders: (path, size, mtime) already inspected.

Paths are stored losslessly, a name that is not valid UTF-8 as its
bytes
(:mod:`inspect_stations.pipeline.journal_codec`): such a file is inspected, recorded and filed like
any.
``dead``
    dead letters: journal rows a sink refused for their content (the database cannot store
    them, or the row cannot be read), set aside with the reason so that the rows behind them
    are written. ``inspect station status`` shows them; ``inspect station replay`` puts them
    back in line (under their old sequence number, so ahead of newer rows) once the cause is
    fixed (:mod:`inspect_stations.pipeline.dead_letters`).
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import time
from pathlib import Path

from inspect_core.errors import InspectError
from inspect_core.types import Inspection
from inspect_stations.pipeline.dead_letters import (
    DEAD_SHOWN,
    DeadLetter,
    DeadLetters,
    dead_letters_of,
    read_dead_letters,
)
from inspect_stations.pipeline.journal_codec import decode, encode, loaded, stored

__all__ = [
    "Journal",
    "JournalEntry",
    "Known",
    "SeenFile",
    "DeadLetter",
    "DeadLetters",
    "read_dead_letters",
    "encode",
    "decode",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sink TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    payload TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_sink ON journal (sink, seq);
CREATE TABLE IF NOT EXISTS done (
    sha256 TEXT PRIMARY KEY,
    verdict TEXT NOT NULL,
    at REAL NOT NULL,
    src TEXT,
    dest TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS done_at ON done (at);
CREATE TABLE IF NOT EXISTS seen (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS dead (
    seq INTEGER PRIMARY KEY,
    sink TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    payload TEXT NOT NULL,
    created REAL NOT NULL,
    failed_at REAL NOT NULL,
    reason TEXT NOT NULL
);
"""
# columns added to ``done`` after the first release: older state files get them on open
DONE_COLUMNS = {"src": "TEXT", "dest": "TEXT", "error": "TEXT"}


@dataclasses.dataclass(frozen=True)
class Known:
    """What the station recorded for an image before (see :meth:`Journal.known`)."""

    verdict: str
    src: str | None = None  # the inbox path it came from
    dest: str | None = None  # where it was (to be) filed, as its record says
    error: str | None = None  # the reason of an ERROR


@dataclasses.dataclass(frozen=True)
class SeenFile:
    """A file of an ``after = "leave"`` folder, as it was inspected (see the ``seen`` table)."""

    path: str
    size: int
    mtime_ns: int


@dataclasses.dataclass(frozen=True)
class JournalEntry:
    """One result to commit (:meth:`Journal.commit`): the inspection (its ``source`` is where
    the image is filed), the sinks to write it to, the leave-mode file to remember as seen, and
    the inbox path it came from."""

    inspection: Inspection
    sinks: list[str]
    seen: SeenFile | None = None
    src: str | None = None


def _open_failed(path: Path, e: Exception) -> str:
    """Why the journal cannot be opened, and what to do."""
    if getattr(e, "sqlite_errorcode", None) in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return (
            f"the station's journal {path} is damaged or not a journal ({e}): move it aside "
            f"(rename it {path.name}.damaged) and start again with a new one. Results in it "
            "not yet in the database are lost unless recovered (`sqlite3 "
            f"{path.name}.damaged .recover`)"
        )
    return (
        f"cannot open the station's journal {path} ({type(e).__name__}: {e}); check that "
        "station.state_dir is on a local disk with free space and writable by the station's "
        "user. Do not delete the file: it may hold results not yet in the database"
    )


class Journal:
    """Thread-safe access to the state file (one connection, one lock)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(
                str(self.path), isolation_level=None, check_same_thread=False, timeout=30
            )
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(SCHEMA)
            have = {r[1] for r in self.db.execute("PRAGMA table_info(done)")}
            for col, typ in DONE_COLUMNS.items():
                if col not in have:
                    self.db.execute(f"ALTER TABLE done ADD COLUMN {col} {typ}")
        except (OSError, sqlite3.Error) as e:
            raise InspectError(_open_failed(self.path, e)) from e

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def _rollback(self) -> None:
        """Roll back after a failed statement. SQLite may already have rolled back (disk full,
        I/O error); a second error here must neither hide the first nor leave the shared
        connection inside a transaction (every later BEGIN would fail)."""
        try:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def commit(self, entries: list[JournalEntry]) -> None:
        """Durably record results: each entry becomes journal rows (one per sink) plus its
        ``done`` and ``seen`` rows, all in one fsync'd transaction."""
        now = time.time()
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for e in entries:
                    self._insert(e, now)
                self.db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise

    def _insert(self, e: JournalEntry, now: float) -> None:
        insp = e.inspection
        payload = encode(insp)
        self.db.executemany(
            "INSERT INTO journal (sink, sha256, payload, created) VALUES (?, ?, ?, ?)",
            [(s, insp.image_sha256, payload, now) for s in e.sinks],
        )
        self.db.execute(
            "INSERT OR REPLACE INTO done (sha256, verdict, at, src, dest, error) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                insp.image_sha256,
                insp.verdict.decision.value,
                now,
                stored(e.src),
                stored(insp.source),
                stored(insp.error),
            ),
        )
        if e.seen:
            self.db.execute(
                "INSERT OR REPLACE INTO seen VALUES (?, ?, ?, ?, ?)",
                (stored(e.seen.path), e.seen.size, e.seen.mtime_ns, insp.image_sha256, now),
            )
        if insp.replaces and insp.verdict.decision.value != "ERROR":
            # the ERROR of this file from when it could not be read is replaced: one set aside
            # must not come back with a replay, and the station no longer knows it as ERROR
            self.db.execute("DELETE FROM dead WHERE sha256 = ?", (insp.replaces,))
            self.db.execute("DELETE FROM done WHERE sha256 = ?", (insp.replaces,))

    def mark_seen(self, path: str, size: int, mtime_ns: int, sha256: str) -> None:
        with self._lock:
            self.db.execute(
                "INSERT OR REPLACE INTO seen VALUES (?, ?, ?, ?, ?)",
                (stored(path), size, mtime_ns, sha256, time.time()),
            )

    def pending(self, sink: str | None = None) -> int:
        with self._lock:
            if sink is None:
                n: int = self.db.execute("SELECT count(*) FROM journal").fetchone()[0]
                return n
            n = self.db.execute("SELECT count(*) FROM journal WHERE sink = ?", (sink,)).fetchone()[
                0
            ]
            return n

    def pending_by_sink(self) -> dict[str, int]:
        with self._lock:
            return dict(self.db.execute("SELECT sink, count(*) FROM journal GROUP BY sink"))

    def oldest(self, sink: str, limit: int = 64) -> list[tuple[int, str]]:
        with self._lock:
            return self.db.execute(
                "SELECT seq, payload FROM journal WHERE sink = ? ORDER BY seq LIMIT ?",
                (sink, limit),
            ).fetchall()

    def remove(self, seqs: list[int]) -> None:
        if not seqs:
            return
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.executemany("DELETE FROM journal WHERE seq = ?", [(s,) for s in seqs])
                self.db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise

    def set_aside(self, seq: int, reason: str) -> None:
        """Move journal row ``seq`` to the dead letters, with the reason its sink refused it."""
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.execute(
                    "INSERT OR REPLACE INTO dead (seq, sink, sha256, payload, "
                    "created, failed_at, reason) SELECT seq, sink, sha256, payload, "
                    "created, ?, ? FROM journal WHERE seq = ?",
                    (time.time(), reason, seq),
                )
                self.db.execute("DELETE FROM journal WHERE seq = ?", (seq,))
                self.db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise

    def dead_letters(self, limit: int = DEAD_SHOWN) -> DeadLetters:
        with self._lock:
            return dead_letters_of(self.db, limit)

    def replay_dead(self, sink: str | None = None) -> int:
        """Put the dead letters (of ``sink``, or all) back in line; returns how many."""
        where, args = ("WHERE sink = ?", (sink,)) if sink is not None else ("", ())
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                n = self.db.execute(
                    f"INSERT INTO journal (seq, sink, sha256, payload, created) "
                    f"SELECT seq, sink, sha256, payload, created FROM dead {where}",
                    args,
                ).rowcount
                self.db.execute(f"DELETE FROM dead {where}", args)
                self.db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        return n

    def known(self, sha256: str) -> Known | None:
        """What was recorded for the image with this sha256, or None."""
        with self._lock:
            row = self.db.execute(
                "SELECT verdict, src, dest, error FROM done WHERE sha256 = ?", (sha256,)
            ).fetchone()
        if row is None:
            return None
        verdict, src, dest, error = row
        return Known(verdict, loaded(src), loaded(dest), loaded(error))

    def verdict_of(self, sha256: str) -> str | None:
        k = self.known(sha256)
        return k.verdict if k else None

    def is_seen(self, path: str, size: int, mtime_ns: int) -> bool:
        with self._lock:
            row = self.db.execute(
                "SELECT size, mtime_ns FROM seen WHERE path = ?", (stored(path),)
            ).fetchone()
        return row is not None and row[0] == size and row[1] == mtime_ns

    def prune(self, older_than_s: float) -> None:
        """Forget ``done`` entries older than this (``seen`` is kept: leave-mode files stay)."""
        with self._lock:
            self.db.execute("DELETE FROM done WHERE at < ?", (time.time() - older_than_s,))
