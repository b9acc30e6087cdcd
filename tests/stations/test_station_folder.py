"""Folder source: complete files only, archive or leave-and-remember, bounded memory for
10,000 files at once, crash leftovers filed without a second inspection, the same image under
two names recorded once. Filing into the archive: test_station_filing.py."""

from __future__ import annotations

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
from station_kit import (
    CountingInspector,
    CountSink,
    StationLogs,
    files_in,
    folder_config,
)

from inspect_core.plugin_api.interfaces import SourceItem
from inspect_stations.logs import setup_logging
from inspect_stations.pipeline.daemon import Station
from inspect_stations.pipeline.journal import JournalEntry
from inspect_stations.pipeline.work import Work, build_inspection
from inspect_stations.testing import FakeInspector, MemorySink, wait_for, write_images


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
        cfg = folder_config(tmp_path, stable_s=0.05, max_pending=128)
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
    # 10,000 pending files and the images in flight (the model pool: workers x batch plus the
    # reorder buffer); a station that held every file would need hundreds of MB
    assert peak < 12_000_000, f"peak traced memory {peak / 1e6:.1f} MB"


def test_a_file_is_taken_only_once_completely_written(tmp_path):
    cfg = folder_config(tmp_path, until_empty=False, stable_s=0.6)
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
        Station(folder_config(tmp_path, after="leave"), inspector=insp, sinks={"db": sink}).run(
            install_signals=False
        )
        == 0
    )
    assert insp.calls == 5 and len(sink.items) == 5
    assert len(list((tmp_path / "inbox").iterdir())) == 5 and not files_in(tmp_path / "archive")
    # a restart does not inspect them again; a changed file is inspected again
    time.sleep(0.01)
    write_images(tmp_path / "inbox", 1, seed=22, start=2)  # overwrites img00002.png
    insp2 = CountingInspector()
    assert (
        Station(folder_config(tmp_path, after="leave"), inspector=insp2, sinks={"db": sink}).run(
            install_signals=False
        )
        == 0
    )
    assert insp2.calls == 1 and len(sink.items) == 6


def test_an_image_recorded_before_a_crash_is_filed_without_a_second_inspection(tmp_path):
    paths = write_images(tmp_path / "inbox", 3, seed=31)
    sink, insp = MemorySink(), CountingInspector()
    station = Station(folder_config(tmp_path), inspector=insp, sinks={"db": sink})
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
    fail = files_in(tmp_path / "archive" / "FAIL")
    assert [p.name for p in fail] == ["img00001.png"]


def test_same_name_twice_keeps_both_images(tmp_path):
    write_images(tmp_path / "inbox", 1, seed=51)
    sink = MemorySink()
    assert (
        Station(folder_config(tmp_path), inspector=FakeInspector(), sinks={"db": sink}).run(
            install_signals=False
        )
        == 0
    )
    write_images(tmp_path / "inbox", 1, seed=52)  # another image, same file name
    assert (
        Station(folder_config(tmp_path), inspector=FakeInspector(), sinks={"db": sink}).run(
            install_signals=False
        )
        == 0
    )
    names = {p.name for p in files_in(tmp_path / "archive")}
    assert len(names) == 2 and "img00000.png" in names
    assert [n for n in names if n.startswith("img00000-") and n.endswith(".png")]
    assert {Path(i.source).name for i in sink.items} == names


def test_a_crash_leftover_is_filed_where_its_record_says_even_after_midnight(tmp_path):
    """Recorded (journaled) before a crash, not moved; restarted the next day: the file goes
    where the record points (yesterday's folder), not into today's, where nobody would look."""
    paths = write_images(tmp_path / "inbox", 2, seed=61)
    sink, insp = MemorySink(), CountingInspector()
    station = Station(folder_config(tmp_path), inspector=insp, sinks={"db": sink})
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
    assert [p.name for p in files_in(tmp_path / "archive") if p.name == src.name] == [src.name]
    assert [i.source for i in sink.items].count(str(yesterday)) == 1


