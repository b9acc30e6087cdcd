"""Folder source: a watched inbox, taken file by file once each is completely written.

A file is taken when its size and modification time have not changed for ``stable_s`` seconds
(``stable_s = 0`` for writers that rename complete files into place); names starting with ``.``
or ending in ``.tmp``, ``.part``, ``.partial``, ``.crdownload``, ``.filepart`` or ``~`` are
never taken (write-then-rename). Sub-folders are ignored.

Only regular files are read: a named pipe, socket or device file (or a symlink to one) is
quarantined as it is, with an ERROR record, without ever being opened (a read could wait
forever).

Memory stays bounded however many files arrive: the folder is read incrementally with
``os.scandir`` and at most ``max_pending`` files are watched for stability at once; the rest are
picked up by later passes. After its result is journaled, :meth:`FolderSource.done` moves the
file to ``archive/<verdict>/<date>/`` (bad input to ``quarantine/``), or, with
``after = "leave"``, leaves it and remembers (path, size, mtime) in the station's state file
(bad input included: in leave mode nothing in the folder is moved). An idle folder whose
modification time has not changed is not re-read (a full pass still runs every 30 s).

A file is filed only if it is still the one that was read (same inode, size and mtime): a writer
that reuses one file name and replaced it meanwhile gets its new file inspected, not filed
under the old one's verdict. A file that cannot be filed (archive not writable, disk full) stays
in the inbox and is tried again after 10 s, then less and less often (up to every 5 min), so a
broken archive does not make the station re-read the whole inbox twice a second.

An inbox removed and made again while the station runs is noticed before the next pass, and
the new folder is locked and taken from (:meth:`inspect_stations.pipeline.locks.InboxLock.follow`).

The same image under two names (same sha256) is recorded once: the second file is filed beside
the first, in ``archive/<verdict>/<date>/`` under its own name, without a record of its own (its
name appears in the log line ``already_recorded``); with ``after = "leave"`` it stays where it is.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from inspect_core.errors import InspectError
from inspect_core.plugin_api.interfaces import BaseSource, FileFacts, SourceItem
from inspect_core.types import Inspection
from inspect_stations.config.station import FolderOptions
from inspect_stations.inputs.regular_files import (
    ignored,
    lexists,
    link_refusal,
    same_content,
    special_kind,
    special_reason,
)
from inspect_stations.pipeline.locks import InboxLock

RETRY_FIRST_S, RETRY_MAX_S = 10.0, 300.0  # a file that could not be filed: when to try again
UNREADABLE_LOG_S = 60.0  # an unreadable inbox is reported at most this often


@dataclass
class _Pass:
    """What one pass over the folder has seen so far (see :meth:`FolderSource._scan`)."""

    now: float  # monotonic
    count_all: bool  # count every file, even once the watch list is full (every 2 s at most)
    names: set[str] | None  # every name seen, to forget removed files; None: not all were seen
    found: int = 0  # files still to do
    deferred: int = 0  # files waiting to be filed again (not counted in found)
    full: bool = False  # watch list full: the rest of the pass only counts
    ready: list[tuple[int, SourceItem]] = field(default_factory=list)  # (mtime_ns, item)


class FolderSource(BaseSource):
    """``items()`` yields :class:`SourceItem` with ``path`` and ``file`` (the stat seen) set and,
    for what is never read (a pipe, a symlink leading out of the folder), ``refuse``."""

    def __init__(self, options: FolderOptions, context):
        self.opt = options
        self.ctx = context
        self.root = Path(options.path)
        self.root_real = os.path.realpath(self.root)
        self.stop: threading.Event = context.stop
        self._pending: dict[str, tuple[int, int, float]] = {}  # name -> size, mtime_ns, since
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()
        self.max_pending_seen = 0  # the largest the watch list grew (tests check the bound)
        self.queue_depth = 0  # files waiting in the inbox at the last full pass
        self._counted_at = -1e9
        self._dir_mtime, self._full_at, self._last_found = -1, -1e9, -1
        # name -> (size, mtime_ns, monotonic time of the next try, delay) for files that could
        # not be filed; bounded by the files in the inbox (an entry goes when its file does)
        self._retry: dict[str, tuple[int, int, float, float]] = {}
        self._unreadable_logged = -1e9
        self.inbox_lock: InboxLock | None = None  # set by the station that locked the inbox

    # -- the source protocol ---------------------------------------------------------------
    def items(self) -> Iterator[SourceItem]:
        if not self.root.is_dir():
            raise InspectError(
                f"watched folder {self.root} does not exist (source.path); "
                "create it or fix the path"
            )
        while not self.stop.is_set():
            found, ready = self._scan()
            for item in ready:
                if self.stop.is_set():
                    self.release(item)
                    continue
                yield item
            if not ready:
                with self._lock:
                    idle = not found and not self._in_flight
                if idle and self.ctx.until_empty:
                    return
                self.stop.wait(
                    self.opt.poll_s
                    if not self._pending
                    else min(self.opt.poll_s, max(0.01, self.opt.stable_s / 2))
                )

    def destination(self, item: SourceItem, inspection: Inspection) -> str | None:
        """Where :meth:`done` will put the file (recorded as the inspection's source)."""
        if self.opt.after == "leave":
            return None
        facts = _facts(item)
        known = facts.known_dest
        if known == item.path:  # recorded while it could not be planned: not a destination
            known = None
        if known and (not lexists(Path(known)) or same_content(Path(item.path), Path(known))):
            # recorded before a crash, not filed yet: where its record says
            facts.dest = known
            return known
        v = inspection.verdict.decision.value
        dest = self.ctx.archive.plan(
            Path(item.path), v, inspection.image_sha256, inspection.inspected_at
        )
        facts.dest = str(dest)
        return str(dest)

    def done(self, item: SourceItem, inspection: Inspection) -> None:
        """File the image (its result is already journaled)."""
        facts = _facts(item)
        try:
            if self.opt.after == "leave":
                if not facts.seen_recorded:
                    self.ctx.journal.mark_seen(
                        item.path, facts.size, facts.mtime_ns, inspection.image_sha256
                    )
                return
            if self._replaced(item.path, facts):
                self.ctx.log.warning(
                    "replaced",
                    f"{item.path} was replaced by a new file while it was inspected: "
                    f"the result recorded is that of the earlier file (sha256 "
                    f"{inspection.image_sha256[:12]}), which is gone; the new one "
                    "is inspected next. Writers should use a new name per image",
                    path=item.path,
                    sha256=inspection.image_sha256,
                )
                return
            planned = facts.dest
            try:
                dest = self.ctx.archive.file(
                    Path(item.path),
                    inspection.verdict.decision.value,
                    inspection.image_sha256,
                    inspection.inspected_at,
                    reason=inspection.error,
                    dest=Path(planned) if planned else None,
                )
            except FileNotFoundError:
                if os.path.lexists(item.path):
                    self._defer(item)
                    raise
                return  # someone removed it meanwhile; the result is recorded anyway
            except Exception:
                self._defer(item)
                raise
            facts.filed_as = str(dest)
            if planned and str(dest) != planned:  # another writer took the name meanwhile
                self.ctx.log.warning(
                    "filed_elsewhere",
                    f"{item.path}: its record names {planned}, but that name was taken when "
                    f"it was filed (another station sharing this archive?), so it is at {dest}; "
                    "give each station an archive folder of its own",
                    planned=planned,
                    filed_as=str(dest),
                )
            with self._lock:
                self._retry.pop(os.path.basename(item.path), None)
        finally:
            self.release(item)

    @staticmethod
    def _replaced(path: str, facts: FileFacts) -> bool:
        """Whether the file at ``path`` is no longer the one that was read."""
        if facts.ino is None:  # never read (refused link, unreadable): nothing to compare
            return False
        try:
            st = os.stat(path)
        except OSError:
            return False  # gone or unreadable: filing it reports that
        return (st.st_ino, st.st_size, st.st_mtime_ns) != (facts.ino, facts.size, facts.mtime_ns)

    def _defer(self, item: SourceItem) -> None:
        """Try filing this file again later, waiting longer after each failure."""
        name = os.path.basename(item.path or "")
        size, mtime = _facts(item).size, _facts(item).mtime_ns
        with self._lock:
            prev = self._retry.get(name)
            delay = RETRY_FIRST_S if prev is None else min(RETRY_MAX_S, prev[3] * 2)
            self._retry[name] = (size, mtime, time.monotonic() + delay, delay)

    def release(self, item: SourceItem) -> None:
        """Forget an item without filing it (it will be looked at again by a later pass)."""
        name = os.path.basename(item.path or "")
        with self._lock:
            self._in_flight.discard(name)
            self._pending.pop(name, None)

    # -- scanning --------------------------------------------------------------------------
    def _unchanged(self, now: float) -> bool:
        """Skip a pass when nothing can have arrived: the folder's mtime has not moved (and is
        over 2 s old, for file systems with coarse timestamps), nothing is waiting to settle,
        and the last pass found nothing to do; a full pass still runs every 30 s. Keeps an idle
        station, or a leave-mode folder of many inspected files, from re-reading the folder."""
        try:
            mtime = os.stat(self.root).st_mtime_ns
        except OSError:
            return False
        same = (
            mtime == self._dir_mtime
            and not self._pending
            and self._last_found == 0
            and time.time_ns() - mtime > 2_000_000_000
            and now - self._full_at < 30
        )
        if not same:
            self._dir_mtime, self._full_at = mtime, now
        return same

    def _scan(self) -> tuple[int, list[SourceItem]]:
        """One pass: returns (files still to do, items ready now, oldest first)."""
        now = time.monotonic()
        if self.inbox_lock is not None and self.inbox_lock.follow(self.ctx.log):
            with self._lock:  # a new folder: forget what was watched in the old one
                self._pending.clear()
                self._retry.clear()
            self._dir_mtime, self._last_found = -1, -1
        if self._unchanged(now):
            return 0, []
        entries = self._open_folder(now)
        if entries is None:
            return 1, []
        p = _Pass(now, now - self._counted_at >= 2.0, set() if self._retry else None)
        with entries:
            for entry in entries:
                if self.stop.is_set():
                    p.names = None
                    break
                if not self._look_at(entry, p):
                    break
        self._end_pass(p)
        return p.found, [i for _, i in p.ready]

    def _open_folder(self, now: float):
        """``os.scandir`` of the folder, or None (logged, at most every UNREADABLE_LOG_S)."""
        try:
            entries = os.scandir(self.root)
        except OSError as e:
            if now - self._unreadable_logged >= UNREADABLE_LOG_S:
                self._unreadable_logged = now
                self.ctx.log.error(
                    "folder_unreadable",
                    f"cannot read watched folder {self.root}: {e.strerror or e}; "
                    "check that it exists and is mounted (network share?); "
                    f"retrying (reported again every {UNREADABLE_LOG_S:g} s "
                    "while it lasts)",
                    error=str(e),
                )
            return None
        if self._unreadable_logged > -1e9:
            self._unreadable_logged = -1e9
            self.ctx.log.info("folder_readable", f"watched folder {self.root} is readable again")
        return entries

    def _look_at(self, entry: os.DirEntry, p: _Pass) -> bool:
        """Count ``entry`` and take it when it is ready; False ends the pass early."""
        name = entry.name
        if p.names is not None:
            p.names.add(name)
        if ignored(name):
            return True
        try:
            if entry.is_dir(follow_symlinks=False):
                return True
            if p.full:  # the rest of the pass only counts, and only every 2 s
                if not p.count_all:
                    p.names = None
                    return False
                p.found += 1
                return True
            link = entry.is_symlink()
            st = entry.stat(follow_symlinks=False) if link else entry.stat()
        except OSError:
            return True  # vanished between listing and stat
        if self._waiting(name, st, p):
            return True
        if self.opt.after == "leave" and self.ctx.journal.is_seen(
            entry.path, st.st_size, st.st_mtime_ns
        ):
            return True
        p.found += 1
        item = self._item(entry.path, st, link)
        facts = _facts(item)
        if self._stable(name, facts.size, facts.mtime_ns, p.now) or item.refuse:
            p.ready.append((facts.mtime_ns, item))
            p.full = len(p.ready) >= self.opt.max_pending
        elif len(self._pending) >= self.opt.max_pending:
            p.full = True  # enough watched; the rest wait for a later pass
        return True

    def _waiting(self, name: str, st: os.stat_result, p: _Pass) -> bool:
        """In flight, or could not be filed a moment ago and not due again yet."""
        with self._lock:
            if name in self._in_flight:
                return True
            retry = self._retry.get(name)
        if retry is None:
            return False
        if (retry[0], retry[1]) != (st.st_size, st.st_mtime_ns):
            with self._lock:  # another file under that name: take it as usual
                self._retry.pop(name, None)
            return False
        if p.now < retry[2]:
            p.deferred += 1
            return True
        return False

    def _end_pass(self, p: _Pass) -> None:
        """Forget retries of removed files, update the queue depth, mark the ready ones in
        flight (oldest first)."""
        if p.names is not None:
            with self._lock:
                for gone in set(self._retry) - p.names:
                    del self._retry[gone]
        if not p.full or p.count_all:
            self.queue_depth = p.found + p.deferred
            self._counted_at = p.now if p.full else self._counted_at
        self._last_found = p.found
        p.ready.sort(key=lambda t: t[0])  # oldest first within a pass
        with self._lock:
            for _, item in p.ready:
                name = os.path.basename(item.path)
                self._in_flight.add(name)
                self._pending.pop(name, None)

    def _item(self, path: str, st: os.stat_result, link: bool) -> SourceItem:
        """The item of a file: the stat seen (a link's target's), and ``refuse`` for what is
        never read: a pipe, socket or device, a symlink leading out of the folder."""
        facts, refuse = FileFacts(st.st_size, st.st_mtime_ns), None
        kind = None if link else special_kind(st.st_mode)
        if kind:  # quarantined as it is, never opened
            refuse = special_reason(kind)
        elif link:
            refuse = link_refusal(path, self.root_real)
            if not refuse:
                try:
                    tst = os.stat(path)
                    facts = FileFacts(tst.st_size, tst.st_mtime_ns)
                except OSError:
                    pass
        return SourceItem(
            source=path, path=path, captured_at=st.st_mtime, refuse=refuse, file=facts
        )

    def _stable(self, name: str, size: int, mtime_ns: int, now: float) -> bool:
        if self.opt.stable_s <= 0:
            return True
        prev = self._pending.get(name)
        if prev is None or prev[0] != size or prev[1] != mtime_ns:
            if prev is not None or len(self._pending) < self.opt.max_pending:
                self._pending[name] = (size, mtime_ns, now)
                self.max_pending_seen = max(self.max_pending_seen, len(self._pending))
            return False
        return now - prev[2] >= self.opt.stable_s


def _facts(item: SourceItem) -> FileFacts:
    """The item's file facts (an item this source made always has them)."""
    if item.file is None:
        item.file = FileFacts(-1, -1)
    return item.file
