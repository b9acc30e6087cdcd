"""A station recovers a sink by itself once the cause is gone, without a restart.

A SQLite file that is read-only when the station opens it gives a connection that stays
read-only for its life: retrying writes on it never succeeds, however writable the file has
become. The writer makes the sink again (with backoff, bounded) while it stays down, so the
results flow as soon as the database is writable. And ``inspect station status`` says NEEDS
ACTION, with the reason, while images cannot be filed (archive not writable, disk full)."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from station_kit import archived, journal_config, running

from inspect_stations.pipeline.daemon import Station
from inspect_stations.pipeline.status import format_status, read_status
from inspect_stations.sources import folder as folder_mod
from inspect_stations.testing import FakeInspector, MemorySink, wait_for, write_images


class DatabaseUnavailable(Exception):
    """Named like the records layer's error: the writer takes it as transient."""


class BornReadOnly(MemorySink):
    """Like a SQLite connection: read-only for its life when the file was read-only at open."""

    def __init__(self, writable: threading.Event, store: MemorySink):
        super().__init__()
        self.read_only = not writable.is_set()
        self.store = store

    def write(self, insp) -> None:
        if self.read_only:
            raise DatabaseUnavailable("attempt to write a readonly database")
        self.store.write(insp)


def test_a_sink_opened_while_read_only_is_opened_again(tmp_path):
    writable, store = threading.Event(), MemorySink()
    made: list[BornReadOnly] = []

    def factory() -> BornReadOnly:
        made.append(BornReadOnly(writable, store))
        return made[-1]

    write_images(tmp_path / "inbox", 3, seed=61)
    station = Station(
        journal_config(tmp_path, until_empty=False),
        inspector=FakeInspector(),
        sinks={"db": factory},
    )
    with running(station):
        slot = station.slots[0]
        wait_for(lambda: not slot.up, timeout=10, what="the sink to be down")
        writable.set()  # `chmod 644`: the file is writable again
        wait_for(lambda: len(store.items) == 3, timeout=10, what="the results to be written")
        assert slot.up and len(made) >= 2
    assert store.duplicates == 0


def _chattr(flag: str, path: Path) -> bool:
    if shutil.which("chattr") is None:
        return False
    return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0


def test_a_sqlite_file_read_only_at_start_is_written_once_writable(tmp_path):
    """The real thing: the ``sql`` sink on a file that cannot be opened for writing (made
    immutable: root ignores file modes), then made writable while the station runs."""
    from inspect_db.records.recorder import Recorder, SqlSink

    db = tmp_path / "records.sqlite"
    url = f"sqlite:///{db}"
    Recorder(url).connect().close()
    if not _chattr("+i", db):
        pytest.skip("chattr +i is not available here (needs root and ext4/xfs)")
    try:
        write_images(tmp_path / "inbox", 2, seed=62)
        cfg = journal_config(tmp_path, until_empty=False)
        station = Station(
            cfg, inspector=FakeInspector(), sinks={"sql": lambda: SqlSink({"url": url})}
        )
        with running(station) as logs:
            slot = station.slots[0]
            wait_for(lambda: not slot.up, timeout=10, what="the sql sink to be down")
            assert "readonly" in (slot.last_error or "")
            _chattr("-i", db)
            wait_for(lambda: slot.up and slot.written == 2, timeout=15, what="the records")
            assert logs.of("sink_back")
        rec = Recorder(url)
        try:
            assert rec.count() == 2
        finally:
            rec.close()
    finally:
        _chattr("-i", db)


def test_status_needs_action_while_images_cannot_be_filed(tmp_path, monkeypatch):
    """``archive/PASS`` is a file: no PASS can be filed (root cannot get around that either).
    The status says NEEDS ACTION with the reason until an image is filed again."""
    monkeypatch.setattr(folder_mod, "RETRY_FIRST_S", 0.1)
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "PASS").write_text("in the way")
    write_images(tmp_path / "inbox", 2, seed=63)
    sink = MemorySink()
    station = Station(
        journal_config(tmp_path, until_empty=False), inspector=FakeInspector(), sinks={"db": sink}
    )

    def status() -> str:
        return format_status(read_status(tmp_path / "state"))

    with running(station) as logs:
        wait_for(lambda: len(sink.items) == 2, timeout=10, what="the records")
        wait_for(lambda: "NEEDS ACTION" in status(), timeout=10, what="NEEDS ACTION")
        text = status()
        assert "cannot be filed" in text and "must be a folder" in text, text
        # tried again (as images already recorded) and refused again: never lost meanwhile
        wait_for(lambda: len(logs.of("file_failed")) >= 4, timeout=10, what="the retries")
        assert len(list((tmp_path / "inbox").iterdir())) == 2
        (tmp_path / "archive" / "PASS").unlink()
        wait_for(lambda: archived(tmp_path) == 2, timeout=10, what="the filing")
        wait_for(lambda: "NEEDS ACTION" not in status(), timeout=10, what="the all-clear")
    assert not list((tmp_path / "inbox").iterdir())
    assert len(sink.items) == 2 and sink.duplicates == 0


def test_status_needs_action_while_camera_frames_cannot_be_saved(tmp_path, tiny_model):
    """A camera station whose archive cannot take frames records them anyway; the status
    says NEEDS ACTION with the reason."""
    import cv2
    import numpy as np

    from inspect_core.runtime.recipe import Recipe
    from inspect_stations.config.station import parse_config

    clip = cv2.VideoWriter(
        str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48)
    )
    for i in range(10):
        clip.write(np.full((48, 64, 3), 20 * i, np.uint8))
    clip.release()
    (tmp_path / "archive").mkdir()
    for verdict in ("PASS", "REVIEW", "FAIL"):
        (tmp_path / "archive" / verdict).write_text("in the way")
    cfg = parse_config(
        {
            "station": {"name": "cam", "plugin": "tiny", "recipe": "tiny", "until_empty": True},
            "source": {"type": "camera", "url": str(tmp_path / "clip.avi"), "interval_ms": 300},
        },
        tmp_path,
    )
    sink = MemorySink()
    recipe = Recipe(name="tiny", model=tiny_model, rules=[{"type": "min_area", "min": 1}])
    station = Station(cfg, recipe=recipe, sinks={"db": sink})
    assert station.run(install_signals=False) == 0
    assert sink.items  # recorded all the same
    text = format_status(read_status(tmp_path / "state"))
    assert "NEEDS ACTION" in text and "frames cannot be saved" in text, text
