"""Where an image's health goes (issue 25 item 3): ``inspect predict`` (JSON and terminal), the
records (revision 0008, SQLite and PostgreSQL), the MQTT result, a station with its
``[overrides.health]``, and ``inspect health fit`` writing a recipe's limits."""

from __future__ import annotations

import json
import tomllib

import cv2
import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from db_support import make_inspection
from quality_kit import texture
from test_quality_fit import make_dataset

from inspect_core.cli import cli
from inspect_core.commands import predict as predict_mod
from inspect_core.commands.health import health_group
from inspect_core.config.health import HealthSettings, QualityLimits
from inspect_core.health.fit import fit_limits_from_dataset
from inspect_core.runtime.recipe import Recipe
from inspect_core.types import InputHealth, QualityFigures, QualityProblem
from inspect_db.engine import make_engine
from inspect_db.records.recorder import Recorder
from inspect_stations.config.station import ConfigError, parse_config
from inspect_stations.mqtt.trigger import encode, result_message
from inspect_stations.pipeline.daemon import Station
from inspect_stations.testing import MemorySink

LIMITS = QualityLimits(focus_min=0.4)
FIGURES = QualityFigures(0.08, 0.001, 0.0, 121.5, 190.0, 30.25)
PROBLEM = QualityProblem("focus", 0.08, "min", 0.4, "out of focus")


def images(folder):
    folder.mkdir(exist_ok=True)
    sharp, blurred = folder / "sharp.png", folder / "blurred.png"
    cv2.imwrite(str(sharp), texture(128, seed=3))
    cv2.imwrite(str(blurred), cv2.GaussianBlur(texture(128, seed=3), (0, 0), 4))
    return sharp, blurred


@pytest.fixture
def health_recipe(tiny_model, monkeypatch):
    """`inspect predict --plugin p --recipe r` runs the tiny model (no rules) with limits."""
    recipe = Recipe(name="r", model=tiny_model, health=HealthSettings(quality=LIMITS))
    monkeypatch.setattr(predict_mod, "_recipe", lambda *a: recipe)
    return recipe


def test_predict_json_gives_each_image_its_quality(health_recipe, tmp_path):
    sharp, blurred = images(tmp_path / "in")
    args = ["predict", "--plugin", "p", "--recipe", "r", str(sharp), str(blurred)]
    res = CliRunner().invoke(cli, [*args, "--json", "--no-overlay"])
    assert res.exit_code == 3, res.output  # some REVIEW
    good, bad = (json.loads(line) for line in res.stdout.splitlines())
    assert good["verdict"] == "PASS" and good["quality_problems"] == []
    assert good["quality"]["focus"] > 0.4 and good["health_flag"] == "ok"
    assert bad["verdict"] == "REVIEW" and bad["quality"]["focus"] < 0.4
    assert bad["quality_problems"][0].startswith("out of focus: focus ")
    assert bad["fired"][0]["rule"] == "quality"
    for line in (good, bad):  # until the model has a familiarity check
        assert line["unfamiliar"] is None and line["familiarity"] is None
    text = CliRunner().invoke(cli, [*args, "--no-overlay"]).output
    assert "REVIEW" in text and "quality: out of focus: focus" in text


def test_predict_names_a_problem_it_only_records(health_recipe, tmp_path):
    health_recipe.health = HealthSettings(quality=LIMITS, on_problem="record")
    _, blurred = images(tmp_path / "in")
    res = CliRunner().invoke(
        cli, ["predict", "--plugin", "p", "--recipe", "r", str(blurred), "--no-overlay"]
    )
    assert res.exit_code == 0 and "PASS" in res.output
    assert "image: out of focus: focus" in res.output and "the verdict is the model's" in res.output


def test_the_recorder_writes_the_health_columns(db_url):
    with_health = make_inspection(1)
    with_health.health = InputHealth(FIGURES, (PROBLEM,), familiarity=0.75, unfamiliar=False)
    ok = make_inspection(2)
    ok.health = InputHealth(FIGURES)
    with Recorder(db_url) as rec:
        for insp in (with_health, ok, make_inspection(3)):
            assert rec.record(insp)
    engine = make_engine(db_url)
    cols = "focus, mean_level, highlights, clipped_dark, clipped_bright, contrast, familiarity"
    with engine.connect() as c:
        rows = c.execute(
            sa.text(f"SELECT {cols}, health_flag FROM inspection ORDER BY image_sha256")
        ).all()
    engine.dispose()
    assert tuple(rows[0]) == (0.08, 121.5, 190.0, 0.001, 0.0, 30.25, 0.75, "quality")
    assert tuple(rows[1]) == (0.08, 121.5, 190.0, 0.001, 0.0, 30.25, None, "ok")
    assert tuple(rows[2]) == (None,) * 8  # not measured (or recorded before revision 0008)


