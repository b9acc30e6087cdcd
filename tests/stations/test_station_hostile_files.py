"""Hostile files in the inbox: named pipes and sockets (a read must never hang the station), and
file names near the file system's 255-byte limit (archive, quarantine reason and overlay names
are shortened deterministically, and errors say what really happened)."""

from __future__ import annotations

import errno
import os
import socket
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from inspect_core.plugin_api.interfaces import FileFacts, SourceItem
from inspect_core.runtime.recipe import Recipe
from inspect_stations.config.station import Limits, parse_config
from inspect_stations.pipeline.daemon import Station
from inspect_stations.testing import CapturedLogs, FakeInspector, MemorySink, wait_for, write_images


def _cfg(tmp: Path, until_empty: bool = True, **station):
    (tmp / "inbox").mkdir(exist_ok=True)
    return parse_config(
        {
            "station": {
                "name": "hostile",
                "plugin": "x",
                "recipe": "x",
                "until_empty": until_empty,
                **station,
            },
            "source": {"type": "folder", "path": "inbox", "stable_s": 0.0, "poll_s": 0.02},
        },
        tmp,
    )


def _release(fifo: Path) -> None:
    """Unblock a reader stuck in open() on ``fifo`` (the old code), so the test can end."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if not p.is_dir()) if folder.exists() else []


# -- named pipes, sockets ----------------------------------------------------------------------
def test_a_fifo_and_a_socket_are_quarantined_unread_and_later_files_are_inspected(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # a Unix socket path must be short: bind relative to here
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    fifo = inbox / "x.png"
    os.mkfifo(fifo)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind("inbox/s.png")
    good = write_images(inbox, 3, seed=91)
    sink = MemorySink()
    station = Station(
        _cfg(tmp_path, until_empty=False), inspector=FakeInspector(), sinks={"db": sink}
    )
    t = threading.Thread(target=station.run, kwargs={"install_signals": False}, daemon=True)
    try:
        with CapturedLogs() as logs:
            t.start()
            wait_for(lambda: len(sink.items) == 5, timeout=10, what="5 records")
            station.stop()
            t.join(10)
            assert not t.is_alive(), "the station did not stop"
    finally:
        _release(fifo)
        sock.close()
        station.stop()
    by_name = {Path(i.source).name: i for i in sink.items}
    assert {by_name[p.name].verdict.decision.value for p in good} == {"PASS"}
    assert "named pipe (FIFO)" in by_name["x.png"].error
    assert "socket" in by_name["s.png"].error
    assert not list(inbox.iterdir())
    q = next((tmp_path / "quarantine").iterdir())
    assert (q / "x.png").is_fifo() and (q / "s.png").is_socket()  # moved as they are
    assert "named pipe" in (q / "x.png.why.txt").read_text()
    assert len(logs.of("quarantined")) == 2 and not logs.of("file_failed")


def test_a_second_fifo_under_a_quarantined_name_does_not_hang_the_filing(tmp_path):
    """Filing compares a name already taken with the file (same content?): it must not open a
    pipe to read it."""
    fifo = tmp_path / "inbox" / "x.png"
    for _ in range(2):
        (tmp_path / "inbox").mkdir(exist_ok=True)
        os.mkfifo(fifo)
        station = Station(_cfg(tmp_path), inspector=FakeInspector(), sinks={"db": MemorySink()})
        t = threading.Thread(target=station.run, kwargs={"install_signals": False}, daemon=True)
        t.start()
        t.join(10)
        alive = t.is_alive()
        _release(fifo)
        assert not alive, "filing a second pipe hung"
    names = {p.name for p in _files(tmp_path / "quarantine") if not p.name.endswith(".why.txt")}
    assert len(names) == 2 and "x.png" in names


def test_a_fifo_is_quarantined_across_file_systems_and_a_socket_waits_with_a_reason(
    tmp_path, monkeypatch
):
    """Inbox and quarantine on separate volumes (Docker): a pipe holds no data and is made
    anew there; a socket cannot be, so it stays, and the log says why (not 'disk full')."""
    import inspect_stations.pipeline.archive as archive

    real_link = os.link

    def link(src, dst, **kw):
        if "inbox" in str(src):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_link(src, dst, **kw)

    monkeypatch.setattr(archive.os, "link", link)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "inbox").mkdir()
    os.mkfifo(tmp_path / "inbox" / "x.png")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind("inbox/s.png")
    try:
        with CapturedLogs() as logs:
            assert (
                Station(_cfg(tmp_path), inspector=FakeInspector(), sinks={"db": MemorySink()}).run(
                    install_signals=False
                )
                == 0
            )
    finally:
        sock.close()
    q = next((tmp_path / "quarantine").iterdir())
    assert (q / "x.png").is_fifo() and not (tmp_path / "inbox" / "x.png").exists()
    (failed,) = logs.of("file_failed")
    assert "s.png" in failed and "remove it from the inbox by hand" in failed
    assert "disk" not in failed


def test_a_file_replaced_by_a_fifo_after_the_scan_is_refused_not_read(tmp_path):
    """The race: the scan saw a regular file, a pipe took its name before it was opened."""
    from inspect_stations.pipeline.work import read_file

    p = tmp_path / "x.png"
    os.mkfifo(p)
    st = os.stat(p)
    item = SourceItem(source=str(p), path=str(p), file=FileFacts(st.st_size, st.st_mtime_ns))
    out: list = []
    t = threading.Thread(target=lambda: out.append(read_file(item, Limits())), daemon=True)
    t.start()
    t.join(5)
    _release(p)
    t.join(5)
    assert out and "named pipe (FIFO)" in out[0].error and out[0].data is None


# -- names near the 255-byte limit -----------------------------------------------------------
LONG_NAMES = [
    "a" * 243 + ".png",  # 247 characters
    "é" * 125 + "x.png",  # 255 bytes in UTF-8, 2-byte characters
    "検" * 83 + "ab.png",  # 255 bytes, 3-byte characters
]


def _png(value: int, shape=(24, 32)) -> bytes:
    img = np.full(shape, value, np.uint8)
    img[4:9, 4:12] = 255 - value
    return cv2.imencode(".png", img)[1].tobytes()


def test_long_names_are_archived_quarantined_and_overlaid(tmp_path, tiny_model):
    inbox = tmp_path / "inbox"
    cfg = _cfg(tmp_path)
    cfg.overlays = True
    recipe = Recipe(name="tiny", model=tiny_model, rules=[{"type": "min_area", "min": 1}])
    sink = MemorySink()
    for round_ in range(2):  # the second round finds every name taken: a suffix must fit too
        for k, name in enumerate(LONG_NAMES):
            (inbox / name).write_bytes(_png(20 + 10 * k + round_))
            (inbox / ("bad" + name[3:])).write_bytes(b"line %d stopped %d" % (k, round_))
        with CapturedLogs() as logs:
            assert Station(cfg, recipe=recipe, sinks={"db": sink}).run(install_signals=False) == 0
        assert not logs.of("file_failed") and not logs.of("overlay_failed"), logs.records
        assert not list(inbox.iterdir())
    assert len(sink.items) == 4 * len(LONG_NAMES)  # 2 rounds of images and of text files
    good = [i for i in sink.items if i.error is None]
    assert len(good) == 2 * len(LONG_NAMES)
    for insp in sink.items:
        dest = Path(insp.source)
        assert dest.exists() and len(os.fsencode(dest.name)) <= 255, dest.name
        assert "archive" in dest.parts or "quarantine" in dest.parts
        dest.name.encode("utf-8")  # shortened on a character boundary: still valid UTF-8
    for insp in good:
        assert insp.overlay_path and Path(insp.overlay_path).is_file(), insp.overlay_path
    quarantined = [p for p in _files(tmp_path / "quarantine") if not p.name.endswith(".why.txt")]
    assert len(quarantined) == 2 * len(LONG_NAMES)
    for p in quarantined:
        why = p.with_name(p.name + ".why.txt")
        assert why.is_file() and "not an image" in why.read_text()
    archived = {p.name for p in _files(tmp_path / "archive" / "PASS")} | {
        p.name for p in _files(tmp_path / "archive" / "FAIL")
    }
    assert len(archived) == 2 * len(LONG_NAMES)
    # readable: the shortened name starts like the original and keeps its extension
    assert any(
        n.startswith("a" * 100) and n.endswith(".png") and n != LONG_NAMES[0] for n in archived
    )


def test_long_names_across_file_systems(tmp_path, monkeypatch):
    """The copy to another file system goes through a temporary name: it must fit as well."""
    import inspect_stations.pipeline.archive as archive

    real_link = os.link

    def link(src, dst, **kw):
        if "inbox" in str(src):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_link(src, dst, **kw)

    monkeypatch.setattr(archive.os, "link", link)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for k, name in enumerate(LONG_NAMES):
        (inbox / name).write_bytes(_png(40 + k))
    sink = MemorySink()
    with CapturedLogs() as logs:
        assert (
            Station(_cfg(tmp_path), inspector=FakeInspector(), sinks={"db": sink}).run(
                install_signals=False
            )
            == 0
        )
    assert not logs.of("file_failed"), logs.records
    assert not list(inbox.iterdir()) and len(_files(tmp_path / "archive")) == len(LONG_NAMES)


def test_fit_name_keeps_a_prefix_a_hash_and_the_suffix():
    from inspect_core.runtime.overlay import fit_name

    assert fit_name("part.png") == "part.png"
    long = "x" * 300 + ".png"
    a, b = fit_name(long), fit_name("x" * 299 + "y.png")
    assert a == fit_name(long) and a != b  # deterministic, distinct
    assert len(a.encode()) <= 255 and a.startswith("x" * 200) and a.endswith(".png")
    assert len(fit_name(long, reserve=30).encode()) <= 225
    multi = fit_name("検" * 100 + ".jpg")
    assert len(multi.encode()) <= 255 and multi.endswith(".jpg") and multi.startswith("検" * 50)


def test_a_name_too_long_is_not_reported_as_a_full_disk(tmp_path):
    from inspect_core.runtime.overlay import OverlayError, save_overlay
    from inspect_stations.pipeline.archive import fs_hint

    hint = fs_hint(OSError(errno.ENAMETOOLONG, "File name too long"))
    assert "too long" in hint and "disk" not in hint
    with pytest.raises(OverlayError) as e:
        save_overlay(tmp_path / ("d" * 300) / "o.png", np.zeros((4, 4, 3), np.uint8))
    assert "too long" in str(e.value) and "disk" not in str(e.value)
