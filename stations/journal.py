"""The station's local state: a write-ahead journal of results, and what it has already done.

One SQLite file (``<state_dir>/journal.sqlite``, WAL, ``synchronous=FULL`` so every commit is
fsync'd) holds three tables:

``journal``
    results not yet written to a sink, one row per (result, sink), in order. Every result is
    committed here *before* its image is moved out of the inbox, so a crash at any moment loses
    nothing; the :class:`Writer` thread writes rows to their sink in order and deletes them.
    When the database is unreachable rows simply wait; they are written, oldest first, once it
    is back. Sinks are idempotent on (station, image sha256), so a row replayed after a crash
    between "written" and "deleted" is not duplicated.
``done``
    the sha256 and verdict of every image this station has recorded, with the inbox path it came
    from, where it was to be filed and the error reason: an image still in the inbox after a crash
    is filed where its record says, without being inspected again; a *different* file with the
    same content (same sha256) is filed beside the first one and not recorded again.
``seen``
    for ``after = "leave"`` folders: (path, size, mtime) already inspected.
"""
from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable

from inspect_core.types import Decision, Inspection, Region, RuleHit, Verdict

from .logs import StationLog

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


def encode(insp: Inspection) -> str:
    """JSON of every field (faster than dataclasses.asdict, which deep-copies everything)."""
    d = dict(insp.__dict__)
    v = insp.verdict
    d["verdict"] = {
        "decision": v.decision.value,
        "hits": [{"rule": h.rule, "decision": h.decision.value, "message": h.message,
                  "regions": h.regions} for h in v.hits],
        "regions": [r.__dict__ for r in v.regions],
        "coverage": v.coverage}
    return json.dumps(d, default=str, separators=(",", ":"))


def decode(payload: str) -> Inspection:
    d = json.loads(payload)
    v = d.pop("verdict")
    verdict = Verdict(
        Decision(v["decision"]),
        [RuleHit(h["rule"], Decision(h["decision"]), h["message"], list(h["regions"]))
         for h in v["hits"]],
        [Region(r["class_id"], r["class_name"], tuple(r["bbox"]), r["area_px"],
                tuple(r["centroid"]), r["max_prob"], r["mean_prob"],
                [tuple(p) for p in r.get("polygon", [])], r.get("area_mm2"))
         for r in v["regions"]],
        dict(v.get("coverage", {})))
    known = {f.name for f in dataclasses.fields(Inspection)}
    return Inspection(verdict=verdict, **{k: val for k, val in d.items() if k in known})