def test_the_same_image_twice_at_once_is_recorded_once(tmp_path):
    """Two names, one content, recorded in the same group: one journal row (the sha256 is the
    key), and both files kept: the second is filed beside the first under its own name."""
    from inspect_stations.pipeline.work import read_file, run_model

    inbox = tmp_path / "inbox"
    (p,) = write_images(inbox, 1, seed=62)
    (inbox / "copy.png").write_bytes(p.read_bytes())
    station = Station(
        folder_config(tmp_path), inspector=FakeInspector(), sinks={"db": MemorySink()}
    )
    found, items = station.source._scan()
    assert found == 2
    works = [read_file(i, station.cfg.limits, None, station.journal) for i in items]
    run_model(station.inspector, works)
    station.pipeline.record(works)  # one group, as the recorder thread forms them
    assert station.journal.pending() == 1
    names = sorted(f.name for f in files_in(tmp_path / "archive" / "PASS"))
    assert names == ["copy.png", p.name] and not list(inbox.iterdir())
    station.journal.close()


def test_the_same_image_in_flight_in_two_groups_is_recorded_once(tmp_path):
    """Both copies read before the first one's result is committed, recorded in two groups."""
    from inspect_stations.pipeline.work import read_file, run_model

    inbox = tmp_path / "inbox"
    (p,) = write_images(inbox, 1, seed=72)
    (inbox / "copy.png").write_bytes(p.read_bytes())
    station = Station(
        folder_config(tmp_path), inspector=FakeInspector(), sinks={"db": MemorySink()}
    )
    _, items = station.source._scan()
    works = [read_file(i, station.cfg.limits, None, station.journal) for i in items]
    assert [w.known_verdict for w in works] == [None, None]  # neither recorded when read
    run_model(station.inspector, works)
    station.pipeline.record(works[:1])
    station.pipeline.record(works[1:])
    assert station.journal.pending() == 1
    assert sorted(f.name for f in files_in(tmp_path / "archive" / "PASS")) == ["copy.png", p.name]
    station.journal.close()


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
    with StationLogs() as logs:
        assert (
            Station(
                folder_config(tmp_path), inspector=Replacing(fail_above=150), sinks={"db": sink}
            ).run(install_signals=False)
            == 0
        )
    assert sorted(i.verdict.decision.value for i in sink.items) == ["FAIL", "PASS"]
    filed = files_in(tmp_path / "archive")
    assert [f.read_bytes() for f in filed] == [new_bytes]
    assert filed[0].parent.parent.name == "FAIL"  # the new image, under its own verdict
    assert logs.of("replaced")


def test_an_unreadable_inbox_is_reported_once_a_minute_not_every_poll(tmp_path):
    write_images(tmp_path / "inbox", 1, seed=66)
    station = Station(
        folder_config(tmp_path, until_empty=False),
        inspector=FakeInspector(),
        sinks={"db": MemorySink()},
    )
    with StationLogs() as logs:
        t = threading.Thread(target=station.run, kwargs={"install_signals": False})
        t.start()
        try:
            wait_for(lambda: files_in(tmp_path / "archive"), what="the first image")
            shutil.rmtree(tmp_path / "inbox")  # the share goes away
            time.sleep(1.0)  # ~50 polls
            (tmp_path / "inbox").mkdir()
            write_images(tmp_path / "inbox", 1, seed=67)
            wait_for(lambda: len(files_in(tmp_path / "archive")) == 2, what="the share back")
        finally:
            station.stop()
            t.join(30)
    assert len(logs.of("folder_unreadable")) == 1 and logs.of("folder_readable")


def test_a_clock_in_the_past_is_reported_and_a_prune_failure_does_not_stop_the_start(
    tmp_path, monkeypatch
):
    import sqlite3

    import inspect_stations.pipeline.daemon as daemon
    from inspect_stations.pipeline.journal import Journal

    def full(self, older_than_s):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Journal, "prune", full)
    monkeypatch.setattr(daemon, "CLOCK_SANE", 4e9)  # as if the clock said 1970
    write_images(tmp_path / "inbox", 1, seed=69)
    sink = MemorySink()
    with StationLogs() as logs:
        assert (
            Station(folder_config(tmp_path), inspector=FakeInspector(), sinks={"db": sink}).run(
                install_signals=False
            )
            == 0
        )
    assert len(sink.items) == 1
    assert "disk is full" in logs.of("journal_prune")[0]
    assert "Set the clock" in logs.of("clock")[0]
