"""`inspect report` and `inspect db` against hostile data and hostile options: file names that
are spreadsheet formulas, rich markup or terminal escapes; times out of range; a --db file
that is not SQLite. Each ends in an exit code and one line, never a traceback."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import sys
from datetime import datetime

import pytest
from click.testing import CliRunner
from db_support import make_inspection, region

from inspect_core.types import Region
from inspect_db.errors import BadFilter
from inspect_db.records.recorder import Recorder
from inspect_db.reports.cli import report as report_cmd
from inspect_db.reports.filters import ReportFilters, parse_when

FORMULAS = [
    '=HYPERLINK("http://evil","x")',
    "+1+2",
    "-2+3",
    "@SUM(A1)",
    "\tx.png",
    "\rx.png",
    "'quoted.png",
]
MARKUP = [
    "[bold red]x.png",
    "a[/b]c.jpg",
    "x\x1b[31mred.png",
    "a\nb.png",
    "tab\there.png",
    "back\\slash[/].png",
]


def record(
    url: str,
    sources: list[str],
    *,
    station: str = "line-1",
    regions: list[Region] | None = None,
    **fields,
) -> None:
    with Recorder(url) as rec:
        for i, src in enumerate(sources):
            insp = make_inspection(
                i, station=station, verdict="FAIL", regions=regions or [region("scratch", 50 + i)]
            )
            rec.record(dataclasses.replace(insp, source=src, **fields))


def invoke(*args: str, columns: int = 400):
    return CliRunner().invoke(report_cmd, list(args), env={"COLUMNS": str(columns)})


# -- item 6: CSV formula injection ---------------------------------------------------------
def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(sqlite_url, tmp_path):
    record(sqlite_url, FORMULAS, station="=st", part_id="+P1", lot="@L1")
    out = tmp_path / "insp.csv"
    res = invoke("--db", sqlite_url, "--csv", str(out))
    assert res.exit_code == 0, res.output
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")  # a BOM: Excel reads it as UTF-8
    raw = out.read_bytes().decode("utf-8-sig")
    assert '"\'=HYPERLINK(""http://evil"",""x"")"' in raw  # quoted, quotes doubled, ' first
    rows = list(csv.DictReader(out.open(newline="", encoding="utf-8-sig")))
    assert [r["source"] for r in rows] == ["'" + s for s in FORMULAS]
    assert {r["station"] for r in rows} == {"'=st"} and {r["part_id"] for r in rows} == {"'+P1"}
    assert {r["lot"] for r in rows} == {"'@L1"}
    # every cell is quoted, and numbers the program wrote stay numbers
    line = raw.split("\r\n")[1]
    cells = next(csv.reader([line]))
    quoted = io.StringIO()
    csv.writer(quoted, quoting=csv.QUOTE_ALL).writerow(cells)
    assert quoted.getvalue() == line + "\r\n" and line.startswith('"1","')
    assert rows[0]["id"].isdigit() and float(rows[0]["latency_ms"]) == 10.0
    # one leading ' was added to exactly the cells that start with = + - @ tab CR or ':
    # taking it off gives the recorded text back
    assert [r["source"][1:] for r in rows] == FORMULAS


def test_region_csv_neutralises_text_but_keeps_negative_numbers(sqlite_url, tmp_path):
    neg = Region(
        1, "-dent", (-5, -6, 7, 8), 40, (-1.5, -2.25), 0.9, 0.7, [(-5, -6), (2, -6), (2, 2)], None
    )
    record(sqlite_url, ["=cmd|' /C calc'!A0"], regions=[neg])
    out = tmp_path / "reg.csv"
    res = invoke("--db", sqlite_url, "--csv", str(out), "--regions")
    assert res.exit_code == 0, res.output
    (row,) = list(csv.DictReader(out.open(newline="", encoding="utf-8-sig")))
    assert row["source"] == "'=cmd|' /C calc'!A0" and row["class_name"] == "'-dent"
    assert (row["bbox_x"], row["bbox_y"], row["centroid_x"], row["centroid_y"]) == (
        "-5",
        "-6",
        "-1.5",
        "-2.25",
    )


# -- item 7: rich markup and terminal escapes in recorded data ------------------------------
def test_report_prints_hostile_names_literally_on_one_line(sqlite_url):
    record(sqlite_url, MARKUP, station="[red]line[/red]")
    res = invoke("--db", sqlite_url, "--station", "[red]line[/red]")
    assert res.exit_code == 0, repr(res.exception)
    out = res.stdout
    for literal in (
        "[bold red]x.png",
        "a[/b]c.jpg",
        "x\\x1b[31mred.png",
        "a\\nb.png",
        "tab\\there.png",
        "back\\slash[/].png",
        "[red]line[/red]",
    ):
        assert literal in out, (literal, out)
    assert "\x1b" not in out and "\r" not in out
    worst = [ln for ln in out.splitlines() if ".png" in ln or ".jpg" in ln]
    assert len(worst) == len(MARKUP)  # one table line per image: no name split a row


def test_report_survives_markup_in_class_and_recipe_names(sqlite_url):
    record(sqlite_url, ["p.png"], regions=[region("[/]", 30)], recipe="[link=x]r")
    res = invoke("--db", sqlite_url)
    assert res.exit_code == 0, repr(res.exception)
    assert "[/]" in res.stdout and "[link=x]r" in res.stdout


# -- item 14: options and databases that used to end in a traceback -------------------------
@pytest.mark.parametrize(
    "option,value,says",
    [
        ("--since", "99999999999d", "too far back"),
        ("--since", "999999999999999999999999999w", "too far back"),
        ("--until", "0001-01-01T00:00:00+01:00", "out of range"),
        ("--since", "9999-12-31T23:00:00-05:00", "out of range"),
        ("--since", "", "empty"),
        ("--until", "  ", "empty"),
        ("--since", "-5d", "not a time"),
        ("--since", "nan", "not a time"),
        ("--since", "nand", "not a time"),
        ("--since", "infd", "not a time"),
        ("--verdict", "", "empty"),
        ("--verdict", ",", "no verdict in it"),
        ("--verdict", "FAIL,[x]", "unknown verdict"),
        ("--station", "", "empty"),
    ],
)
def test_bad_filters_are_one_line_errors(option, value, says):
    with pytest.raises(BadFilter, match=says) as e:
        ReportFilters.parse(**{option[2:]: value})
    assert "\n" not in str(e.value) and option in str(e.value)


def test_extreme_but_valid_times_work(db_url):
    now = datetime(2025, 11, 24, 12, 0)
    assert parse_when("0001-01-01T00:00:00", now) == datetime(1, 1, 1)
    assert parse_when("0d", now) == now and parse_when("1.5h", now) == datetime(
        2025, 11, 24, 10, 30
    )
    record(db_url, ["a.png"])
    for args in (
        ["--since", "0001-01-01", "--until", "9999-12-31T23:59:59"],
        ["--since", "0001-01-01T00:00:00-01:00"],
        ["--until", "9999-12-31T23:59:59"],
    ):
        res = invoke("--db", db_url, *args, "--json")
        assert res.exit_code == 0, (args, repr(res.exception))
        assert json.loads(res.stdout)["total"] == 1


def main_exit(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """``inspect ARGS`` through the real entry point: (exit code, stdout, stderr)."""
    from inspect_core import cli as cli_mod

    monkeypatch.setenv("INSPECT_PLUGINS", "records")
    monkeypatch.setattr(sys, "argv", ["inspect", *args])
    with pytest.raises(SystemExit) as e:
        cli_mod.main()
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


@pytest.mark.parametrize(
    "args",
    [["report", "--since", "99999999999d"], ["report", "--until", "0001-01-01T00:00:00+01:00"]],
)
def test_out_of_range_times_exit_2_with_one_line(monkeypatch, capsys, sqlite_url, args):
    code, out, err = main_exit(monkeypatch, capsys, *args, "--db", sqlite_url)
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("option", ["--top", "--thumbnails"])
def test_row_counts_beyond_a_sql_limit_are_usage_errors(monkeypatch, capsys, sqlite_url, option):
    code, out, err = main_exit(
        monkeypatch, capsys, "report", "--db", sqlite_url, option, str(10**30)
    )
    assert code == 2 and "Traceback" not in err and option in err, err


@pytest.mark.parametrize(
    "content",
    [bytes(range(256)) * 20, b"hello, not a database\n", b"SQLite format 3\x00" + b"\xff" * 2000],
)
@pytest.mark.parametrize("command", [["report"], ["db", "upgrade"], ["db", "current"]])
def test_a_db_file_that_is_not_sqlite_is_one_line_exit_2(
    monkeypatch, capsys, tmp_path, content, command
):
    bad = tmp_path / "records.db"
    bad.write_bytes(content)
    code, out, err = main_exit(monkeypatch, capsys, *command, "--db", f"sqlite:///{bad}")
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert str(bad) in err and "not an SQLite database" in err
    assert bad.read_bytes() == content  # left as it was


def test_a_damaged_sqlite_database_is_one_line_exit_2(monkeypatch, capsys, tmp_path):
    import sqlite3

    path = tmp_path / "records.db"
    url = f"sqlite:///{path}"
    record(url, [f"p{i}.png" for i in range(60)])
    with sqlite3.connect(path) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    page = 4096  # keep page 1 (the schema); overwrite every other page
    data[page:] = b"\xa5" * (len(data) - page)
    path.write_bytes(bytes(data))
    code, out, err = main_exit(monkeypatch, capsys, "report", "--db", url)
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert str(path) in err and "damaged" in err and ".recover" in err