class Journal:
    """Thread-safe access to the state file (one connection, one lock)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(self.path), isolation_level=None,
                                      check_same_thread=False, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(SCHEMA)
            have = {r[1] for r in self.db.execute("PRAGMA table_info(done)")}
            for col, typ in DONE_COLUMNS.items():
                if col not in have:
                    self.db.execute(f"ALTER TABLE done ADD COLUMN {col} {typ}")
        except (OSError, sqlite3.Error) as e:
            from inspect_core.errors import InspectError

            raise InspectError(
                f"cannot open the station's journal {self.path} ({type(e).__name__}: {e}); "
                "check that station.state_dir is on a local disk with free space and writable by "
                "the station's user. Do not delete the file: it may hold results not yet in the "
                "database") from e

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

    def commit(self, results: list[tuple]) -> None:
        """Durably record results: each (inspection, sinks to write it to, seen-file info or
        None[, inbox path it came from]) becomes journal rows plus its ``done`` / ``seen`` rows,
        all in one fsync'd transaction. The inspection's ``source`` is where the image is filed."""
        now = time.time()
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for insp, sinks, seen, *origin in results:
                    payload = encode(insp)
                    self.db.executemany(
                        "INSERT INTO journal (sink, sha256, payload, created) VALUES (?, ?, ?, ?)",
                        [(s, insp.image_sha256, payload, now) for s in sinks])
                    self.db.execute(
                        "INSERT OR REPLACE INTO done (sha256, verdict, at, src, dest, error) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (insp.image_sha256, insp.verdict.decision.value, now,
                         origin[0] if origin else None, insp.source, insp.error))
                    if seen:
                        self.db.execute("INSERT OR REPLACE INTO seen VALUES (?, ?, ?, ?, ?)",
                                        (seen["path"], seen["size"], seen["mtime_ns"],
                                         insp.image_sha256, now))
                self.db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise

    def mark_seen(self, path: str, size: int, mtime_ns: int, sha256: str) -> None:
        with self._lock:
            self.db.execute("INSERT OR REPLACE INTO seen VALUES (?, ?, ?, ?, ?)",
                            (path, size, mtime_ns, sha256, time.time()))

    def pending(self, sink: str | None = None) -> int:
        with self._lock:
            if sink is None:
                return self.db.execute("SELECT count(*) FROM journal").fetchone()[0]
            return self.db.execute("SELECT count(*) FROM journal WHERE sink = ?",
                                   (sink,)).fetchone()[0]

    def pending_by_sink(self) -> dict[str, int]:
        with self._lock:
            return dict(self.db.execute("SELECT sink, count(*) FROM journal GROUP BY sink"))

    def oldest(self, sink: str, limit: int = 64) -> list[tuple[int, str]]:
        with self._lock:
            return self.db.execute("SELECT seq, payload FROM journal WHERE sink = ? "
                                   "ORDER BY seq LIMIT ?", (sink, limit)).fetchall()

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

    def known(self, sha256: str) -> Known | None:
        """What was recorded for the image with this sha256, or None."""
        with self._lock:
            row = self.db.execute("SELECT verdict, src, dest, error FROM done WHERE sha256 = ?",
                                  (sha256,)).fetchone()
        return Known(*row) if row else None

    def verdict_of(self, sha256: str) -> str | None:
        k = self.known(sha256)
        return k.verdict if k else None

    def is_seen(self, path: str, size: int, mtime_ns: int) -> bool:
        with self._lock:
            row = self.db.execute("SELECT size, mtime_ns FROM seen WHERE path = ?",
                                  (path,)).fetchone()
        return row is not None and row[0] == size and row[1] == mtime_ns

    def prune(self, older_than_s: float) -> None:
        """Forget ``done`` entries older than this (``seen`` is kept: leave-mode files stay)."""
        with self._lock:
            self.db.execute("DELETE FROM done WHERE at < ?", (time.time() - older_than_s,))


# ---------------------------------------------------------------------------------------------
TRANSIENT_NAMES = {"DatabaseUnavailable", "OperationalError", "InterfaceError", "TimeoutError"}
# errors that do not go away by waiting: someone has to act (the message says what)
ACTION_NAMES = {"SchemaOutdated"}
REMIND_S = 300.0  # while a sink stays down, say so again this often


@dataclasses.dataclass
class SinkSlot:
    """One journaled sink: created lazily (and again after a failed creation)."""

    name: str  # the journal key, e.g. "sql" or "sinks[0]:mqtt"
    factory: Callable[[], Any]
    sink: Any = None
    up: bool = True
    down_since: float | None = None
    last_error: str | None = None
    next_try: float = 0.0
    written: int = 0
    needs_action: bool = False  # down for a reason waiting will not fix (e.g. an old schema)
    reported: float = 0.0  # monotonic time the outage was last logged
    reported_kind: str | None = None  # the error type last logged

    def write(self, insp: Inspection) -> None:
        if self.sink is None:
            self.sink = self.factory()
        self.sink.write(insp)

    def close(self) -> None:
        if self.sink is not None:
            try:
                self.sink.close()
            finally:
                self.sink = None


class Writer(threading.Thread):
    """Writes journal rows to their sinks in order; retries every ``retry_s`` while a sink fails.

    It never stops by itself: a failing sink is retried (and reported again every ``remind_s``),
    and an error reading or updating the journal itself is logged and retried as well, so the
    database catches up as soon as the problem is gone.
    """

    def __init__(self, journal: Journal, slots: list[SinkSlot], log: StationLog,
                 retry_s: float = 2.0, batch: int = 64, remind_s: float = REMIND_S):
        super().__init__(name="journal-writer", daemon=True)
        self.journal, self.slots, self.log = journal, slots, log
        self.retry_s, self.batch, self.remind_s = retry_s, batch, remind_s
        self.wake = threading.Event()
        self._finishing = threading.Event()
        self._deadline = float("inf")
        self.error: str | None = None  # the journal error in the way now, if any
        self._error_logged = 0.0

    def finish(self, timeout_s: float) -> None:
        """Write what can be written within ``timeout_s``, then stop; the rest stays journaled."""
        self._deadline = time.monotonic() + timeout_s
        self._finishing.set()
        self.wake.set()

    def run(self) -> None:
        while True:
            progressed = failed = False
            try:
                for slot in self.slots:
                    progressed |= self._drain(slot)
                if self.error is not None:
                    self.log.info("journal_ok", f"the local journal {self.journal.path} is usable "
                                                "again; writing the results it holds")
                    self.error = None
            except Exception as e:  # the journal itself failed (locked, I/O error, disk full)
                failed = True
                self._journal_failed(e)
            if self._finishing.is_set():
                if time.monotonic() >= self._deadline or failed or \
                        not progressed and self._stuck():
                    break
                if not progressed:
                    self.wake.wait(min(0.2, max(0.0, self._deadline - time.monotonic())))
                    self.wake.clear()
                continue
            if failed:
                self.wake.wait(self.retry_s)
                self.wake.clear()
            elif not progressed:
                waits = [s.next_try - time.monotonic() for s in self.slots if not s.up]
                self.wake.wait(max(0.01, min([self.retry_s, *waits])))
                self.wake.clear()
        for slot in self.slots:
            try:
                slot.close()
            except Exception as e:  # closing must not hide the rest of the shutdown
                self.log.warning("sink_close", f"closing sink {slot.name} failed: {e}")

    def _journal_failed(self, e: Exception) -> None:
        reason = f"{type(e).__name__}: {e}"
        now = time.monotonic()
        if reason != self.error or now - self._error_logged >= self.remind_s:
            self.log.error("journal_error",
                           f"cannot read or update the local journal {self.journal.path} "
                           f"({reason}); results already in it are safe and are written to the "
                           f"database once it works again (retrying every {self.retry_s:g} s). "
                           "Check free disk space in station.state_dir, and that nothing else "
                           "holds the file open", error=reason)
            self._error_logged = now
        self.error = reason

    def _stuck(self) -> bool:
        """Nothing more to write now: every sink with rows waiting is down."""
        waiting = self.journal.pending_by_sink()
        return all(not s.up for s in self.slots if waiting.get(s.name))

    def _drain(self, slot: SinkSlot) -> bool:
        """Write one batch for ``slot``; True when something was written."""
        if not slot.up and time.monotonic() < slot.next_try:
            return False
        rows = self.journal.oldest(slot.name, self.batch)
        if not rows:
            return False
        done: list[int] = []
        try:
            for seq, payload in rows:
                slot.write(decode(payload))
                done.append(seq)
        except Exception as e:
            self.journal.remove(done)
            slot.written += len(done)
            self._sink_failed(slot, e)
            if slot.sink is not None and not _transient(e):
                try:  # a fresh sink on the next attempt (new connection pool)
                    slot.close()
                except Exception:
                    slot.sink = None
            return bool(done)
        self.journal.remove(done)
        slot.written += len(done)
        if not slot.up:
            down = time.time() - (slot.down_since or time.time())
            self.log.info("sink_back", f"{slot.name} is back after {down:.0f} s; writing the "
                                       f"journaled results in order", sink=slot.name)
            slot.up, slot.down_since, slot.last_error = True, None, None
            slot.needs_action, slot.reported_kind = False, None
        return True

    def _sink_failed(self, slot: SinkSlot, e: Exception) -> None:
        """Mark ``slot`` down and tell the operator: at once when the outage starts or its cause
        changes, then every ``remind_s`` while it lasts (never silently for hours)."""
        kind = type(e).__name__
        reason = " ".join(f"{kind}: {e}".split())[:600]
        now = time.monotonic()
        if slot.up:
            slot.up, slot.down_since = False, time.time()
        slot.last_error = reason
        slot.next_try = now + self.retry_s
        slot.needs_action = not _transient(e)
        if slot.reported_kind == kind and now - slot.reported < self.remind_s:
            return
        first = slot.reported_kind is None
        slot.reported, slot.reported_kind = now, kind
        try:
            waiting = self.journal.pending(slot.name)
        except Exception:
            waiting = None
        kept = (f"{waiting} result(s) are kept" if waiting is not None else "results are kept")
        kept += f" in the local journal {self.journal.path}"
        since = "" if first else \
            f" (down since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(slot.down_since))})"
        fields = dict(sink=slot.name, error=reason, journal_pending=waiting)
        if kind in ACTION_NAMES:
            self.log.error("db_schema_outdated",
                           f"{slot.name}: the database schema does not match this station's "
                           f"inspect{since}: {e}. Nothing is lost: {kept} and written, in order, "
                           f"as soon as the schema is right (run `inspect db upgrade` against this "
                           f"database; the station retries every {self.retry_s:g} s and keeps "
                           "inspecting meanwhile)", **fields)
        elif slot.needs_action:
            self.log.error("sink_failed",
                           f"{slot.name} refuses results{since} ({reason}); nothing is lost: "
                           f"{kept} and written, in order, once this is fixed (retrying every "
                           f"{self.retry_s:g} s; the station keeps inspecting meanwhile)", **fields)
        else:
            self.log.warning("sink_unavailable",
                             f"{slot.name} unavailable{since} ({reason}); {kept} and written "
                             "when it is back", **fields)


def _transient(e: BaseException) -> bool:
    return type(e).__name__ in TRANSIENT_NAMES or isinstance(e, (ConnectionError, TimeoutError))
