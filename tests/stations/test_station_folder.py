"""Folder source: complete files only, archive or leave-and-remember, bounded memory for
10,000 files at once, crash leftovers filed without a second inspection, moves across file
systems."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest

from inspect_core.plugin_api.interfaces import SourceItem
from inspect_stations.config import parse_config
from inspect_stations.daemon import Station
from inspect_stations.journal import JournalEntry
from inspect_stations.logs import setup_logging
from inspect_stations.testing import FakeInspector, MemorySink, wait_for, write_images
from inspect_stations.work import Work, build_inspection


def _cfg(tmp: Path, until_empty: bool = True, **source):
    (tmp / "inbox").mkdir(exist_ok=True)
    return parse_config(
        {
            "station": {"name": "folder", "plugin": "x", "recipe": "x", "until_empty": until_empty},
            "source": {
                "type": "folder",
                "path": "inbox",
                "stable_s": 0.0,
                "poll_s": 0.02,
                **source,
            },
        },
        tmp,
    )


class CountingInspector(FakeInspector):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def judge(self, frame, seg):
        self.calls += 1
        return super().judge(frame, seg)


class CountSink:
    """Counts, keeping nothing per image (so memory measures the station, not the sink)."""

    def __init__(self):
        self.n = 0

    def write(self, insp):
        self.n += 1

    def close(self):
        pass


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


@pytest.fixture
def fast_tmp(tmp_path):
    """A folder in RAM where there is one (10,000 file creations are slow on some disks)."""
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        d = Path(tempfile.mkdtemp(prefix="inspect-station-", dir="/dev/shm"))
        yield d
        shutil.rmtree(d, ignore_errors=True)
    else:
        yield tmp_path


def test_10000_files_at_once_with_bounded_memory(fast_tmp):
    tmp_path = fast_tmp
    n = 10_000
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    img = np.zeros((8, 8), np.uint8)
    for i in range(n):  # distinct tiny PNGs
        img[0, 0], img[0, 1] = i % 251, i // 251
        (inbox / f"f{i:05d}.png").write_bytes(cv2.imencode(".png", img)[1].tobytes())
    setup_logging(False, logging.WARNING)
    try:
        cfg = _cfg(tmp_path, stable_s=0.05, max_pending=128)
        sink = CountSink()
        station = Station(cfg, inspector=FakeInspector(), sinks={"count": sink})
        tracemalloc.start()
        try:
            assert station.run(install_signals=False) == 0
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    finally:
        setup_logging(False, logging.INFO)
    assert sink.n == n
    assert not any(os.scandir(inbox))
    assert sum(1 for _ in (tmp_path / "archive" / "PASS").rglob("*.png")) == n
    assert station.source.max_pending_seen <= 128  # files watched at once
    # 10,000 items held at once would be well above this (a SourceItem with its stat alone is
    # ~1 kB); the pipeline's own footprint stays near 2 MB whatever the folder holds
    # (tracemalloc also sees threads other tests left running: a coarse guard, the structural
    # one is max_pending_seen above)
    assert peak < 10_000_000, f"peak traced memory {peak / 1e6:.1f} MB"


def test_a_file_is_taken_only_once_completely_written(tmp_path):
    cfg = _cfg(tmp_path, until_empty=False, stable_s=0.6)
    sink = MemorySink()
    station = Station(cfg, inspector=FakeInspector(), sinks={"db": sink})
    t = threading.Thread(target=station.run, kwargs={"install_signals": False})
    t.start()
    try:
        data = cv2.imencode(".png", np.full((64, 64), 9, np.uint8))[1].tobytes()
        slow = tmp_path / "inbox" / "slow.png"
        with open(slow, "wb") as f:  # a slow writer: a chunk every 0.1 s
            for k in range(0, len(data), max(1, len(data) // 8)):
                f.write(data[k : k + max(1, len(data) // 8)])
                f.flush()
                time.sleep(0.1)
                assert slow.exists() and not sink.items, "taken while still being written"
        # write-then-rename: a .tmp name is never taken, the final name is
        tmp_name = tmp_path / "inbox" / "renamed.png.tmp"
        tmp_name.write_bytes(cv2.imencode(".png", np.full((8, 8), 3, np.uint8))[1].tobytes())
        wait_for(lambda: len(sink.items) == 1, timeout=30, what="slow.png")
        assert tmp_name.exists()
        os.rename(tmp_name, tmp_path / "inbox" / "renamed.png")
        wait_for(lambda: len(sink.items) == 2, timeout=30, what="renamed.png")
    finally:
        station.stop()
        t.join(30)
    assert [i.verdict.decision.value for i in sink.items] == ["PASS", "PASS"]


def test_leave_mode_remembers_what_it_has_inspected(tmp_path):
    write_images(tmp_path / "inbox", 5, seed=21)
    sink, insp = MemorySink(), CountingInspector()
    assert (
        Station(_cfg(tmp_path, after="leave"), inspector=insp, sinks={"db": sink}).run(
            install_signals=False
        )
        == 0
    )
    assert insp.calls == 5 and len(sink.items) == 5
    assert len(list((tmp_path / "inbox").iterdir())) == 5 and not _files(tmp_path / "archive")
    # a restart does not inspect them again; a changed file is inspected again
    time.sleep(0.01)
    write_images(tmp_path / "inbox", 1, seed=22, start=2)  # overwrites img00002.png
    insp2 = CountingInspector()
    assert (
        Station(_cfg(tmp_path, after="leave"), inspector=insp2, sinks={"db": sink}).run(
            install_signals=False
        )
        == 0
    )
    assert insp2.calls == 1 and len(sink.items) == 6


def test_an_image_recorded_before_a_crash_is_filed_without_a_second_inspection(tmp_path):
    paths = write_images(tmp_path / "inbox", 3, seed=31)
    sink, insp = MemorySink(), CountingInspector()
    station = Station(_cfg(tmp_path), inspector=insp, sinks={"db": sink})
    # as if the previous run committed img00001's result, then died before moving the file
    w = Work(SourceItem(source=str(paths[1]), path=str(paths[1])))
    w.sha256 = hashlib.sha256(paths[1].read_bytes()).hexdigest()
    insp.fail_above = 100
    w.result = insp.inspect_image(np.full((4, 4), 255, np.uint8))  # FAIL (bright)
    station.journal.commit([JournalEntry(build_inspection(insp, w, "folder", "x"), ["db"])])
    insp.calls, insp.fail_above = 0, 256.0
    assert station.run(install_signals=False) == 0
    assert insp.calls == 2  # the other two only
    assert [Path(i.source).name for i in sink.items].count("img00001.png") == 1
    fail = _files(tmp_path / "archive" / "FAIL")
    assert [p.name for p in fail] == ["img00001.png"]


def test_moves_across_file_systems(tmp_path, monkeypatch):
    import inspect_stations.archive as archive

    real_rename, real_link = os.rename, os.link
    crossed = []

    def rename(src, dst):
        if "inbox" in str(src):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_rename(src, dst)

    def link(src, dst, **kw):
        if "inbox" in str(src):
            crossed.append(src)
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_link(src, dst, **kw)

    monkeypatch.setattr(archive.os, "rename", rename)
    monkeypatch.setattr(archive.os, "link", link)
    paths = write_images(tmp_path / "inbox", 3, seed=41)
    data = {p.name: p.read_bytes() for p in paths}
    sink = MemorySink()
    assert (
        Station(_cfg(tmp_path), inspector=FakeInspector(), sinks={"db": sink}).run(
            install_signals=False
        )
        == 0
    )
    assert len(crossed) == 3  # the copy path was taken
    archived = _files(tmp_path / "archive")
    assert {p.name: p.read_bytes() for p in archived} == data  # no temporary files left
    assert not list((tmp_path / "inbox").iterdir())
    assert {i.source for i in sink.items} == {str(p) for p in archived}


def test_same_name_twice_keeps_both_images(tmp_path):
    write_images(tmp_path / "inbox", 1, seed=51)
    sink = MemorySink()
    assert (
        Station(_cfg(tmp_path), inspector=FakeInspector(), sinks={"db": sink}).run(
            install_signals=False
        )
        == 0
    )
    write_images(tmp_path / "inbox", 1, seed=52)  # another image, same file name
    assert (
        Station(_cfg(tmp_path), inspector=FakeInspector(), sinks={"db": sink}).run(
            install_signals=False
        )
        == 0
    )
    names = {p.name for p in _files(tmp_path / "archive")}
    assert len(names) == 2 and "img00000.png" in names
    assert [n for n in names if n.startswith("img00000-") and n.endswith(".png")]
    assert {Path(i.source).name for i in sink.items} == names


# -- review fixes ----------------------------------------------------------------------------
def test_a_crash_leftover_is_filed_where_its_record_says_even_after_midnight(tmp_path):
    """Recorded (journaled) before a crash, not moved; restarted the next day: the file goes
    where the record points (yesterday's folder), not into today's, where nobody would look."""
    paths = write_images(tmp_path / "inbox", 2, seed=61)
    sink, insp = MemorySink(), CountingInspector()
    station = Station(_cfg(tmp_path), inspector=insp, sinks={"db": sink})
    src = paths[0]
    w = Work(SourceItem(source=str(src), path=str(src)))
    w.sha256 = hashlib.sha256(src.read_bytes()).hexdigest()
    w.result = insp.inspect_image(np.zeros((4, 4), np.uint8))  # PASS
    record = build_inspection(insp, w, "folder", "x")
    yesterday = tmp_path / "archive" / "PASS" / "2001-02-03" / src.name
    record.source = str(yesterday)  # what the previous run planned and recorded
    station.journal.commit([JournalEntry(record, ["db"], src=str(src))])
    insp.calls = 0
    assert station.run(install_signals=False) == 0
    assert insp.calls == 1  # only the other image
    assert yesterday.is_file() and not src.exists()
    assert [p.name for p in _files(tmp_path / "archive") if p.name == src.name] == [src.name]
    assert [i.source for i in sink.items].count(str(yesterday)) == 1


def test_the_same_image_twice_at_once_is_recorded_once(tmp_path):
    """Two names, one content, recorded in the same group: one journal row (the sha256 is the
    key), and both files kept: the second is filed beside the first under its own name."""
    from inspect_stations.work import read_file, run_model

    inbox = tmp_path / "inbox"
    (p,) = write_images(inbox, 1, seed=62)
    (inbox / "copy.png").write_bytes(p.read_bytes())
    station = Station(_cfg(tmp_path), inspector=FakeInspector(), sinks={"db": MemorySink()})
    found, items = station.source._scan()
    assert found == 2
    works = [read_file(i, station.cfg.limits, None, station.journal) for i in items]
    run_model(station.inspector, works)
    station.pipeline.record(works)  # one group, as the recorder thread forms them
    assert station.journal.pending() == 1
    names = sorted(f.name for f in _files(tmp_path / "archive" / "PASS"))
    assert names == ["copy.png", p.name] and not list(inbox.iterdir())
    station.journal.close()


def test_an_archived_file_is_never_replaced(tmp_path, monkeypatch):
    """Two stations filing into one archive: the second file with the same name must not
    replace the first (os.rename would, silently), even if it appears after every check."""
    import inspect_stations.archive as archive

    a = archive.Archive(tmp_path / "archive", tmp_path / "quarantine")
    src = tmp_path / "in" / "part.png"
    src.parent.mkdir()
    src.write_bytes(b"mine")
    dest = a.plan(src, "PASS", "ab" * 32, 0)
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"another station's image")
    with monkeypatch.context() as m:  # it appears right after the station looked
        m.setattr(archive, "lexists", lambda p: False)
        got = a.move(src, dest, "ab" * 32)
    assert dest.read_bytes() == b"another station's image"
    assert got != dest and got.read_bytes() == b"mine" and not src.exists()
    # the same content under the same name again: stored once
    src.write_bytes(b"mine")
    assert a.move(src, dest, "ab" * 32) == got and not src.exists()


def test_a_failed_copy_leaves_no_temporary_file_and_says_the_disk_is_full(tmp_path, monkeypatch):
    import inspect_stations.archive as archive

    def link(src, dst, **kw):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    def full(src, dst, *a, **k):
        Path(dst).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(archive.os, "link", link)
    monkeypatch.setattr(archive.shutil, "copyfile", full)
    write_images(tmp_path / "inbox", 1, seed=63)
    with _Logs() as logs:
        assert (
            Station(_cfg(tmp_path), inspector=FakeInspector(), sinks={"db": MemorySink()}).run(
                install_signals=False
            )
            == 0
        )
    assert [p.name for p in _files(tmp_path / "archive")] == []  # no .inspect-tmp-* left
    assert len(list((tmp_path / "inbox").iterdir())) == 1  # stays for a later try
    msg = logs.of("file_failed")[0]
    assert "disk is full" in msg and "img00000.png" in msg and "not inspected again" in msg


def test_a_file_that_cannot_be_filed_is_retried_later_not_every_pass(tmp_path, monkeypatch):
    """An unwritable archive used to make the station re-read, re-hash and log every file in
    the inbox every poll (twice a second, forever)."""
    from inspect_stations.archive import Archive

    tries = []

    def refuse(self, src, *a, **k):
        tries.append(src)
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(Archive, "file", refuse)
    write_images(tmp_path / "inbox", 3, seed=64)
    sink = MemorySink()
    station = Station(
        _cfg(tmp_path, until_empty=False), inspector=FakeInspector(), sinks={"db": sink}
    )
    with _Logs() as logs:
        t = threading.Thread(target=station.run, kwargs={"install_signals": False})
        t.start()
        try:
            wait_for(lambda: len(tries) >= 3, what="the first attempts")
            time.sleep(1.5)  # ~75 polls
        finally:
            station.stop()
            t.join(30)
    assert len(tries) == 3, f"{len(tries)} attempts to file 3 files in 1.5 s"
    assert len(sink.items) == 3 and station.source.queue_depth == 3
    assert "permission denied" in logs.of("file_failed")[0]


def test_a_file_replaced_while_inspected_is_not_filed_under_the_old_verdict(tmp_path):
    """A writer that reuses one name renames a new image over it while the station inspects
    the old one: the new one must be inspected, not archived under the old one's result."""
    inbox = tmp_path / "inbox"
    (p,) = write_images(inbox, 1, seed=65)
    new_bytes = cv2.imencode(".png", np.full((8, 8), 200, np.uint8))[1].tobytes()

    class Replacing(FakeInspector):
        def judge(self, frame, seg):
            if not getattr(self, "done", False):
                self.done = True
                tmp = inbox / ".next.tmp"
                tmp.write_bytes(new_bytes)
                os.replace(tmp, p)
            return super().judge(frame, seg)

    sink = MemorySink()
    with _Logs() as logs:
        assert (
            Station(_cfg(tmp_path), inspector=Replacing(fail_above=150), sinks={"db": sink}).run(
                install_signals=False
            )
            == 0
        )
    assert sorted(i.verdict.decision.value for i in sink.items) == ["FAIL", "PASS"]
    filed = _files(tmp_path / "archive")
    assert [f.read_bytes() for f in filed] == [new_bytes]
    assert filed[0].parent.parent.name == "FAIL"  # the new image, under its own verdict
    assert logs.of("replaced")


def test_an_unreadable_inbox_is_reported_once_a_minute_not_every_poll(tmp_path):
    write_images(tmp_path / "inbox", 1, seed=66)
    station = Station(
        _cfg(tmp_path, until_empty=False), inspector=FakeInspector(), sinks={"db": MemorySink()}
    )
    with _Logs() as logs:
        t = threading.Thread(target=station.run, kwargs={"install_signals": False})
        t.start()
        try:
            wait_for(lambda: _files(tmp_path / "archive"), what="the first image")
            shutil.rmtree(tmp_path / "inbox")  # the share goes away
            time.sleep(1.0)  # ~50 polls
            (tmp_path / "inbox").mkdir()
            write_images(tmp_path / "inbox", 1, seed=67)
            wait_for(lambda: len(_files(tmp_path / "archive")) == 2, what="the share back")
        finally:
            station.stop()
            t.join(30)
    assert len(logs.of("folder_unreadable")) == 1 and logs.of("folder_readable")


def test_a_folder_that_cannot_be_used_is_named_with_its_key(tmp_path):
    from inspect_core.errors import InspectError

    (tmp_path / "archive").write_text("a file, not a folder")
    with pytest.raises(InspectError, match=r"archive.path: .*a file is in the way"):
        Station(_cfg(tmp_path), inspector=FakeInspector(), sinks={"db": MemorySink()})


class _Logs:
    """Messages of the station logger by event (INFO and up)."""

    def __enter__(self):
        self.records: list = []
        self.handler = logging.Handler()
        self.handler.emit = self.records.append
        log = logging.getLogger("inspect.station")
        self.level = log.level
        log.setLevel(logging.INFO)
        log.addHandler(self.handler)
        return self

    def __exit__(self, *exc):
        log = logging.getLogger("inspect.station")
        log.removeHandler(self.handler)
        log.setLevel(self.level)

    def of(self, event: str) -> list[str]:
        return [r.getMessage() for r in self.records if getattr(r, "event", None) == event]


def test_filing_goes_on_after_the_archive_folder_was_removed(tmp_path):
    """A clean-up job (or a person) removes today's archive folder while the station runs: it
    used to believe the folder still existed and fail every file until restarted."""
    from inspect_stations.archive import Archive

    a = Archive(tmp_path / "archive", tmp_path / "quarantine")
    inbox = tmp_path / "inbox"
    first, second = write_images(inbox, 2, seed=68)
    kept = a.file(first, "PASS", "aa" * 32, 0)
    shutil.rmtree(tmp_path / "archive")
    got = a.file(second, "PASS", "bb" * 32, 0)
    assert got.is_file() and got.parent == kept.parent and not second.exists()
    frame = a.save(b"frame", "cam.png", "FAIL", "cc" * 32, 0)
    shutil.rmtree(tmp_path / "archive")
    assert a.save(b"frame2", "cam.png", "FAIL", "dd" * 32, 0).read_bytes() == b"frame2"
    assert frame.name == "cam.png"


def test_a_clock_in_the_past_is_reported_and_a_prune_failure_does_not_stop_the_start(
    tmp_path, monkeypatch
):
    import sqlite3

    import inspect_stations.daemon as daemon
    from inspect_stations.journal import Journal

    def full(self, older_than_s):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Journal, "prune", full)
    monkeypatch.setattr(daemon, "CLOCK_SANE", 4e9)  # as if the clock said 1970
    write_images(tmp_path / "inbox", 1, seed=69)
    sink = MemorySink()
    with _Logs() as logs:
        assert (
            Station(_cfg(tmp_path), inspector=FakeInspector(), sinks={"db": sink}).run(
                install_signals=False
            )
            == 0
        )
    assert len(sink.items) == 1
    assert "disk is full" in logs.of("journal_prune")[0]
    assert "Set the clock" in logs.of("clock")[0]


