"""The review page and export under attack, second pass (issue 22, item 5): logins during a
database outage, the export's file checks (media roots, the recorded sha256, empty and
undecodable files), a rerun after a failed export, and login names of any length."""

from __future__ import annotations

import io
import json
import socket
import zipfile

import pytest
import sqlalchemy as sa
from review_kit import Client, add_user, box_region, record_item, serve_app

from inspect_db.engine import connect, make_engine
from inspect_db.records.recorder import Recorder
from inspect_review.storage.export import ExportFilters
from inspect_review.storage.queue import item
from inspect_review.storage.store import record_decision
from inspect_review.storage.types import DecisionIn

pytest.importorskip("starlette")
pytest.importorskip("argon2")

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"


def decide_all(engine, ids: list[int], user_name: str = "olga") -> None:
    from inspect_review.labels import resolve
    from inspect_review.storage.store import add_user as add

    user = add(engine, user_name, "operator", HASH)
    for iid in ids:
        with connect(engine) as conn:
            view = item(conn, iid)
        labels = resolve(view, "FAIL", {}, ["background", "scratch", "dent"])
        record_decision(engine, DecisionIn(iid, user.id, "FAIL", labels))


def set_source(engine, iid: int, path: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE inspection SET source = :p WHERE id = :i"), {"p": path, "i": iid}
        )


# -- a database outage --------------------------------------------------------------------


def test_logins_during_an_outage_are_not_counted_and_the_503_names_no_database(sqlite_url):
    """Five logins while the database is down lock no one out once it is back, and the page
    that says it is down names no URL, host, port or database user."""
    from inspect_db.migrate import ensure_schema
    from inspect_review.app import ReviewSettings
    from inspect_review.auth import FAILURES_ALLOWED
    from inspect_review.server import create_app

    engine = make_engine(sqlite_url)
    ensure_schema(engine)
    add_user(engine, "olga")
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    port = closed.getsockname()[1]
    down = make_engine(f"postgresql+psycopg://outage_probe_user@127.0.0.1:{port}/records_db")
    app = create_app(engine, ReviewSettings())
    with serve_app(app) as base:
        signed = Client(base)
        assert signed.login("olga").status == 303
        app.state.review.engine = down
        for _ in range(FAILURES_ALLOWED + 2):
            r = Client(base).login("olga")
            assert r.status == 503, r.text[:300]
            assert "database" in r.text and "try again" in r.text
            for secret in (f":{port}", "127.0.0.1", "outage_probe_user", "records_db", "psycopg"):
                assert secret not in r.text, secret
        page = signed.get("/")
        poll = signed.get("/queue/new?after=0", headers={"Accept": "application/json"})
        for r in (page, poll):
            assert r.status == 503, r.text[:300]
            assert f":{port}" not in r.text and "outage_probe_user" not in r.text
        app.state.review.engine = engine  # the database is back
        assert Client(base).login("olga").status == 303  # not locked out
    closed.close()
    down.dispose()
    engine.dispose()


# -- the export's file checks -------------------------------------------------------------


@pytest.fixture
def archive(sqlite_url, tmp_path):
    """Five reviewed items: one fine, one outside the archive, one a symlink in the archive
    to a file outside, one whose file was replaced since, one with an empty file."""
    engine = make_engine(sqlite_url)
    arch, elsewhere = tmp_path / "archive", tmp_path / "elsewhere"
    ids = {}
    with Recorder(engine=engine) as rec:
        ids["good"] = record_item(rec, arch, 1, verdict="FAIL")
        ids["outside"] = record_item(rec, elsewhere, 2, verdict="FAIL")
        ids["link"] = record_item(rec, elsewhere, 3, verdict="FAIL")
        ids["replaced"] = record_item(rec, arch, 4, verdict="FAIL")
        ids["empty"] = record_item(rec, arch, 5, verdict="FAIL")
    (arch / "link.png").symlink_to(elsewhere / "img0003.png")
    set_source(engine, ids["link"], str(arch / "link.png"))
    (arch / "img0004.png").write_bytes((arch / "img0001.png").read_bytes())  # another image
    (arch / "img0005.png").write_bytes(b"")
    decide_all(engine, list(ids.values()))
    yield engine, arch, ids, tmp_path
    engine.dispose()


def test_export_applies_media_roots_and_the_recorded_sha256(archive):
    from inspect_review.export import export_dataset

    engine, arch, ids, tmp = archive
    summary = export_dataset(engine, tmp / "out", ExportFilters(), media_roots=(str(arch),))
    assert summary.images == 1
    why = {s["inspection_id"]: str(s["why"]) for s in summary.skipped}
    assert set(why) == {ids["outside"], ids["link"], ids["replaced"], ids["empty"]}
    assert "--media-root" in why[ids["outside"]] and "--media-root" in why[ids["link"]]
    assert "sha256" in why[ids["replaced"]] and "empty" in why[ids["empty"]]
    listed = json.loads((tmp / "out" / "export.json").read_text())["skipped"]
    assert {s["inspection_id"] for s in listed} == set(why)
    written = [p.read_bytes() for p in (tmp / "out" / "train" / "images").iterdir()]
    assert written == [(arch / "img0001.png").read_bytes()]


