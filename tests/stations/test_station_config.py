"""Station configuration: TOML -> dataclasses, overrides onto the recipe, and
`inspect station check` reporting every problem with its key."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from inspect_core.runtime.recipe import Recipe
from inspect_stations.config.station import ConfigError, load_config, parse_config
from inspect_stations.pipeline.daemon import Station
from inspect_stations.pipeline.status import format_status, read_status
from inspect_stations.testing import MemorySink, recipe_file, write_images

INSPECT = str(Path(sys.executable).with_name("inspect"))

FULL = """
[station]
name = "line1-steel"
recipe_file = "tiny.toml"
batch = 2

[overrides]
pixel_size_mm = 0.08
[overrides.rule_params.min_area]
min = 60
[[overrides.add_rules]]
type = "roi"
polygon = [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]
classes = ["scratch"]
decision = "REVIEW"

[source]
type = "folder"
path = "inbox"
after = "archive"
stable_s = 0.0

[database]
url = "sqlite:///records/line1.db"

[archive]
path = "out/archive"
quarantine = "out/quarantine"

[limits]
max_pixels = 20_000_000
extensions = [".png", ".PNG", ".jpg"]

[mqtt]
host = "127.0.0.1"
result_topic = "line1/result"

[[sinks]]
type = "mqtt"
topic = "plant/results"
"""


@pytest.fixture
def cli():
    from inspect_core.cli import cli as root
    from inspect_core.plugin_api.manager import load_cli_plugins

    if "station" not in root.commands:
        load_cli_plugins(root)
    return root


def test_a_full_config_parses_with_paths_relative_to_the_file(tmp_path):
    (tmp_path / "station.toml").write_text(FULL)
    cfg = load_config(tmp_path / "station.toml")
    assert cfg.name == "line1-steel" and cfg.plugin == "local" and cfg.batch == 2
    assert cfg.recipe_file == tmp_path / "tiny.toml"
    assert cfg.folder.path == tmp_path / "inbox" and cfg.archive == tmp_path / "out" / "archive"
    assert cfg.database_url == f"sqlite:///{tmp_path / 'records' / 'line1.db'}"
    assert cfg.limits.extensions == [".png", ".png", ".jpg"]
    assert cfg.mqtt.result_topic == "line1/result" and cfg.sinks[0]["topic"] == "plant/results"


def test_overrides_map_onto_the_recipe(tmp_path, tiny_model):
    (tmp_path / "inbox").mkdir()
    write_images(tmp_path / "inbox", 2, seed=71)
    recipe = Recipe(
        name="tiny",
        model=tiny_model,
        pixel_size_mm=0.5,
        rules=[{"type": "min_area", "min": 1}, {"type": "review_band"}],
    )
    cfg = parse_config(
        {
            "station": {"name": "ovr", "plugin": "tiny", "recipe": "tiny", "until_empty": True},
            "overrides": {
                "pixel_size_mm": 0.08,
                "rule_params": {"min_area": {"min": 60}},
                "add_rules": [{"type": "roi", "polygon": [[0, 0], [1, 0], [1, 1]]}],
            },
            "source": {"type": "folder", "path": "inbox", "stable_s": 0.0},
        },
        tmp_path,
    )
    sink = MemorySink()
    station = Station(cfg, recipe=recipe, sinks={"db": sink})
    assert station.recipe.pixel_size_mm == 0.08
    assert [r["type"] for r in station.recipe.rules] == ["min_area", "review_band", "roi"]
    assert station.recipe.rules[0]["min"] == 60 and recipe.rules[0]["min"] == 1
    assert station.run(install_signals=False) == 0
    th = sink.items[0].thresholds
    assert th["pixel_size_mm"] == 0.08 and th["rules"][0]["min"] == 60


def test_structural_problems_are_all_reported_with_their_keys(tmp_path, cli):
    (tmp_path / "bad.toml").write_text("""
[station]
plugin = "industrial"
recipe = "steel"
batch = 0
colour = "blue"

[source]
type = "folder"
pth = "inbox"
stable_s = "fast"

[limits]
sixteen_bit = "maybe"

