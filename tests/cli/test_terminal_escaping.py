"""Data printed for a person (file names, station, plugin and class names, error messages) is
printed literally: never read as rich markup, never steering the terminal with escape
sequences, never splitting into a second (forged) line of a log or an error."""

from __future__ import annotations

import io
import json
import logging
import sys
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from inspect_core.errors import InspectError
from inspect_core.text import indent_continuation, markup_safe, rich_text, terminal_text

FORGED = "a.png\n2026-01-01 12:00:00 ERROR   [line1] fake"


def test_terminal_text_escapes_what_could_steer_a_terminal_or_split_a_line():
    assert terminal_text("x\x1b[31mred.png") == "x\\x1b[31mred.png"
    assert terminal_text("a\nb\rc\td\x00e\x7ff\x9bg") == "a\\nb\\rc\\td\\x00e\\x7ff\\x9bg"
    assert terminal_text("\u202egnp.exe \u2028x") == "\\u202egnp.exe \\u2028x"
    assert terminal_text("plain [bold]ü ñ 漢字 back\\slash") == "plain [bold]ü ñ 漢字 back\\slash"
    assert terminal_text(None) == "" and terminal_text(3) == "3"
    assert terminal_text("a\nb\x1b", keep_newlines=True) == "a\nb\\x1b"


def test_invisible_format_characters_are_escaped_too():
    """Every format, separator and control character (Unicode Cc, Cf, Zl, Zp) shows as an
    escape: a zero-width space (two names that look the same), a byte-order mark, the Arabic
    letter mark (a bidi control), a soft hyphen; a byte of an undecodable file name
    (surrogateescape) shows as that byte. Visible text of any script is left alone."""
    assert terminal_text("P-77\u200b") == "P-77\\u200b"
    assert terminal_text("\ufeffid") == "\\ufeffid"
    assert terminal_text("a\u061cb\u2066c\u00adx") == "a\\u061cb\\u2066c\\xadx"
    assert terminal_text("x\U000e0001y") == "x\\U000e0001y"  # a tag character (Cf)
    assert terminal_text("bad\udcffname") == "bad\\xffname"
    assert terminal_text("a\u2029b\u0085c") == "a\\u2029b\\x85c"
    shown = "Grüße Ωμέγα 漢字 עברית العربية \u00a0nbsp \ue000"
    assert terminal_text(shown) == shown


def test_rich_helpers_print_markup_literally():
    from rich.console import Console

    con = Console(file=io.StringIO(), width=200, color_system=None)
    con.print(rich_text("[bold red]x.png"), rich_text("a[/b]c.jpg"))
    con.print(f"[bold]name[/bold] {markup_safe('a[/b]c.jpg')} {markup_safe('[red]x')}")
    out = con.file.getvalue()
    assert "[bold red]x.png a[/b]c.jpg" in out and "name a[/b]c.jpg [red]x" in out


def test_indent_continuation_keeps_extra_lines_from_passing_for_their_own():
    assert (
        indent_continuation("error: x\nerror: fake\n  key: y")
        == "error: x\n  error: fake\n  key: y"
    )


# -- station log lines ------------------------------------------------------------------------
def station_log(json_lines: bool):
    from inspect_stations.logs import StationLog, setup_logging

    buf = io.StringIO()
    logger = setup_logging(json_lines=json_lines, stream=buf)
    return StationLog("line\x1b[2J1", logger), buf


def test_a_file_name_cannot_forge_a_text_log_line():
    log, buf = station_log(json_lines=False)
    try:
        log.error("file_failed", f"cannot archive {FORGED} x\x1b[31mred.png [bold]b.png")
        raise_and_log(log)
    finally:
        logging.getLogger("inspect.station").handlers.clear()
    lines = buf.getvalue().splitlines()
    assert "\x1b" not in buf.getvalue()
    assert lines[0].endswith(
        "cannot archive a.png\\n2026-01-01 12:00:00 ERROR   [line1] fake "
        "x\\x1b[31mred.png [bold]b.png"
    )
    assert "[line\\x1b[2J1]" in lines[0]
    assert lines[1].endswith("failed on a.png\\n2026-01-01 fake")  # the message: one line
    assert lines[2] == "  Traceback (most recent call last):"  # its own lines, indented
    assert lines[-2:] == ["  ValueError: bad name a.png", "  2026-01-01 fake"]
    assert all(ln.startswith(" ") for ln in lines[2:])  # only records start at the margin


