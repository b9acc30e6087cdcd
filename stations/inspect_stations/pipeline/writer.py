"""The writer thread: journal rows to their sinks, in order, through any outage.

Each sink (the SQL database, MQTT, one a plugin registers) sits in a :class:`SinkSlot`; the
:class:`Writer` drains the journal (:mod:`inspect_stations.pipeline.journal`) into them oldest
first,
retries a sink that fails, and says so in the station log until it is back.

A sink that keeps failing is also made again (closed, then created anew at the next try): a
handle opened during the outage may stay broken after the cause is gone (a SQLite file that was
read-only when it was opened gives a connection that stays read-only). It is made again at the
first failure, then less and less often (doubling from ``retry_s`` up to ``REOPEN_MAX_S``), so
the results flow within seconds of the fix, without a restart.

A sink that refuses one result for its content raises an exception whose ``dead_letter``
attribute is true (the ``sql`` sink's ``RecordRefused``); that result, or a journal row that
cannot be read, is set aside as a dead letter (logged as ``dead_letter``) and the results
behind it go on: waiting would never fix it, and it must not hold up the line's records.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

from inspect_core.types import Inspection
from inspect_stations.logs import StationLog
from inspect_stations.pipeline.journal import Journal, decode

TRANSIENT_NAMES = {"DatabaseUnavailable", "OperationalError", "InterfaceError", "TimeoutError"}
# errors that do not go away by waiting: someone has to act (the message says what)
ACTION_NAMES = {"SchemaOutdated"}
REMIND_S = 300.0  # while a sink stays down, say so again this often
REOPEN_MAX_S = 10.0  # a sink that keeps failing is made again at least this often


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
    reopen_at: float = 0.0  # monotonic time after which a failure makes the sink again
    reopen_wait: float = 0.0  # the current wait between two re-creations (doubles)

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

    def __init__(
        self,
        journal: Journal,
        slots: list[SinkSlot],
        log: StationLog,
        retry_s: float = 2.0,
        batch: int = 64,
        remind_s: float = REMIND_S,
        reopen_max_s: float = REOPEN_MAX_S,
    ):
        super().__init__(name="journal-writer", daemon=True)
        self.journal, self.slots, self.log = journal, slots, log
        self.retry_s, self.batch, self.remind_s = retry_s, batch, remind_s
        self.reopen_max_s = reopen_max_s
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
                    self.log.info(
                        "journal_ok",
                        f"the local journal {self.journal.path} is usable "
                        "again; writing the results it holds",
                    )
                    self.error = None
            except Exception as e:  # the journal itself failed (locked, I/O error, disk full)
                failed = True
                self._journal_failed(e)
            if self._finishing.is_set():
                if time.monotonic() >= self._deadline or failed or not progressed and self._stuck():
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
            self.log.error(
                "journal_error",
                f"cannot read or update the local journal {self.journal.path} "
                f"({reason}); results already in it are safe and are written to the "
                f"database once it works again (retrying every {self.retry_s:g} s). "
                "Check free disk space in station.state_dir, and that nothing else "
                "holds the file open",
                error=reason,
            )
            self._error_logged = now
        self.error = reason

    def _stuck(self) -> bool:
        """Nothing more to write now: every sink with rows waiting is down."""
        waiting = self.journal.pending_by_sink()
        return all(not s.up for s in self.slots if waiting.get(s.name))

    def _drain(self, slot: SinkSlot) -> bool:
        """Write one batch for ``slot``; True when something was written (or set aside)."""
        if not slot.up and time.monotonic() < slot.next_try:
            return False
        rows = self.journal.oldest(slot.name, self.batch)
        if not rows:
            return False
        done, error, aside = self._write_rows(slot, rows)
        self.journal.remove(done)
        slot.written += len(done)
        if error is not None:
            self._sink_failed(slot, error)
            self._reopen(slot, error)
            return bool(done or aside)
        if not slot.up:
            down = time.time() - (slot.down_since or time.time())
            self.log.info(
                "sink_back",
                f"{slot.name} is back after {down:.0f} s; writing the journaled results in order",
                sink=slot.name,
            )
            slot.up, slot.down_since, slot.last_error = True, None, None
            slot.needs_action, slot.reported_kind = False, None
            slot.reopen_at, slot.reopen_wait = 0.0, 0.0
        return True

    def _reopen(self, slot: SinkSlot, error: Exception) -> None:
        """Close a failed sink so the next try makes a fresh one (a new connection pool): at
        once for an error waiting will not fix, else when the backoff has run out (see the
        module docstring)."""
        now = time.monotonic()
        if slot.sink is None or _transient(error) and now < slot.reopen_at:
            return
        slot.reopen_wait = min(
            max(self.reopen_max_s, self.retry_s), max(self.retry_s, slot.reopen_wait * 2)
        )
        slot.reopen_at = now + slot.reopen_wait
        try:
            slot.close()
        except Exception:
            slot.sink = None

    def _write_rows(
        self, slot: SinkSlot, rows: list[tuple[int, str]]
    ) -> tuple[list[int], Exception | None, int]:
        """Write ``rows`` in order until the sink fails: (sequence numbers written, the failure
        or None, how many were set aside as dead letters on the way)."""
        done: list[int] = []
        aside = 0
        for seq, payload in rows:
            try:
                insp = decode(payload)
            except Exception as e:  # corrupt, or written by a newer inspect
                self._set_aside(
                    slot, seq, f"the journal row cannot be read ({type(e).__name__}: {e})"
                )
                aside += 1
                continue
            try:
                slot.write(insp)
            except Exception as e:
                if not getattr(e, "dead_letter", False):
                    return done, e, aside
                self._set_aside(slot, seq, " ".join(f"{type(e).__name__}: {e}".split())[:800], insp)
                aside += 1
                continue
            done.append(seq)
        return done, None, aside

    def _set_aside(
        self, slot: SinkSlot, seq: int, reason: str, insp: Inspection | None = None
    ) -> None:
        """Make journal row ``seq`` a dead letter and say so (an error: someone must act)."""
        self.journal.set_aside(seq, reason)
        count = self.journal.dead_letters(limit=0).count
        what = (
            (f"the result of {insp.source}" + (f" (part {insp.part_id})" if insp.part_id else ""))
            if insp
            else f"journal row {seq}"
        )
        self.log.error(
            "dead_letter",
            f"{slot.name} refused {what}: {reason}. It is set aside in "
            f"{self.journal.path} ({count} dead letter(s) now) and the results "
            "behind it are written. Fix the cause, then run `inspect station replay "
            "CONFIG` to write it; `inspect station status` lists the reasons",
            sink=slot.name,
            seq=seq,
            reason=reason,
            dead_letters=count,
            sha256=getattr(insp, "image_sha256", None),
            part_id=getattr(insp, "part_id", None),
        )

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
        kept = f"{waiting} result(s) are kept" if waiting is not None else "results are kept"
        kept += f" in the local journal {self.journal.path}"
        down = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(slot.down_since))
        since = "" if first else f" (down since {down})"
        fields: dict[str, Any] = dict(sink=slot.name, error=reason, journal_pending=waiting)
        if kind in ACTION_NAMES:
            self.log.error(
                "db_schema_outdated",
                f"{slot.name}: the database schema does not match this station's "
                f"inspect{since}: {e}. Nothing is lost: {kept} and written, in order, "
                f"as soon as the schema is right (run `inspect db upgrade` against this "
                f"database; the station retries every {self.retry_s:g} s and keeps "
                "inspecting meanwhile)",
                **fields,
            )
        elif slot.needs_action:
            self.log.error(
                "sink_failed",
                f"{slot.name} refuses results{since} ({reason}); nothing is lost: "
                f"{kept} and written, in order, once this is fixed (retrying every "
                f"{self.retry_s:g} s; the station keeps inspecting meanwhile)",
                **fields,
            )
        else:
            self.log.warning(
                "sink_unavailable",
                f"{slot.name} unavailable{since} ({reason}); {kept} and written when it is back",
                **fields,
            )


def _transient(e: BaseException) -> bool:
    return type(e).__name__ in TRANSIENT_NAMES or isinstance(e, (ConnectionError, TimeoutError))