[mqtt]
port = 70000
""")
    res = CliRunner().invoke(cli, ["station", "check", str(tmp_path / "bad.toml"), "--json"])
    assert res.exit_code == 2
    problems = {p["key"]: p["message"] for p in json.loads(res.output)["problems"]}
    assert "did you mean 'path'" in problems["source.pth"]
    assert problems["station.name"].startswith("required")
    assert "greater than 0" in problems["station.batch"]
    assert "unknown key" in problems["station.colour"]
    assert "must be a number" in problems["source.stable_s"]
    assert "required" in problems["source.path"]
    assert "'refuse', 'scale'" in problems["limits.sixteen_bit"]
    assert "TCP port" in problems["mqtt.port"]


def test_deeper_problems_are_reported_with_their_keys(tmp_path, tiny_model, cli):
    recipe_file(tmp_path, tiny_model)
    (tmp_path / "deep.toml").write_text("""
[station]
name = "deep"
recipe_file = "tiny.toml"
[overrides.rule_params.max_count]
max = 3
[source]
type = "folder"
path = "no_such_inbox"
[database]
url = "mysql://root@db/line"
[mqtt]
trigger_topic = "line/trigger"
[[sinks]]
type = "kafka"
""")
    res = CliRunner().invoke(cli, ["station", "check", str(tmp_path / "deep.toml")])
    assert res.exit_code == 2
    out = res.output
    for key, words in (
        ("overrides", "has no rule 'max_count'"),
        ("source.path", "does not exist"),
        ("database.url", "mysql:// is not supported"),
        ("mqtt.trigger_topic", "takes no triggers"),
        ("sinks[0].type", "no sink named 'kafka'"),
    ):
        assert f"{key}: " in out and words in out, (key, out)


def test_check_ok_and_toml_syntax_errors(tmp_path, tiny_model, cli):
    recipe_file(tmp_path, tiny_model)
    (tmp_path / "inbox").mkdir()
    (tmp_path / "ok.toml").write_text(
        '[station]\nname = "ok"\nrecipe_file = "tiny.toml"\n[source]\npath = "inbox"\n'
    )
    res = CliRunner().invoke(cli, ["station", "check", str(tmp_path / "ok.toml")])
    assert res.exit_code == 0 and "OK - station ok" in res.output
    (tmp_path / "broken.toml").write_text('[station]\nname = "x\n')
    res = CliRunner().invoke(cli, ["station", "check", str(tmp_path / "broken.toml")])
    assert res.exit_code == 2 and "not valid TOML" in res.output and "line 2" in res.output


def test_environment_variables_in_the_database_url(tmp_path, monkeypatch):
    raw = {
        "station": {"name": "env", "plugin": "p", "recipe": "r"},
        "source": {"type": "folder", "path": "inbox"},
        "database": {"url": "postgresql://line:${LINE_DB_PASSWORD}@db/line"},
    }
    monkeypatch.setenv("LINE_DB_PASSWORD", "s3cret")
    assert parse_config(raw, tmp_path).database_url == "postgresql://line:s3cret@db/line"
    monkeypatch.delenv("LINE_DB_PASSWORD")
    with pytest.raises(ConfigError, match="LINE_DB_PASSWORD is not set"):
        parse_config(raw, tmp_path)


def test_shortcut_with_an_unknown_plugin_says_what_is_installed(tmp_path):
    (tmp_path / "inbox").mkdir()
    res = subprocess.run(
        [
            INSPECT,
            "station",
            "run",
            "--plugin",
            "nosuch",
            "--recipe",
            "x",
            "--watch",
            str(tmp_path / "inbox"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2
    assert "no plugin or domain named 'nosuch'" in res.stderr
    res = subprocess.run([INSPECT, "station", "run"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "--watch" in res.stderr


def test_status_text(tmp_path):
    from inspect_stations.pipeline.status import StatusBoard

    b = StatusBoard("s1", "industrial", "steel", tmp_path)
    b.inspected("a.png", "PASS")
    b.inspected("b.png", "ERROR", "file is empty (0 bytes)")
    b.extra.update(
        queue_depth=7,
        in_flight=2,
        journal_pending=3,
        sinks=[
            {
                "name": "sql",
                "up": False,
                "down_since": time.time() - 5,
                "last_error": "connection refused",
            }
        ],
    )
    b.write(force=True)
    d = read_status(tmp_path)
    assert d["running"] and d["queue_depth"] == 7 and d["verdicts"] == {"PASS": 1, "ERROR": 1}
    text = format_status(d)
    for words in (
        "7 waiting, 2 in flight",
        "ERROR 1, PASS 1",
        "3 result(s) waiting",
        "sink sql: DOWN since",
        "connection refused",
        "b.png: file is empty",
    ):
        assert words in text, words


def test_the_shipped_example_config_is_valid(tmp_path):
    import inspect_stations

    example = Path(inspect_stations.__file__).with_name("example.toml")
    cfg = load_config(example)
    assert cfg.name == "line1-steel" and cfg.plugin == "industrial" and cfg.recipe == "steel"
    assert cfg.overrides == {"pixel_size_mm": 0.1, "rule_params": {"min_area": {"min": 60}}}
    assert cfg.folder.path == example.parent / "inbox"


def test_check_refuses_an_inbox_that_holds_the_station_s_own_files(tmp_path, cli):
    """Watching the config's own folder (path = ".") with the state and database beside it:
    the station would take station.toml, its journal and its database for bad images and move
    them to quarantine. `check` (and `run`) must say so, with the keys."""
    (tmp_path / "station.toml").write_text(
        '[station]\nname = "x"\nplugin = "p"\nrecipe = "r"\nstate_dir = "."\n'
        '[source]\ntype = "folder"\npath = "."\n'
        '[database]\nurl = "sqlite:///records.db"\n'
        '[archive]\npath = "sub/archive"\n'
    )
    res = CliRunner().invoke(cli, ["station", "check", str(tmp_path / "station.toml"), "--json"])
    keys = {p["key"]: p["message"] for p in json.loads(res.output)["problems"]}
    assert res.exit_code == 2
    assert "watched folder itself" in keys["station.state_dir"]
    assert "records.db" in keys["database.url"] and "quarantine" in keys["database.url"]
    assert "configuration file" in keys["source.path"]
    assert "archive.path" not in keys  # a sub-folder of the inbox is fine
    with pytest.raises(ConfigError, match="station.state_dir"):
        load_config(tmp_path / "station.toml")


def test_status_and_replay_read_a_config_the_station_now_refuses(tmp_path, cli):
    """An operator must always see what a station did: `status` and `replay` read only the
    state folder from CONFIG, so junk that has since landed in the inbox (the station refuses
    such a config) or a mistyped key elsewhere does not hide the status."""
    from inspect_stations.config.paths import FOREIGN_MIN
    from inspect_stations.pipeline.journal import Journal
    from inspect_stations.pipeline.status import StatusBoard

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for i in range(FOREIGN_MIN):
        (inbox / f"notes{i}.txt").write_text("x")
    (tmp_path / "station.toml").write_text(
        '[station]\nname = "s1"\nplugin = "p"\nrecipe = "r"\nstate_dir = "state"\nbach = 2\n'
        '[source]\ntype = "folder"\npath = "inbox"\n'
    )
    with pytest.raises(ConfigError, match="does not look like an inbox"):
        load_config(tmp_path / "station.toml")
    (tmp_path / "state").mkdir()
    b = StatusBoard("s1", "industrial", "steel", tmp_path / "state")
    b.inspected("a.png", "PASS")
    b.write(force=True)
    Journal(tmp_path / "state" / "journal.sqlite").close()
    res = CliRunner().invoke(cli, ["station", "status", str(tmp_path / "station.toml")])
    assert res.exit_code == 0 and "station   s1" in res.output and "PASS 1" in res.output
    res = CliRunner().invoke(cli, ["station", "replay", str(tmp_path / "station.toml")])
    assert res.exit_code == 0 and "no dead letters" in res.output, res.output
    # the state folder itself must be readable from the file: else say which key is wrong
    (tmp_path / "station.toml").write_text("[station]\nstate_dir = 3\n")
    res = CliRunner().invoke(cli, ["station", "status", str(tmp_path / "station.toml")])
    assert res.exit_code != 0 and "station.state_dir" in res.output + str(res.exception)


@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_an_infinite_or_nan_limit_is_refused(tmp_path, value):
    """`max_work_mpx = inf` would switch the work limit off without saying so."""
    from inspect_stations.config.station import ConfigError

    text = FULL.replace("[limits]\n", f"[limits]\nmax_work_mpx = {value}\n", 1)
    (tmp_path / "station.toml").write_text(text)
    with pytest.raises(ConfigError, match=r"limits\.max_work_mpx: must be a finite number"):
        load_config(tmp_path / "station.toml")