def raise_and_log(log) -> None:
    try:
        raise ValueError("bad name a.png\n2026-01-01 fake")
    except ValueError:
        log.error("failed", "failed on a.png\n2026-01-01 fake", exc_info=True)


def test_json_log_lines_stay_one_line_and_keep_the_name():
    log, buf = station_log(json_lines=True)
    try:
        log.error("file_failed", f"cannot archive {FORGED}", source=FORGED)
        raise_and_log(log)
    finally:
        logging.getLogger("inspect.station").handlers.clear()
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2 and "\x1b" not in buf.getvalue()
    first = json.loads(lines[0])
    assert first["msg"] == f"cannot archive {FORGED}" and first["source"] == FORGED
    assert first["station"] == "line\x1b[2J1"
    assert "bad name" in json.loads(lines[1])["exception"]


# -- inspect plugins ----------------------------------------------------------------------------
def test_plugins_listing_prints_hostile_names_literally(monkeypatch):
    from inspect_core.commands import plugins as mod

    listing = [
        {
            "plugin": "[bold]evil",
            "version": "1[/]",
            "module": "m",
            "rules": [],
            "sources": [],
            "sinks": [],
            "failures": [],
            "domains": [
                {
                    "name": "d\x1b[31m",
                    "recipes": [
                        {
                            "name": "r\nx",
                            "model": "/m/[i]a.onnx",
                            "sha256": "ab" * 32,
                            "classes": ["[/]", "dent"],
                        }
                    ],
                }
            ],
        },
        {
            "plugin": "[red]extra",
            "version": "2",
            "module": "n",
            "domains": [],
            "rules": ["[/x]"],
            "sources": [],
            "sinks": [],
            "failures": [],
        },
    ]
    failure = SimpleNamespace(plugin="[bad]", reason="import failed\x1b[2J\nforged line")
    monkeypatch.setattr(mod, "plugin_listing", lambda: listing)
    monkeypatch.setattr(mod, "get_registry", lambda: SimpleNamespace(failures=[failure]))
    res = CliRunner().invoke(mod.plugins_cmd, [], env={"COLUMNS": "300"})
    assert res.exit_code == 1, repr(res.exception)
    for literal in (
        "[bold]evil",
        "1[/]",
        "d\\x1b[31m",
        "r\\nx",
        "[/], dent",
        "[red]extra",
        "rules: [/x]",
        "/m/[i]a.onnx",
    ):
        assert literal in res.stdout, (literal, res.stdout)
    assert "\x1b" not in res.output
    assert "plugin [bad]: import failed\\x1b[2J\\nforged line" in res.stderr


