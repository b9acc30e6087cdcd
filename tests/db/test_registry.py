"""The model registry on SQLite and PostgreSQL: versions added with their checks, promote and
rollback per station or for all, the history with who and when, and what stations are told."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from inspect_core.cards import sha256_file
from inspect_core.cli import cli
from inspect_core.plugin_api.manager import load_cli_plugins
from inspect_core.runtime.model_file import edit_meta
from inspect_core.training.model_card import save_card
from inspect_db.engine import make_engine
from inspect_db.migrate import upgrade
from inspect_db.registry.versions import SqlVersions

ROOT = Path(__file__).resolve().parents[2]
STEEL = ROOT / "plugins" / "inspect_plugins" / "industrial" / "models" / "steel.onnx"
TILE = ROOT / "plugins" / "inspect_plugins" / "industrial" / "models" / "tile.onnx"


def _variant(tmp: Path, name: str, bias: float) -> Path:
    """A copy of the steel model with another prior (another sha256), with its card."""
    path = tmp / f"{name}.onnx"
    shutil.copy(STEEL, path)
    edit_meta(path, lambda m: m.update(class_bias=[bias, 0.0, 0.0, 0.0]))
    save_card(json.loads(STEEL.with_suffix(".json").read_text()), path.with_suffix(".json"), path)
    return path


def _model(*args):
    load_cli_plugins(cli)  # the records plugin adds `inspect model`
    return CliRunner().invoke(cli, ["model", *map(str, args)])


def _list(url):
    res = _model("list", "--plugin", "industrial", "--recipe", "steel", "--db", url, "--json")
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def test_add_promote_rollback_and_the_history(db_url, tmp_path):
    store = tmp_path / "store"
    v1, v2 = _variant(tmp_path, "a", -0.5), _variant(tmp_path, "b", -1.0)
    common = ["--plugin", "industrial", "--recipe", "steel", "--db", db_url]
    for path in (v1, v2):
        res = _model("add", path, *common, "--store", store, "--by", "ana")
        assert res.exit_code == 0, res.output
    listed = _list(db_url)
    assert [v["label"] for v in listed["versions"]] == ["v1", "v2"]
    assert all(v["file_present"] and v["added_by"] == "ana" for v in listed["versions"])
    stored = Path(listed["versions"][0]["path"])
    assert stored.parent == store / "industrial" / "steel" and sha256_file(stored) == sha256_file(
        v1
    )
    assert listed["active"] == {"all": "recipe file"}
    versions = SqlVersions({"url": db_url})
    try:
        assert versions.active("industrial", "steel", "line1") is None
        assert _model("promote", "v1", *common, "--by", "ben").exit_code == 0
        assert versions.active("industrial", "steel", "line1").sha256 == sha256_file(v1)
        sha2 = sha256_file(v2)
        res = _model("promote", sha2[:10], *common, "--station", "line2")
        assert res.exit_code == 0 and "no station named 'line2' has recorded" in res.output
        assert versions.active("industrial", "steel", "line2").label == "v2"
        assert versions.active("industrial", "steel", "line1").label == "v1"  # others stay
        assert _model("rollback", *common, "--station", "line2").exit_code == 0
        assert versions.active("industrial", "steel", "line2").label == "v1"  # all-stations again
        assert _model("rollback", *common, "--note", "bad lot").exit_code == 0
        assert versions.active("industrial", "steel", "line1") is None  # the recipe's file
    finally:
        versions.close()
    h = _list(db_url)["history"]
    assert [(x["action"], x["version"], x["station"]) for x in h] == [
        ("promote", "v1", "all"),
        ("promote", "v2", "line2"),
        ("rollback", "all-stations choice", "line2"),
        ("rollback", "recipe file", "all"),
    ]
    assert h[0]["by"] == "ben" and h[-1]["note"] == "bad lot" and all(x["at"] for x in h)


def test_what_cannot_become_a_version_is_refused(sqlite_url, tmp_path):
    common = ["--plugin", "industrial", "--recipe", "steel", "--db", sqlite_url]
    res = _model("promote", "v7", *common)  # no database yet: nothing is created
    assert "does not exist" in str(res.exception) and not _sqlite_file(sqlite_url).exists()
    upgrade(make_engine(sqlite_url))  # an empty records database, as a first station makes
    bare = tmp_path / "bare.onnx"
    shutil.copy(STEEL, bare)
    res = _model("add", bare, *common, "--store", tmp_path / "s")
    assert res.exit_code != 0 and "no model card bare.json" in str(res.exception)
    res = _model("add", TILE, *common, "--store", tmp_path / "s")
    assert "are not those of industrial:steel" in str(res.exception)
    res = _model("promote", "v7", *common)
    assert "'v7' is no version of industrial:steel" in str(res.exception)
    res = _model("rollback", *common)
    assert "nothing to roll back" in str(res.exception)
    v1 = _variant(tmp_path, "a", -0.5)
    assert _model("add", v1, *common, "--store", tmp_path / "s").exit_code == 0
    res = _model("add", v1, *common, "--store", tmp_path / "s")
    assert "registered already as industrial:steel v1" in str(res.exception)
    # a version whose stored file went missing is not promoted (stations could not load it)
    Path(_list(sqlite_url)["versions"][0]["path"]).unlink()
    res = _model("promote", "v1", *common)
    assert "its file" in str(res.exception) and "is missing" in str(res.exception)
    assert _list(sqlite_url)["history"] == []


def test_a_station_polling_the_registry_checks_the_schema_once(sqlite_url, monkeypatch):
    import inspect_db.migrate as migrate
    import inspect_db.registry.versions as versions_mod

    calls = []
    real = migrate.ensure_schema
    monkeypatch.setattr(versions_mod, "ensure_schema", lambda e: calls.append(e) or real(e))
    versions = SqlVersions({"url": sqlite_url})
    try:
        for _ in range(3):  # a station's follower asks every check_s seconds
            assert versions.active("industrial", "steel", "line1") is None
    finally:
        versions.close()
    assert len(calls) == 1


def test_rollbacks_step_back_one_promotion_each_never_forward(sqlite_url, tmp_path):
    store = tmp_path / "store"
    common = ["--plugin", "industrial", "--recipe", "steel", "--db", sqlite_url]
    paths = [_variant(tmp_path, n, b) for n, b in (("a", -0.5), ("b", -1.0), ("c", -1.5))]
    for p in paths:
        assert _model("add", p, *common, "--store", store).exit_code == 0
    for label in ("v1", "v2", "v3"):
        assert _model("promote", label, *common).exit_code == 0
    versions = SqlVersions({"url": sqlite_url})
    try:
        seen = []
        for _ in range(3):  # v3 is bad, so is v2, so is v1
            assert _model("rollback", *common).exit_code == 0
            v = versions.active("industrial", "steel", "line1")
            seen.append(v.label if v else "recipe file")
    finally:
        versions.close()
    assert seen == ["v2", "v1", "recipe file"]  # never back to a version rolled back from
    res = _model("rollback", *common)
    assert res.exit_code != 0 and "a rollback has not undone" in str(res.exception)


def test_a_stored_version_keeps_its_faster_variant_files(sqlite_url, tmp_path):
    card = json.loads(STEEL.with_suffix(".json").read_text())
    int8 = [v for v in card["variants"]["list"] if v["suffix"] == ".int8.onnx" and v["shipped"]]
    assert int8, "the shipped steel card lists an int8 variant"
    common = ["--plugin", "industrial", "--recipe", "steel", "--db", sqlite_url]
    res = _model("add", STEEL, *common, "--store", tmp_path / "s", "--origin", "shipped")
    assert res.exit_code == 0, res.output
    stored = Path(_list(sqlite_url)["versions"][0]["path"])
    copy = stored.with_name(stored.stem + ".int8.onnx")
    assert copy.is_file() and sha256_file(copy) == int8[0]["sha256"]  # what the runtime checks


def test_versions_added_at_the_same_moment_get_distinct_labels(db_url, tmp_path):
    """Each label is counted from the versions there: eight adds at once must not count alike."""
    import threading

    from inspect_db.engine import make_engine
    from inspect_db.migrate import ensure_schema
    from inspect_db.registry.versions import add_version

    engine = make_engine(db_url)
    ensure_schema(engine)
    labels, errors = [], []

    def add(i: int) -> None:
        try:
            v = add_version(
                engine,
                plugin="industrial",
                recipe="steel",
                sha256=f"{i:064x}",
                path=tmp_path / f"m{i}.onnx",
                card={},
                origin="trained",
                by="ana",
            )
            labels.append(v.label)
        except Exception as e:  # a database busy error would fail the test as well
            errors.append(e)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.dispose()
    assert not errors and sorted(labels) == sorted(f"v{i}" for i in range(1, 9))


def _sqlite_file(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))