def test_migration_0008_adds_and_drops_the_columns_keeping_the_records(sqlite_url):
    from alembic import command

    from inspect_db.migrate import alembic_config, head_revision, upgrade

    engine = make_engine(sqlite_url)
    assert upgrade(engine, "0007") == (None, "0007")
    with Recorder(engine=engine) as rec:  # at head again, the old record with NULLs
        assert upgrade(engine) == ("0007", head_revision())
        assert rec.record(make_inspection(1))

    def columns():
        with engine.connect() as c:
            return {r[1] for r in c.execute(sa.text("PRAGMA table_info(inspection)"))}

    assert {"focus", "mean_level", "familiarity", "health_flag"} <= columns()
    with engine.begin() as c:
        cfg = alembic_config()
        cfg.attributes["connection"] = c
        command.downgrade(cfg, "0007")
    assert not {"focus", "contrast", "familiarity", "health_flag"} & columns()
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM inspection")).scalar() == 1
    engine.dispose()


def test_the_mqtt_result_carries_the_health():
    insp = make_inspection(1)
    insp.health = InputHealth(FIGURES, (PROBLEM,))
    msg = json.loads(encode(result_message(insp, "A-1")))
    assert msg["quality"]["focus"] == 0.08 and msg["health_flag"] == "quality"
    assert msg["quality_problems"] == [PROBLEM.message]
    assert (msg["familiarity"], msg["unfamiliar"]) == (None, None)
    bare = json.loads(encode(result_message(make_inspection(2))))
    assert (bare["quality"], bare["quality_problems"], bare["health_flag"]) == (None, [], None)


def station_config(tmp_path, overrides):
    (tmp_path / "inbox").mkdir(exist_ok=True)
    table = {
        "station": {"name": "s", "plugin": "x", "recipe": "x", "until_empty": True},
        "source": {"type": "folder", "path": "inbox", "stable_s": 0.0, "poll_s": 0.02},
        "overrides": overrides,
    }
    return parse_config(table, tmp_path)


def test_a_station_overrides_on_problem_and_records_the_health(tmp_path, tiny_model):
    cfg = station_config(tmp_path, {"health": {"on_problem": "FAIL"}})
    images(tmp_path / "inbox")
    recipe = Recipe(name="r", model=tiny_model, health=HealthSettings(quality=LIMITS))
    sink = MemorySink()
    assert Station(cfg, recipe=recipe, sinks={"db": sink}).run(install_signals=False) == 0
    by_name = {i.source.rsplit("/", 1)[-1]: i for i in sink.items}
    bad, good = by_name["blurred.png"], by_name["sharp.png"]
    assert bad.verdict.decision.value == "FAIL" and bad.verdict.hits[0].rule == "quality"
    assert bad.health is not None and bad.health.flag == "quality"
    assert bad.thresholds["health"]["on_problem"] == "FAIL"
    assert good.verdict.decision.value == "PASS"
    assert good.health is not None and good.health.flag == "ok"


def test_a_station_file_with_a_wrong_health_override_is_refused(tmp_path):
    with pytest.raises(ConfigError) as e:
        station_config(tmp_path, {"health": {"on_problem": "PASS", "qualty": {}}})
    assert "overrides.health.on_problem" in str(e.value)
    assert "did you mean 'quality'" in str(e.value)


def test_health_fit_prints_the_limits_and_writes_them_into_a_recipe(tmp_path, tiny_model):
    data = make_dataset(tmp_path / "data", [texture(64, seed=s) for s in range(24)])
    recipe = tmp_path / "r.toml"
    head = f'name = "r"\nmodel = "{tiny_model}"\n\n[health]\non_problem = "FAIL"\n'
    samples = '\n[[samples]]\nimage = "a.png"\nexpected = "PASS"\n'
    recipe.write_text(head + samples)
    runner = CliRunner()
    res = runner.invoke(health_group, ["fit", "--data", str(data), "--write", str(recipe)])
    assert res.exit_code == 0, res.output
    table = tomllib.loads(res.stdout)["health"]["quality"]
    fitted = fit_limits_from_dataset(data).model_dump(exclude_none=True)
    assert table == pytest.approx(fitted, rel=1e-3) and set(table) == set(fitted)
    written = tomllib.loads(recipe.read_text())
    assert written["health"] == {"on_problem": "FAIL", "quality": table}
    assert written["samples"] == [{"image": "a.png", "expected": "PASS"}]
    loaded = Recipe.from_toml(recipe)
    assert loaded.health is not None and loaded.health.quality == QualityLimits(**table)
    # fitted again: the table is replaced, not added twice
    res = runner.invoke(
        health_group, ["fit", "--data", str(data), "--share", "0.1", "--write", str(recipe)]
    )
    assert res.exit_code == 0, res.output
    assert recipe.read_text().count("[health.quality]") == 1
    assert (
        tomllib.loads(recipe.read_text())["health"]["quality"]
        == tomllib.loads(res.stdout)["health"]["quality"]
    )


def test_health_fit_on_too_few_images_says_what_to_do(tmp_path):
    data = make_dataset(tmp_path / "data", [np.full((32, 32), 100, np.uint8)] * 3)
    res = CliRunner().invoke(health_group, ["fit", "--data", str(data)])
    assert res.exit_code != 0
    assert "at least 20" in str(res.exception) or "at least 20" in res.output


def test_inspect_health_is_a_command_of_inspect():
    from click.testing import CliRunner

    from inspect_core.cli import cli

    res = CliRunner().invoke(cli, ["health", "fit", "--help"])
    assert res.exit_code == 0 and "[health.quality]" in res.output