def test_export_command_and_post_export_take_the_media_roots(archive, monkeypatch, capsys):
    from review_kit import live_server, main_exit

    engine, arch, ids, tmp = archive
    code, out, err = main_exit(
        monkeypatch,
        capsys,
        "review",
        "export",
        "--db",
        str(engine.url),
        "--out",
        tmp / "cli",
        "--media-root",
        arch,
    )
    assert code == 0, err
    assert "wrote 1 reviewed images" in out and "skipped 4" in out
    add_user(engine, "erik", "engineer")
    with live_server(engine, media_roots=(str(arch),)) as base:
        c = Client(base)
        c.login("erik")
        r = c.post("/export", {"csrf": c.csrf(), "val_share": "0"})
        assert r.status == 200, r.text[:500]
        z = zipfile.ZipFile(io.BytesIO(r.body))
        images = [n for n in z.namelist() if n.startswith("train/images/") and n[-1] != "/"]
        assert len(images) == 1
        outside = (tmp / "elsewhere" / "img0003.png").read_bytes()
        assert all(z.read(n) != outside for n in z.namelist())
        assert len(json.loads(z.read("export.json"))["skipped"]) == 4
        # the image page shows no replaced file either
        replaced = c.get(f"/media/{ids['replaced']}/image")
        assert replaced.headers["content-type"] == "image/svg+xml" and "sha256" in replaced.text


# -- empty and undecodable files ----------------------------------------------------------


def test_empty_or_undecodable_images_get_the_placeholder_and_the_export_goes_on(
    sqlite_url, tmp_path
):
    from review_kit import live_server

    from inspect_review.export import export_dataset

    engine = make_engine(sqlite_url)
    with Recorder(engine=engine) as rec:
        good = record_item(rec, tmp_path, 1, verdict="FAIL")
        empty = record_item(rec, tmp_path, 2, verdict="FAIL", overlay=False)
        broken = record_item(rec, tmp_path, 3, verdict="FAIL", overlay=False)
    (tmp_path / "img0002.png").write_bytes(b"")
    png = (tmp_path / "img0003.png").read_bytes()
    (tmp_path / "img0003.png").write_bytes(png[:40] + b"\0" * 200)  # a PNG header, then junk
    import hashlib

    with engine.begin() as conn:  # recorded as they are now: the checks are the decoders'
        for iid, name in ((empty, "img0002.png"), (broken, "img0003.png")):
            sha = hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
            conn.execute(
                sa.text("UPDATE inspection SET image_sha256 = :s WHERE id = :i"),
                {"s": sha, "i": iid},
            )
    decide_all(engine, [good, empty, broken])
    add_user(engine, "erik", "engineer")
    with live_server(engine) as base:
        c = Client(base)
        c.login("erik")
        for iid in (empty, broken):
            for path in (f"/media/{iid}/image", f"/media/{iid}/image?thumb=1"):
                r = c.get(path)
                assert r.status == 200 and r.headers["content-type"] == "image/svg+xml", path
                assert "x-review-missing" in r.headers
        assert c.get(f"/item/{empty}").status == 200
    summary = export_dataset(engine, tmp_path / "out", ExportFilters())
    assert summary.images == 1
    assert sorted(s["inspection_id"] for s in summary.skipped) == [empty, broken]
    engine.dispose()


def test_a_failed_export_can_be_run_again(sqlite_url, tmp_path, monkeypatch):
    """An export that fails half-way leaves nothing in its folder's way: the rerun writes it."""
    import inspect_review.export as export

    engine = make_engine(sqlite_url)
    with Recorder(engine=engine) as rec:
        ids = [
            record_item(
                rec, tmp_path / "a", i, verdict="FAIL", regions=[box_region("dent", 1, 1, 4, 4)]
            )
            for i in (1, 2, 3)
        ]
    decide_all(engine, ids)
    calls = []
    real = export.review_mask

    def failing(*args, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the disk went away")
        return real(*args, **kw)

    monkeypatch.setattr(export, "review_mask", failing)
    out = tmp_path / "dataset"
    with pytest.raises(RuntimeError):
        export.export_dataset(engine, out, ExportFilters())
    assert not out.exists() or not any(out.iterdir())
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".dataset")] == []
    monkeypatch.setattr(export, "review_mask", real)
    assert export.export_dataset(engine, out, ExportFilters()).images == 3
    assert (out / "export.json").is_file()
    (tmp_path / "empty").mkdir()  # an empty folder given as --out still takes the export
    assert export.export_dataset(engine, tmp_path / "empty", ExportFilters()).images == 3
    engine.dispose()


# -- the login brake ----------------------------------------------------------------------


def test_the_login_brake_keeps_a_bounded_key_of_each_name():
    from inspect_review.auth import FAILURES_ALLOWED, LoginBrake

    brake = LoginBrake()
    for i in range(200):
        brake.try_start(f"{i:03d}" + "x" * 200_000)
    held = sum(len(k) for k in brake._failures)
    assert held < 200 * 200, held  # not 40 MB of names
    long_a, long_b = "a" * 100_000 + "1", "a" * 100_000 + "2"  # one long prefix, two names
    for _ in range(FAILURES_ALLOWED):
        assert brake.try_start(long_a) == 0
    assert brake.try_start(long_a) > 0
    assert brake.try_start(long_b) == 0  # another name, not locked with it
    brake.succeeded(long_a)
    assert brake.try_start(long_a) == 0


def test_a_long_login_name_is_refused_without_echoing_it(sqlite_url):
    from review_kit import live_server

    from inspect_db.migrate import ensure_schema
    from inspect_review.auth import FAILURES_ALLOWED

    engine = make_engine(sqlite_url)
    ensure_schema(engine)
    name = "n" * 100_000
    with live_server(engine) as base:
        for _ in range(FAILURES_ALLOWED):
            assert Client(base).login(name, "wrong password").status == 401
        r = Client(base).login(name, "wrong password")
        assert r.status == 429 and len(r.body) < 20_000
    engine.dispose()
