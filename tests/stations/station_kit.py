"""Helpers shared by the station tests: a folder station's config, an inspector that counts,
the files under a folder, the station log by event, a station run in a thread."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from inspect_stations.config.station import parse_config
from inspect_stations.pipeline.daemon import Station
from inspect_stations.testing import FakeInspector


def folder_config(tmp: Path, until_empty: bool = True, **source):
    """A folder station ``folder`` on ``tmp/inbox`` (made), taking files at once."""
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


def files_in(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


class StationLogs:
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


@contextmanager
def running(station: Station) -> Iterator[StationLogs]:
    """``station`` run in a thread while the block runs, its log by event captured; stopped
    and waited for when the block ends, even when the block fails."""
    t = threading.Thread(target=station.run, kwargs={"install_signals": False}, daemon=True)
    with StationLogs() as logs:
        t.start()
        try:
            yield logs
        finally:
            station.stop()
            t.join(60)


def start(station: Station) -> threading.Thread:
    """Run ``station`` in a thread; its exit code is the thread's ``code`` once it ends."""
    t = threading.Thread(target=lambda: setattr(t, "code", station.run(install_signals=False)))
    t.start()
    return t


def archived(tmp: Path) -> int:
    return sum(1 for p in (tmp / "archive").rglob("*.png"))


def pending(tmp: Path) -> int:
    """Rows in ``tmp/state/journal.sqlite`` waiting for a sink."""
    con = sqlite3.connect(tmp / "state" / "journal.sqlite")
    try:
        return con.execute("SELECT count(*) FROM journal").fetchone()[0]
    finally:
        con.close()


def journal_config(tmp: Path, **station):
    """A folder station ``outage`` without a database (the test hands it sinks), retrying a
    failed sink every 0.1 s."""
    (tmp / "inbox").mkdir(exist_ok=True)
    return parse_config(
        {
            "station": {
                "name": "outage",
                "plugin": "tiny",
                "recipe": "tiny",
                "journal_retry_s": 0.1,
                **station,
            },
            "source": {"type": "folder", "path": "inbox", "stable_s": 0.0, "poll_s": 0.05},
            "database": {"enabled": False},
        },
        tmp,
    )
