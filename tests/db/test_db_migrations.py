"""Schema migrations: an old schema asks for ``inspect db upgrade``, an upgrade keeps the
records, a newer or foreign schema is refused, the migrations create exactly the models."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from db_support import make_inspection, region

from inspect_db.engine import make_engine
from inspect_db.errors import SchemaOutdated
from inspect_db.migrate import ensure_schema, head_revision, upgrade
from inspect_db.models import Base
from inspect_db.records.recorder import Recorder


@pytest.fixture
def two_revisions(tmp_path, monkeypatch):
    """A copy of the migrations with one more revision after head, as a newer inspect would
    have; returns (module, this inspect's head, the newer head)."""
    import inspect_db.migrate as m

    head = head_revision()
    newer = f"{int(head) + 1:04d}"
    scripts = tmp_path / "migrations"
    shutil.copytree(m.MIGRATIONS, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / f"{newer}_note.py").write_text(
        "import sqlalchemy as sa\nfrom alembic import op\n"
        f'revision = "{newer}"\ndown_revision = "{head}"\nbranch_labels = None\n'
        "depends_on = None\n"
        'def upgrade():\n    op.add_column("inspection", sa.Column("note", sa.Text()))\n'
        'def downgrade():\n    op.drop_column("inspection", "note")\n'
    )
    monkeypatch.setattr(m, "MIGRATIONS", scripts)
    return m, head, newer


def test_an_old_schema_asks_for_inspect_db_upgrade(db_url, two_revisions):
    _, head, newer = two_revisions
    engine = make_engine(db_url)
    assert upgrade(engine, head) == (None, head)
    with pytest.raises(SchemaOutdated) as e:
        ensure_schema(engine)
    assert f"revision {head}" in str(e.value) and "inspect db upgrade" in str(e.value)
    with pytest.raises(SchemaOutdated, match="inspect db upgrade"):
        Recorder(engine=engine).record(make_inspection(1))
    assert upgrade(engine) == (head, newer)
    assert ensure_schema(engine).current == newer
    engine.dispose()


def _fill_at_0001(engine) -> None:
    """Two inspections with regions, written as inspect at revision 0001 wrote them."""
    at = "2025-11-20 10:00:00"
    with engine.begin() as c:
        c.execute(
            sa.text(
                "INSERT INTO station (name, plugin, recipe, config_hash, created_at) "
                "VALUES ('line-1', 'industrial', 'steel', '', :at)"
            ),
            {"at": at},
        )
        sid = c.execute(sa.text("SELECT id FROM station")).scalar_one()
        for i, (plugin, recipe, classes) in enumerate(
            [("industrial", "steel", ["dent", "dent"]), ("aerial", "roofs", ["crack"])], 1
        ):
            c.execute(
                sa.text(
                    "INSERT INTO inspection (station_id, plugin, recipe, source, image_sha256, "
                    "width, height, inspected_at, inspected_hour, latency_ms, verdict, fired, "
                    "thresholds, n_regions, defect_area_px) VALUES (:s, :p, :r, 'x.png', :sha, "
                    "8, 8, :at, 0, 1.0, 'FAIL', '[]', '{}', :n, :n)"
                ),
                {
                    "s": sid,
                    "p": plugin,
                    "r": recipe,
                    "sha": f"{i:064x}",
                    "at": at,
                    "n": len(classes),
                },
            )
            iid = c.execute(
                sa.text("SELECT id FROM inspection WHERE image_sha256 = :sha"), {"sha": f"{i:064x}"}
            ).scalar_one()
            for cls in classes:
                c.execute(
                    sa.text(
                        "INSERT INTO region (inspection_id, station_id, inspected_at, verdict, "
                        "class_id, class_name, bbox_x, bbox_y, bbox_w, bbox_h, area_px, "
                        "centroid_x, centroid_y, max_prob, mean_prob, polygon) VALUES (:i, :s, "
                        ":at, 'FAIL', 1, :cls, 0, 0, 1, 1, 1, 0, 0, 0.9, 0.9, '[]')"
                    ),
                    {"i": iid, "s": sid, "at": at, "cls": cls},
                )


def test_upgrade_from_0001_keeps_the_records_and_copies_plugin_and_recipe(db_url):
    """A database filled at revision 0001 (regions without plugin/recipe) upgrades to head;
    its regions get their inspection's plugin and recipe, so the filtered Pareto counts them."""
    from inspect_db.reports.filters import ReportFilters
    from inspect_db.reports.query import build_report

    engine = make_engine(db_url)
    assert upgrade(engine, "0001") == (None, "0001")
    _fill_at_0001(engine)
    assert upgrade(engine) == ("0001", head_revision())
    with engine.connect() as c:
        rows = c.execute(
            sa.text("SELECT class_name, plugin, recipe FROM region ORDER BY class_name")
        ).all()
    assert [tuple(r) for r in rows] == [
        ("crack", "aerial", "roofs"),
        ("dent", "industrial", "steel"),
        ("dent", "industrial", "steel"),
    ]
    pareto = build_report(
        engine, ReportFilters.parse(plugin="industrial", recipe="steel")
    ).to_dict()["pareto"]
    assert [(p["class"], p["regions"]) for p in pareto] == [("dent", 2)]
    with Recorder(engine=engine) as rec:  # and new records go on at head
        assert rec.record(make_inspection(3, verdict="FAIL", regions=[region("scratch", 5)]))
    engine.dispose()


def test_a_newer_or_foreign_schema_is_refused(db_url):
    engine = make_engine(db_url)
    ensure_schema(engine)
    with engine.begin() as c:
        c.execute(sa.text("UPDATE alembic_version SET version_num = 'fffffff'"))
    with pytest.raises(SchemaOutdated, match="upgrade inspect"):
        ensure_schema(engine)
    with engine.begin() as c:
        c.execute(sa.text("DROP TABLE alembic_version"))
    with pytest.raises(SchemaOutdated, match="no Alembic revision"):
        ensure_schema(engine)
    engine.dispose()


def test_migrations_create_exactly_the_models(db_url):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(db_url)
    ensure_schema(engine)
    with engine.connect() as c:
        diff = compare_metadata(
            MigrationContext.configure(c, opts={"compare_type": False}), Base.metadata
        )
    assert diff == []
    engine.dispose()


def test_db_commands_upgrade_and_current(db_url):
    from click.testing import CliRunner

    from inspect_db.commands import db_group

    r = CliRunner().invoke(db_group, ["current", "--db", db_url])
    if db_url.startswith("sqlite"):  # no file yet: `current` says so and creates none
        assert r.exit_code != 0 and "does not exist" in str(r.exception or r.output)
        assert not Path(db_url.removeprefix("sqlite:///")).exists()
    else:  # an empty PostgreSQL database
        assert r.exit_code == 0 and "empty" in r.output, r.output
    r = CliRunner().invoke(db_group, ["upgrade", "--db", db_url])
    assert r.exit_code == 0 and f"upgraded from empty to {head_revision()}" in r.output, r.output
    r = CliRunner().invoke(db_group, ["upgrade", "--db", db_url])
    assert f"already at revision {head_revision()}" in r.output
    r = CliRunner().invoke(db_group, ["current", "--db", db_url])
    assert "up to date" in r.output


def test_upgrade_to_an_unknown_or_older_revision_exits_2_and_changes_nothing(tmp_path):
    from test_db_predict import run_cli

    url = f"sqlite:///{tmp_path / 'u.db'}"
    res = run_cli("db", "upgrade", "--db", url, "--revision", "0002")
    assert res.returncode == 0 and "to 0002" in res.stdout, res.stderr
    res = run_cli("db", "upgrade", "--db", url, "--revision", "bogus")
    assert res.returncode == 2 and "'bogus': no such revision" in res.stderr
    assert "Traceback" not in res.stderr
    assert run_cli("db", "upgrade", "--db", url).returncode == 0
    res = run_cli("db", "upgrade", "--db", url, "--revision", "0002")
    assert res.returncode == 2 and "only goes forward" in res.stderr
