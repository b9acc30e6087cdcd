"""What a line already has still loads after the restructure (issue 23): a records database and
a station journal written by the code before it (tests/fixtures/before_structure/README.md)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "before_structure"
EXPECTED = {"PASS": 1, "FAIL": 2}


def _inspect(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys; sys.argv = ['inspect'] + sys.argv[1:]; "
        "from inspect_core.cli import main; main()"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def _verdicts(db: Path, cwd: Path) -> dict[str, int]:
    run = _inspect("report", "--json", "--db", f"sqlite:///{db}", cwd=cwd)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout)
    assert report["total"] == 3
    return {k: v for k, v in report["verdicts"].items() if v}


def test_a_records_database_from_before_reads_the_same_after_inspect_db_upgrade(tmp_path):
    """The fixture is at schema 0006; the drawn marks (0007) came after it: the report asks
    for the upgrade in one line, and reads the same records after it."""
    db = tmp_path / "records.db"
    shutil.copy(FIXTURES / "records.db", db)
    before = _inspect("report", "--json", "--db", f"sqlite:///{db}", cwd=tmp_path)
    assert before.returncode != 0 and "inspect db upgrade" in before.stderr
    assert "Traceback" not in before.stderr
    upgrade = _inspect("db", "upgrade", "--db", f"sqlite:///{db}", cwd=tmp_path)
    assert upgrade.returncode == 0, upgrade.stderr[-2000:]
    assert _verdicts(db, tmp_path) == EXPECTED


def test_a_journal_from_before_is_delivered_by_todays_station(tmp_path):
    """The journal holds three results its station could not deliver; today's station, started
    on that state folder, writes them into the database and nothing else."""
    (tmp_path / "state").mkdir()
    shutil.copy(FIXTURES / "journal.sqlite", tmp_path / "state" / "journal.sqlite")
    (tmp_path / "inbox").mkdir()
    (tmp_path / "dbdir").mkdir()
    (tmp_path / "station.toml").write_text(
        '[station]\nname = "before"\nplugin = "industrial"\nrecipe = "steel"\n'
        '[source]\ntype = "folder"\npath = "inbox"\nstable_s = 0.0\npoll_s = 0.05\n'
        '[database]\nurl = "sqlite:///dbdir/records.db"\n'
    )
    run = _inspect("station", "run", "station.toml", "--until-empty", cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert _verdicts(tmp_path / "dbdir" / "records.db", tmp_path) == EXPECTED