def test_a_copy_across_file_systems_does_not_delete_a_file_that_took_the_name(
    tmp_path, monkeypatch
):
    """The inbox and the archive on different volumes: while the image is copied, the camera
    renames its next image over the same name. That one must stay in the inbox."""
    import inspect_stations.archive as archive

    real_copy, real_link = archive.shutil.copyfile, os.link
    inbox = tmp_path / "inbox"
    (src,) = write_images(inbox, 1, seed=70)

    def link(a, b, **kw):
        if "inbox" in str(a):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_link(a, b, **kw)

    def copy_then_replace(a, b, *args, **kw):
        out = real_copy(a, b, *args, **kw)
        tmp = inbox / ".next.tmp"
        tmp.write_bytes(b"the next image")
        os.replace(tmp, src)
        return out

    real_rename = os.rename

    def rename(a, b):
        if "inbox" in str(a):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_rename(a, b)

    monkeypatch.setattr(archive.os, "link", link)
    monkeypatch.setattr(archive.os, "rename", rename)
    monkeypatch.setattr(archive.shutil, "copyfile", copy_then_replace)
    a = archive.Archive(tmp_path / "archive", tmp_path / "quarantine")
    first = src.read_bytes()
    dest = a.file(src, "PASS", "ee" * 32, 0)
    assert dest.read_bytes() == first
    assert src.read_bytes() == b"the next image"


def test_the_same_image_in_flight_in_two_groups_is_recorded_once(tmp_path):
    """Both copies read before the first one's result is committed, recorded in two groups."""
    from inspect_stations.work import read_file, run_model

    inbox = tmp_path / "inbox"
    (p,) = write_images(inbox, 1, seed=72)
    (inbox / "copy.png").write_bytes(p.read_bytes())
    station = Station(_cfg(tmp_path), inspector=FakeInspector(), sinks={"db": MemorySink()})
    _, items = station.source._scan()
    works = [read_file(i, station.cfg.limits, None, station.journal) for i in items]
    assert [w.known_verdict for w in works] == [None, None]  # neither recorded when read
    run_model(station.inspector, works)
    station.pipeline.record(works[:1])
    station.pipeline.record(works[1:])
    assert station.journal.pending() == 1
    assert sorted(f.name for f in _files(tmp_path / "archive" / "PASS")) == ["copy.png", p.name]
    station.journal.close()
