"""File names that are not valid UTF-8 (``Pr\\xfcfteil.png`` from a Latin-1 writer on an SMB
share; a symlink whose target is such a name): inspected, recorded and filed like any file, in
archive and leave mode, after a crash too; the journal keeps their bytes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from station_kit import CountingInspector, files_in, folder_config

from inspect_core.plugin_api.interfaces import SourceItem
from inspect_stations.pipeline.daemon import Station
from inspect_stations.pipeline.journal import Journal, JournalEntry
from inspect_stations.pipeline.journal_codec import loaded, stored
from inspect_stations.pipeline.work import Work, build_inspection
from inspect_stations.testing import FakeInspector, MemorySink, write_images

LATIN1 = os.fsdecode(b"Pr\xfcfteil.png")  # "Prüfteil.png" in Latin-1: surrogate escapes


def _run(tmp: Path, inspector=None, **source) -> tuple[int, MemorySink]:
    sink = MemorySink()
    station = Station(
        folder_config(tmp, **source), inspector=inspector or FakeInspector(), sinks={"db": sink}
    )
    return station.run(install_signals=False), sink


def test_a_name_that_is_not_utf8_is_inspected_recorded_and_archived(tmp_path):
    (p,) = write_images(tmp_path / "inbox", 1, seed=81)
    os.rename(p, tmp_path / "inbox" / LATIN1)
    write_images(tmp_path / "inbox", 1, seed=82, start=1)  # a part after it
    code, sink = _run(tmp_path)
    assert code == 0
    assert not list((tmp_path / "inbox").iterdir())
    names = {f.name for f in files_in(tmp_path / "archive" / "PASS")}
    assert names == {LATIN1, "img00001.png"}
    assert {Path(i.source).name for i in sink.items} == names
    # the journal holds the name's bytes: the file it names can be found again
    j = Journal(tmp_path / "state" / "journal.sqlite")
    try:
        (src,) = [r[0] for r in j.db.execute("SELECT src FROM done") if isinstance(r[0], bytes)]
        assert (
            os.fsencode(loaded(src)) == os.fsencode(str(tmp_path / "inbox")) + b"/Pr\xfcfteil.png"
        )
    finally:
        j.close()


def test_leave_mode_remembers_a_name_that_is_not_utf8(tmp_path):
    (p,) = write_images(tmp_path / "inbox", 1, seed=83)
    os.rename(p, tmp_path / "inbox" / LATIN1)
    first, again = CountingInspector(), CountingInspector()
    assert _run(tmp_path, first, after="leave")[0] == 0
    assert _run(tmp_path, again, after="leave")[0] == 0
    assert (first.calls, again.calls) == (1, 0)
    assert (tmp_path / "inbox" / LATIN1).is_file()


def test_a_crash_leftover_with_such_a_name_is_filed_where_its_record_says(tmp_path):
    (p,) = write_images(tmp_path / "inbox", 1, seed=84)
    src = p.with_name(LATIN1)
    os.rename(p, src)
    insp = CountingInspector()
    station = Station(folder_config(tmp_path), inspector=insp, sinks={"db": MemorySink()})
    w = Work(SourceItem(source=str(src), path=str(src)))
    w.sha256 = hashlib.sha256(src.read_bytes()).hexdigest()
    w.result = insp.inspect_image(np.zeros((4, 4), np.uint8))  # PASS
    record = build_inspection(insp, w, "folder", "x")
    planned = tmp_path / "archive" / "PASS" / "2001-02-03" / LATIN1
    record.source = str(planned)
    station.journal.commit([JournalEntry(record, ["db"], src=str(src))])
    insp.calls = 0
    assert station.run(install_signals=False) == 0
    assert insp.calls == 0 and planned.is_file() and not src.exists()


def test_a_symlink_to_a_name_that_is_not_utf8_is_quarantined_with_the_name_shown(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    os.symlink(os.fsdecode(b"/mnt/cam/Pr\xfcfung.png"), inbox / "a_link.png")
    write_images(inbox, 1, seed=85, prefix="b_part")
    code, sink = _run(tmp_path)
    assert code == 0
    verdicts = sorted((Path(i.source).name, i.verdict.decision.value) for i in sink.items)
    assert verdicts == [("a_link.png", "ERROR"), ("b_part00000.png", "PASS")]
    (error,) = [i.error for i in sink.items if i.error]
    assert "'/mnt/cam/Pr\\xfcfung.png'" in error


def test_stored_names_come_back_unchanged():
    for name in (
        "plain.png",
        "Prüfteil.png",
        LATIN1,
        os.fsdecode(b"\xff\xfe.png"),
        "\ud800x",
        None,
    ):
        assert loaded(stored(name)) == name
    assert stored("Prüfteil.png") == "Prüfteil.png"  # valid UTF-8 stays text, as before
    assert isinstance(stored(LATIN1), bytes)


def test_a_failed_station_exits_1_even_in_until_empty_mode(tmp_path, monkeypatch):
    import json

    from inspect_stations.pipeline.journal import Journal as J

    def refuse(self, entries):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(J, "commit", refuse)
    write_images(tmp_path / "inbox", 2, seed=86)
    code, _ = _run(tmp_path)
    assert code == 1
    assert json.loads((tmp_path / "state" / "status.json").read_text())["state"] == "failed"
    assert len(list((tmp_path / "inbox").iterdir())) == 2  # not recorded: left in the inbox


def test_a_bad_file_with_such_a_name_is_quarantined_with_its_reason(tmp_path):
    """Needs the archive to write the reason file of such a name (``originally: <its bytes>``)."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / os.fsdecode(b"bad\xff.png")).write_bytes(b"hello")
    code, sink = _run(tmp_path)
    assert code == 0 and not list(inbox.iterdir())
    (record,) = sink.items
    assert record.verdict.decision.value == "ERROR" and "not an image" in record.error
    why = Path(record.source + ".why.txt").read_bytes()
    assert b"not an image" in why and b"bad\xff.png" in why
