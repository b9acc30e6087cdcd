"""An image refused with ERROR (over a limit, unreadable, the model failed) and dropped back into
the inbox once the fault is fixed is inspected again, and its verdict replaces the ERROR record:
it is not taken for an image recorded already."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from station_kit import StationLogs

from inspect_core.runtime.recipe import Recipe
from inspect_stations.config.station import parse_config
from inspect_stations.pipeline.daemon import Station
from inspect_stations.testing import write_images


def _run(tmp_path: Path, model: Path, max_pixels: int, max_bytes: int = 1 << 28) -> None:
    from inspect_core.plugin_api.manager import get_registry

    if "sql" not in get_registry().sinks:
        pytest.skip("the records plugin (sql sink) is not installed")
    cfg = parse_config(
        {
            "station": {"name": "retry", "plugin": "tiny", "recipe": "tiny", "until_empty": True},
            "source": {"type": "folder", "path": "inbox", "stable_s": 0.0, "poll_s": 0.05},
            "database": {"url": "sqlite:///records.db"},
            "limits": {"max_pixels": max_pixels, "max_bytes": max_bytes},
        },
        tmp_path,
    )
    recipe = Recipe(name="tiny", model=model, rules=[{"type": "min_area", "min": 1}])
    assert Station(cfg, recipe=recipe).run(install_signals=False) == 0


def _records(db: Path) -> list[tuple[str, str]]:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT source, verdict FROM inspection").fetchall()
    finally:
        con.close()


def test_a_refused_image_dropped_back_after_the_fix_is_inspected_and_replaces_its_error(
    tmp_path, tiny_model
):
    inbox = tmp_path / "inbox"
    (image,) = write_images(inbox, 1, seed=3)  # 64x64 and more: over a 100-pixel limit
    _run(tmp_path, tiny_model, max_pixels=100)
    assert [v for _, v in _records(tmp_path / "records.db")] == ["ERROR"]
    (refused,) = list((tmp_path / "quarantine").rglob(image.name))

    shutil.move(refused, image)  # the limit is raised; the operator drops the image back
    _run(tmp_path, tiny_model, max_pixels=1_000_000)
    ((source, verdict),) = _records(tmp_path / "records.db")
    assert verdict in ("PASS", "FAIL", "REVIEW"), verdict
    assert Path(source).parent.parent.parent == tmp_path / "archive"
    assert [p.name for p in (tmp_path / "archive").rglob("*.png")] == [image.name]
    assert not list(inbox.iterdir())


def test_a_bad_file_dropped_back_unchanged_is_refused_again_and_recorded_once(tmp_path, tiny_model):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "empty.png").write_bytes(b"")
    _run(tmp_path, tiny_model, max_pixels=1_000_000)
    (refused,) = list((tmp_path / "quarantine").rglob("empty.png"))
    shutil.move(refused, inbox / "empty.png")
    with StationLogs() as logs:
        _run(tmp_path, tiny_model, max_pixels=1_000_000)
    assert [v for _, v in _records(tmp_path / "records.db")] == ["ERROR"]
    assert len(logs.of("already_recorded")) == 1  # checked again, not journaled or sent again
    (why,) = list((tmp_path / "quarantine").rglob("empty.png*.why.txt"))
    assert "empty (0 bytes)" in why.read_text()


def test_a_file_refused_unread_and_read_after_the_fix_has_one_record(tmp_path, tiny_model):
    """Over limits.max_bytes, a file is refused from its size, never read: its ERROR is keyed
    by its path, inode, size and time. Once the limit is raised and the file is back, its
    verdict replaces that ERROR (Inspection.replaces), not a second record beside it."""
    inbox = tmp_path / "inbox"
    (image,) = write_images(inbox, 1, seed=4)
    _run(tmp_path, tiny_model, max_pixels=1_000_000, max_bytes=10)
    ((_, verdict),) = _records(tmp_path / "records.db")
    assert verdict == "ERROR"
    shutil.move(next((tmp_path / "quarantine").rglob(image.name)), image)
    _run(tmp_path, tiny_model, max_pixels=1_000_000)
    ((source, verdict),) = _records(tmp_path / "records.db")
    assert verdict != "ERROR" and "archive" in source


def test_an_unreadable_file_readable_after_a_chmod_has_one_record(
    tmp_path, tiny_model, monkeypatch
):
    import inspect_stations.pipeline.work as work

    inbox = tmp_path / "inbox"
    write_images(inbox, 1, seed=5)
    real = work.open_regular

    def denied(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(work, "open_regular", denied)
    _run(tmp_path, tiny_model, max_pixels=1_000_000)
    ((_, verdict),) = _records(tmp_path / "records.db")
    assert verdict == "ERROR"
    (refused,) = (p for p in (tmp_path / "quarantine").rglob("*.png"))
    shutil.move(refused, inbox / refused.name)
    monkeypatch.setattr(work, "open_regular", real)  # the permission is fixed
    _run(tmp_path, tiny_model, max_pixels=1_000_000)
    assert [v for _, v in _records(tmp_path / "records.db")] != ["ERROR"]
    assert len(_records(tmp_path / "records.db")) == 1


def test_a_replaced_error_set_aside_does_not_come_back_with_a_replay(tmp_path):
    """A path-keyed ERROR dead-lettered (the database refused it), then the file's verdict:
    replaying the dead letters must not record the ERROR beside the verdict."""
    from inspect_core.types import Decision, Inspection, Verdict
    from inspect_stations.pipeline.journal import Journal, JournalEntry

    def insp(sha: str, verdict: Decision, replaces: str | None = None) -> Inspection:
        return Inspection("a.png", sha, 8, 8, Verdict(verdict), station="s", replaces=replaces)

    j = Journal(tmp_path / "journal.sqlite")
    try:
        j.commit([JournalEntry(insp("e" * 64, Decision.ERROR), ["db"])])
        ((seq, _),) = j.oldest("db")
        j.set_aside(seq, "refused")
        j.commit([JournalEntry(insp("c" * 64, Decision.PASS, replaces="e" * 64), ["db"])])
        assert j.replay_dead() == 0 and j.pending("db") == 1  # only the verdict
        assert j.known("e" * 64) is None and j.known("c" * 64).verdict == "PASS"
    finally:
        j.close()
