"""One inbox, one station, even when the inbox is removed and made again while a station runs
(``rm -rf inbox; mkdir inbox``): a second station on that path is still refused (the lock is
also keyed by the inbox's path, outside the inbox), and the first station notices that its
inbox is a new folder, says so, and takes files from it (locking it), so no image is recorded
twice. If another station got the new folder first, the first one stops, saying why."""

from __future__ import annotations

import fcntl
import os
import shutil

import pytest
from station_kit import folder_config, running

from inspect_core.errors import InspectError
from inspect_stations.pipeline.daemon import Station
from inspect_stations.testing import FakeInspector, MemorySink, wait_for, write_images


def _station(
    tmp, state: str, name: str, sink: MemorySink | None = None, until_empty: bool = False
) -> Station:
    cfg = folder_config(tmp, until_empty=until_empty)
    cfg.state_dir, cfg.name = tmp / state, name
    return Station(cfg, inspector=FakeInspector(), sinks={"db": sink or MemorySink()})


def _remake(folder) -> None:
    shutil.rmtree(folder)
    folder.mkdir()


def _locked_by_someone(folder) -> bool:
    """Whether a flock on ``folder`` is held (by another open of it: this process's too)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_a_second_station_is_refused_after_the_inbox_is_made_again(tmp_path):
    first = _station(tmp_path, "state1", "line1")
    with running(first):
        _remake(tmp_path / "inbox")
        with pytest.raises(InspectError, match="already taking files from the inbox") as e:
            _station(tmp_path, "state2", "line2")
        assert f"pid {os.getpid()}" in str(e.value) and "source.path" in str(e.value)
    # stopped: the path is free again, and nothing was left in the inbox
    assert not list((tmp_path / "inbox").iterdir())
    assert _station(tmp_path, "state2", "line2", until_empty=True).run(install_signals=False) == 0


def test_the_first_station_takes_files_from_the_new_inbox_and_locks_it(tmp_path):
    sink = MemorySink()
    first = _station(tmp_path, "state1", "line1", sink)
    inbox = tmp_path / "inbox"
    with running(first) as logs:
        write_images(inbox, 2, seed=71)
        wait_for(lambda: len(sink.items) == 2, timeout=10, what="the first images")
        _remake(inbox)
        write_images(inbox, 3, seed=72, prefix="new")
        wait_for(lambda: len(sink.items) == 5, timeout=10, what="the new inbox's images")
        (said,) = logs.of("inbox_replaced")
        assert str(inbox) in said and "new folder" in said
        assert _locked_by_someone(inbox)  # the new folder is held by the first station
        with pytest.raises(InspectError, match="already taking files from the inbox"):
            _station(tmp_path, "state2", "line2")
    assert sink.duplicates == 0 and not list(inbox.iterdir())
    assert len({i.image_sha256 for i in sink.items}) == 5


def test_a_station_whose_new_inbox_another_holds_stops(tmp_path):
    """The new folder was locked by someone else (another station, in another container,
    where the path lock is not shared) before the first noticed: it stops, saying why, and
    takes nothing from it."""
    sink = MemorySink()
    first = _station(tmp_path, "state1", "line1", sink)
    inbox, other = tmp_path / "inbox", tmp_path / "other"
    other.mkdir()
    write_images(other, 2, seed=73)
    fd = os.open(other, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        with running(first) as logs:
            shutil.rmtree(inbox)
            os.rename(other, inbox)  # a new folder at the path, held by another
            wait_for(lambda: logs.of("failed"), timeout=10, what="the station to stop")
            (said,) = logs.of("failed")
            assert "replaced" in said and "another station" in said and str(inbox) in said
            assert first.failed
        assert not sink.items and len(list(inbox.iterdir())) == 2
    finally:
        os.close(fd)
