"""End to end: ``inspect predict --record`` fills the database, ``inspect report`` agrees."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from conftest import make_tiny_model

from inspect_db.engine import make_engine


@pytest.fixture(scope="module")
def finding_model(tmp_path_factory):
    """The tiny random U-Net; seed 1 finds regions in the test images (seed 0 finds none)."""
    return make_tiny_model(tmp_path_factory.mktemp("model") / "tiny1.onnx", seed=1)


@pytest.fixture(scope="module")
def cli():
    from inspect_core.cli import cli
    from inspect_core.plugin_api.manager import load_cli_plugins

    load_cli_plugins(cli)
    assert "report" in cli.commands and "db" in cli.commands
    return cli


@pytest.fixture
def images(tmp_path, gray_image):
    folder = tmp_path / "images"
    folder.mkdir()
    for k in range(4):
        img = np.roll(gray_image, 9 * k, axis=1).astype(np.int16) + 12 * k
        cv2.imwrite(str(folder / f"part{k}.png"), img.clip(0, 255).astype(np.uint8))
    (folder / "broken.png").write_bytes(b"not a png")  # an ERROR inspection
    return folder


def db_counts(url: str) -> tuple[int, dict[str, int], int]:
    engine = make_engine(url)
    with engine.connect() as c:
        total = c.execute(sa.text("SELECT count(*) FROM inspection")).scalar_one()
        by = dict(
            c.execute(sa.text("SELECT verdict, count(*) FROM inspection GROUP BY verdict")).all()
        )
        regions = c.execute(sa.text("SELECT count(*) FROM region")).scalar_one()
    engine.dispose()
    return total, by, regions


def test_predict_record_then_report(cli, db_url, images, finding_model, tmp_path):
    runner = CliRunner()
    args = [
        "predict",
        str(images),
        "--model",
        str(finding_model),
        "--record",
        "--db",
        db_url,
        "--out",
        str(tmp_path / "overlays"),
        "--json",
    ]
    res = runner.invoke(cli, args)
    assert res.exit_code == 5, res.output  # some image could not be read
    printed = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert len(printed) == 5

    total, by_verdict, regions = db_counts(db_url)
    assert total == 5 and by_verdict.get("ERROR") == 1
    assert regions > 0  # the tiny model finds something, so the Pareto is not trivially empty
    res = runner.invoke(cli, ["report", "--json", "--db", db_url])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["total"] == total
    assert {k: v for k, v in rep["verdicts"].items() if v} == by_verdict
    assert [s["station"] for s in rep["stations"]] == ["cli"]
    assert rep["stations"][0]["total"] == total
    assert sum(p["regions"] for p in rep["pareto"]) == regions
    assert {p["class"] for p in rep["pareto"]} <= {"scratch", "dent"}
    assert all(w["overlay_path"] for w in rep["worst"]) and rep["worst"]
    assert sum(b["total"] for b in rep["timeline"]["rows"]) == total
    assert rep["latency_ms"]["count"] == total and rep["latency_ms"]["p50"] > 0
    expected = [p["verdict"] for p in printed]
    assert sorted(expected) == sorted(v for v, n in by_verdict.items() for _ in range(n))

    # predicting the same images again (a retry) records nothing new
    assert runner.invoke(cli, args).exit_code == 5
    assert db_counts(db_url) == (total, by_verdict, regions)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "inspect_core.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_bad_input_exits_2_with_a_clear_message(tmp_path):
    res = run_cli("report", "--db", "postgresql://postgres@127.0.0.1:1/inspect")
    assert res.returncode == 2 and "cannot use database" in res.stderr, res.stderr
    assert "127.0.0.1:1/inspect" in res.stderr and "INSPECT_DATABASE_URL" in res.stderr
    url = f"sqlite:///{tmp_path / 'x.db'}"
    res = run_cli("report", "--db", url)  # a mistyped --db: reported, nothing created
    assert res.returncode == 2 and "x.db does not exist: check --db" in res.stderr, res.stderr
    assert not (tmp_path / "x.db").exists()
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    sa.create_engine(empty).connect().close()  # a database file with nothing of inspect's
    res = run_cli("report", "--db", empty)
    assert res.returncode == 2 and "holds no inspect records" in res.stderr, res.stderr
    assert run_cli("db", "upgrade", "--db", url).returncode == 0
    res = run_cli("report", "--db", url, "--since", "a while")
    assert res.returncode == 2 and "--since 'a while': not a time" in res.stderr, res.stderr
    res = run_cli("report", "--db", url, "--station", "line-9")
    assert res.returncode == 2 and "no such station" in res.stderr, res.stderr
    engine = make_engine(url)
    with engine.begin() as c:
        c.execute(sa.text("UPDATE alembic_version SET version_num = '0000'"))
    engine.dispose()
    res = run_cli("report", "--db", url)
    assert res.returncode == 2 and "schema revision 0000" in res.stderr, res.stderr


def test_predict_record_registers_the_model_card(cli, db_url, images, finding_model, tmp_path):
    """The card beside the model (what `inspect train` writes) reaches the model row."""
    import shutil

    from inspect_core.cards import sha256_file

    model = tmp_path / "m" / "model.onnx"
    model.parent.mkdir()
    shutil.copy(finding_model, model)
    card = {
        "sha256": sha256_file(model),
        "classes": ["background", "scratch", "dent"],
        "validation": {"miou": 0.5},
    }
    model.with_suffix(".json").write_text(json.dumps(card))
    res = CliRunner().invoke(
        cli,
        [
            "predict",
            str(images / "part0.png"),
            "--model",
            str(model),
            "--record",
            "--db",
            db_url,
            "--no-overlay",
            "--json",
        ],
    )
    assert res.exit_code in (0, 4), res.output
    line = json.loads(res.stdout.splitlines()[0])
    assert line["model_card"] == str(model.with_suffix(".json"))
    engine = make_engine(db_url)
    with engine.connect() as c:
        sha, version, stored = c.execute(sa.text("SELECT sha256, version, card FROM model")).one()
    engine.dispose()
    stored = json.loads(stored) if isinstance(stored, str) else stored
    assert sha == card["sha256"] and version == card["sha256"][:12]
    assert stored["validation"] == {"miou": 0.5}