# -- errors on the command line -------------------------------------------------------------------
def main_exit(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    from inspect_core import cli as cli_mod

    monkeypatch.setenv("INSPECT_PLUGINS", "records")
    monkeypatch.setattr(sys, "argv", ["inspect", *args])
    with pytest.raises(SystemExit) as e:
        cli_mod.main()
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_an_error_naming_a_hostile_file_prints_it_literally_on_one_line(
    monkeypatch, capsys, tmp_path
):
    from test_station_cli_errors import _records_db

    bad = tmp_path / "no" / "[bold]x\x1b[31m\nerror: fake.csv"
    _records_db(f"sqlite:///{tmp_path / 'r.db'}")
    code, out, err = main_exit(
        monkeypatch, capsys, "report", "--db", f"sqlite:///{tmp_path / 'r.db'}", "--csv", str(bad)
    )
    assert code == 2
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert "[bold]x\\x1b[31m\\nerror: fake.csv: cannot write it" in err


def test_multiline_errors_keep_their_lines_but_extra_lines_are_indented(monkeypatch, capsys):
    from inspect_core import cli as cli_mod

    class Problems(InspectError):
        multiline = True

    def fail():
        raise Problems("config.toml: 2 problems:\n  a: x\x1b[2J\nerror: forged\n  b: y")

    monkeypatch.setattr(cli_mod, "cli", SimpleNamespace(main=lambda **kw: fail()))
    monkeypatch.setattr("inspect_core.plugin_api.manager.load_cli_plugins", lambda cli: None)
    with pytest.raises(SystemExit) as e:
        cli_mod.main()
    err = capsys.readouterr().err
    assert e.value.code == 2
    assert err.splitlines() == [
        "error: config.toml: 2 problems:",
        "  a: x\\x1b[2J",
        "  error: forged",
        "  b: y",
    ]


# -- progress output ------------------------------------------------------------------------------
def test_training_log_lines_are_escaped(monkeypatch, capsys):
    from inspect_core.commands.progress import train_progress

    with train_progress() as (log, progress):
        log("[bold]data\x1b[31m: 3 train / 1 val\nfake")
        log(json.dumps({"epoch": 1, "note": "x" * 300}))
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "[bold]data\\x1b[31m: 3 train / 1 val\\nfake"
    assert len(err) == 2 and json.loads(err[1])["note"] == "x" * 300  # not wrapped at 80


def _bar_on_a_terminal(monkeypatch):
    """inspect_core.commands.progress with stderr taken for a terminal and its bar drawn into
    a buffer (returned beside the module)."""
    from rich.console import Console

    from inspect_core.commands import progress as mod

    buf = io.StringIO()
    monkeypatch.setattr(mod.sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(
        mod,
        "Console",
        lambda **kw: Console(file=buf, width=200, force_terminal=True, color_system=None),
    )
    return mod, buf


def test_item_progress_label_is_not_markup_or_a_format_string(monkeypatch):
    mod, buf = _bar_on_a_terminal(monkeypatch)
    with mod.item_progress(3, "evaluating [/]{task.fields}\x1b[2J/val") as advance:
        advance()
    assert "evaluating [/]{task.fields}\\x1b[2J/val" in buf.getvalue()


def test_station_status_prints_names_and_errors_on_one_line_each():
    import time

    from inspect_stations.pipeline.status import format_status

    now = time.time()
    d = {
        "station": "line\x1b[2J1",
        "plugin": "p",
        "recipe": "[r]",
        "pid": 1,
        "state": "running",
        "running": True,
        "updated_at": now,
        "started_at": now,
        "verdicts": {"FAIL": 1},
        "sinks": [
            {"name": "sql", "up": False, "down_since": now, "last_error": "cannot use a\nb.db"}
        ],
        "last_verdicts": [{"at": now, "verdict": "FAIL", "source": FORGED}],
        "last_errors": [{"at": now, "source": "x\x1b[31m.png", "error": "bad\rname"}],
    }
    out = format_status(d)
    assert "\x1b" not in out and "\r" not in out
    assert (
        "line\\x1b[2J1" in out
        and "cannot use a\\nb.db" in out
        and "x\\x1b[31m.png: bad\\rname" in out
    )
    assert len([ln for ln in out.splitlines() if "a.png" in ln]) == 1
    assert not any(ln.startswith("2026") for ln in out.splitlines())


def test_what_a_command_prints_under_a_progress_bar_stays_on_stdout(monkeypatch, capsys):
    """`inspect predict --json > out.jsonl` from a terminal: the bar is on stderr, and the
    JSON lines go to the file, not through the bar's console."""
    mod, buf = _bar_on_a_terminal(monkeypatch)
    with mod.item_progress(3, "predicting") as advance:
        print('{"image": "a.png", "verdict": "PASS"}')
        advance()
    assert capsys.readouterr().out == '{"image": "a.png", "verdict": "PASS"}\n'
    assert "a.png" not in buf.getvalue()
