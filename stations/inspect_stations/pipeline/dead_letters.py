"""Dead letters: journal rows a sink refused for their content, set aside with the reason.

They live in the journal's ``dead`` table (:mod:`inspect_stations.pipeline.journal`); ``inspect
station
status`` reads them (:func:`read_dead_letters`, read-only, while the station runs) and
``inspect station replay`` puts them back in line.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path
from typing import Any

DEAD_SHOWN = 5  # dead letters listed by status (newest first)


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """A result a sink refused (see the ``dead`` table)."""

    seq: int
    sink: str
    failed_at: float
    reason: str
    source: str | None = None  # from the result, when it can be read
    part_id: str | None = None


@dataclasses.dataclass(frozen=True)
class DeadLetters:
    """How many results are set aside, per sink, and the newest few."""

    count: int = 0
    by_sink: dict[str, int] = dataclasses.field(default_factory=dict)
    latest: list[DeadLetter] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "by_sink": dict(self.by_sink),
            "latest": [dataclasses.asdict(d) for d in self.latest],
        }


def dead_letters_of(db: sqlite3.Connection, limit: int = DEAD_SHOWN) -> DeadLetters:
    """The dead letters in an open journal."""
    by_sink = dict(db.execute("SELECT sink, count(*) FROM dead GROUP BY sink"))
    latest = []
    for seq, sink, at, reason, payload in db.execute(
        "SELECT seq, sink, failed_at, reason, payload FROM dead ORDER BY failed_at DESC, "
        "seq DESC LIMIT ?",
        (limit,),
    ):
        try:
            d = json.loads(payload)
            source, part = str(d.get("source")), d.get("part_id")
        except (ValueError, AttributeError):
            source, part = None, None
        latest.append(
            DeadLetter(seq, sink, at, reason, source, None if part is None else str(part))
        )
    return DeadLetters(sum(by_sink.values()), by_sink, latest)


def read_dead_letters(state_dir: str | Path) -> DeadLetters | None:
    """The dead letters in ``<state_dir>/journal.sqlite``, read-only (the station may be
    running); None when the journal cannot be read."""
    path = Path(state_dir) / "journal.sqlite"
    if not path.is_file():
        return DeadLetters()
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return None
    try:
        return dead_letters_of(db)
    except sqlite3.OperationalError as e:
        return DeadLetters() if "no such table" in str(e) else None
    except sqlite3.Error:
        return None
    finally:
        db.close()
