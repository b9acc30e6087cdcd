"""Filing into the archive: moves across file systems, an archived file never replaced, a full
disk or an unwritable archive (the file stays in the inbox, tried again later, not every
pass), an archive folder removed while the station runs."""

from __future__ import annotations

import errno
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from station_kit import StationLogs, files_in, folder_config

from inspect_stations.pipeline.daemon import Station
from inspect_stations.testing import FakeInspector, MemorySink, wait_for, write_images


def test_moves_across_file_systems(tmp_path, monkeypatch):
    import inspect_stations.pipeline.archive as archive

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
        Station(folder_config(tmp_path), inspector=FakeInspector(), sinks={"db": sink}).run(
            install_signals=False
        )
        == 0
    )
    assert len(crossed) == 3  # the copy path was taken
    archived = files_in(tmp_path / "archive")
    assert {p.name: p.read_bytes() for p in archived} == data  # no temporary files left
    assert not list((tmp_path / "inbox").iterdir())
    assert {i.source for i in sink.items} == {str(p) for p in archived}


def test_an_archived_file_is_never_replaced(tmp_path, monkeypatch):
    """Two stations filing into one archive: the second file with the same name must not
    replace the first (os.rename would, silently), even if it appears after every check."""
    import inspect_stations.pipeline.archive as archive

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
    import inspect_stations.pipeline.archive as archive

    def link(src, dst, **kw):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    def full(src, dst, *a, **k):
        Path(dst).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(archive.os, "link", link)
    monkeypatch.setattr(archive.shutil, "copyfile", full)
    write_images(tmp_path / "inbox", 1, seed=63)
    with StationLogs() as logs:
        assert (
            Station(
                folder_config(tmp_path), inspector=FakeInspector(), sinks={"db": MemorySink()}
            ).run(install_signals=False)
            == 0
        )
    assert [p.name for p in files_in(tmp_path / "archive")] == []  # no .inspect-tmp-* left
    assert len(list((tmp_path / "inbox").iterdir())) == 1  # stays for a later try
    msg = logs.of("file_failed")[0]
    assert "disk is full" in msg and "img00000.png" in msg and "not inspected again" in msg


def test_a_file_that_cannot_be_filed_is_retried_later_not_every_pass(tmp_path, monkeypatch):
    """An unwritable archive used to make the station re-read, re-hash and log every file in
    the inbox every poll (twice a second, forever)."""
    from inspect_stations.pipeline.archive import Archive

    tries = []

    def refuse(self, src, *a, **k):
        tries.append(src)
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(Archive, "file", refuse)
    write_images(tmp_path / "inbox", 3, seed=64)
    sink = MemorySink()
    station = Station(
        folder_config(tmp_path, until_empty=False), inspector=FakeInspector(), sinks={"db": sink}
    )
    with StationLogs() as logs:
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


def test_a_folder_that_cannot_be_used_is_named_with_its_key(tmp_path):
    from inspect_core.errors import InspectError

    (tmp_path / "archive").write_text("a file, not a folder")
    with pytest.raises(InspectError, match=r"archive.path: .*a file is in the way"):
        Station(folder_config(tmp_path), inspector=FakeInspector(), sinks={"db": MemorySink()})


def test_filing_goes_on_after_the_archive_folder_was_removed(tmp_path):
    """A clean-up job (or a person) removes today's archive folder while the station runs: it
    used to believe the folder still existed and fail every file until restarted."""
    from inspect_stations.pipeline.archive import Archive

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


def test_a_copy_across_file_systems_does_not_delete_a_file_that_took_the_name(
    tmp_path, monkeypatch
):
    """The inbox and the archive on different volumes: while the image is copied, the camera
    renames its next image over the same name. That one must stay in the inbox."""
    import inspect_stations.pipeline.archive as archive

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
