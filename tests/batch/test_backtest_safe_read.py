"""The backtest reads a recorded image as the station would: only a regular file (a symlink's
target checked), never more than the size limit, and only an image that passes the station's
checks. A bad record fails alone; the rest of its chunk is judged."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest

from inspect_batch.run import run_backtest
from inspect_core.plugin_api.resolve import find_recipe
from inspect_core.runtime.inspector import Inspector
from inspect_db import Recorder

ROOT = Path(__file__).resolve().parents[2]
STEEL = ROOT / "plugins" / "inspect_plugins" / "industrial" / "models" / "steel.onnx"
LIMIT = 2 * 1024 * 1024  # --max-bytes of these tests: a few MB
GOOD = 3


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """Steel samples recorded by station line1: the first ``GOOD`` are the images recorded,
    the others' records are made to point at what a worker must not read (a device, a pipe,
    a folder, a file above the limit, a cut-off image). (url, {source: what it is}, tmp)."""
    tmp = tmp_path_factory.mktemp("safe_read")
    archive = tmp / "archive"
    archive.mkdir()
    sample = ROOT / "plugins/inspect_plugins/industrial/samples/steel_fail_002603.png"
    img = cv2.imread(str(sample), cv2.IMREAD_UNCHANGED)
    for k in range(GOOD + 6):  # distinct images (a station records one image once)
        variant = img.copy()
        variant.flat[k] ^= 1
        cv2.imwrite(str(archive / f"steel_{k}.png"), variant)
    url = f"sqlite:///{tmp / 'line.db'}"
    inspector = Inspector(find_recipe("industrial", "steel"))
    with Recorder(url) as rec:
        for p in sorted(archive.glob("*.png")):
            rec.record(inspector.inspect_file(p, station="line1", plugin="industrial")[0])
    bad = _bad_sources(archive, sample)
    _repoint(url, bad, first=GOOD + 1)
    return url, bad, tmp


def _bad_sources(archive: Path, sample: Path) -> dict[str, tuple[str, str]]:
    """source -> (its sha256 as recorded, what the refusal must say)."""
    data = sample.read_bytes()
    os.mkfifo(archive / "pipe.png")
    (archive / "folder.png").mkdir()
    (archive / "zero.png").symlink_to("/dev/zero")
    big = data + b"\0" * (LIMIT + 1 - len(data))  # a whole PNG, then more than the limit
    (archive / "big.png").write_bytes(big)
    cut = data[: len(data) // 2]
    (archive / "cut.png").write_bytes(cut)

    def sha(b: bytes) -> str:
        return hashlib.sha256(b).hexdigest()

    return {
        "/dev/zero": ("", "character device"),
        str(archive / "zero.png"): ("", "symlink to a character device"),
        str(archive / "pipe.png"): ("", "named pipe"),
        str(archive / "folder.png"): ("", "folder"),
        str(archive / "big.png"): (sha(big), f"above the limit of {LIMIT}"),
        str(archive / "cut.png"): (sha(cut), "truncated PNG"),
    }


def _repoint(url: str, bad: dict[str, tuple[str, str]], first: int) -> None:
    """Records ``first``.. (in id order) get the bad sources."""
    import sqlalchemy as sa

    from inspect_db.engine import make_engine

    engine = make_engine(url)
    try:
        with engine.begin() as c:
            ids = c.execute(sa.text("SELECT id FROM inspection ORDER BY id")).scalars().all()
            for iid, (source, (sha, _)) in zip(ids[first - 1 :], bad.items(), strict=True):
                c.execute(  # a file never read keeps the recorded image's sha256
                    sa.text(
                        "UPDATE inspection SET source = :s, "
                        "image_sha256 = coalesce(:h, image_sha256) WHERE id = :i"
                    ),
                    {"s": source, "h": sha or None, "i": iid},
                )
    finally:
        engine.dispose()


@pytest.fixture
def unblocker(history) -> Iterator[None]:
    """Should a worker open the pipe blocking (and wait for a writer forever), a writer comes
    and goes, so that the test fails on its assertions instead of hanging."""
    _, bad, _ = history
    pipe = next(s for s in bad if s.endswith("pipe.png"))
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(5):
            try:
                os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass  # no reader waits on it

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    yield
    stop.set()
    t.join()


def test_bad_records_fail_alone_and_the_rest_of_the_chunk_is_judged(history, unblocker):
    url, bad, tmp = history
    s = run_backtest(
        plugin="industrial",
        recipe="steel",
        candidate=STEEL,
        sha256="",
        window=(None, None, None),
        url=url,
        scheduler=None,
        workers=1,
        chunk=100,  # one chunk holds every record
        path_maps=[],
        html=None,
        quiet=True,
        max_bytes=LIMIT,
    )
    assert (s["images"], s["errors"]) == (GOOD, len(bad))
    assert s["changed"] == 0
    said = {line.split(": ", 1)[0]: line.split(": ", 1)[1] for line in s["error_examples"]}
    assert set(said) == set(bad)  # each line names the record's source
    for source, (_, reason) in bad.items():
        assert reason in said[source], (source, said[source])
        assert "task failed" not in said[source]
    assert "--max-bytes" in said[str(tmp / "archive" / "big.png")]


def test_a_file_whose_size_is_not_told_is_read_no_further_than_the_limit():
    """/proc files say 0 bytes and hold more: the read itself stops at the limit."""
    from inspect_batch.worker import read_image

    maps = Path("/proc/self/maps")
    if not maps.is_file():
        pytest.skip("no /proc here")
    with pytest.raises(Exception, match="more bytes than its size said, above the limit of 64"):
        read_image(str(maps), max_bytes=64)


def test_a_device_is_refused_without_being_opened(monkeypatch):
    from inspect_batch import safe_read
    from inspect_batch.worker import read_image

    opened: list[str] = []
    monkeypatch.setattr(safe_read, "open_regular", lambda p: opened.append(str(p)))
    with pytest.raises(Exception, match="character device, not an image file"):
        read_image("/dev/zero", max_bytes=LIMIT)
    assert not opened


def test_fsspec_urls_are_checked_too():
    """An archive moved to a store (--path-map to s3://...): its size and kind are asked
    first, and the read is bounded as well."""
    import fsspec

    from inspect_batch.worker import read_image

    sample = ROOT / "plugins/inspect_plugins/industrial/samples/steel_pass_000955_crop3.png"
    fs = fsspec.filesystem("memory")
    fs.pipe("/bt/ok.png", sample.read_bytes())
    fs.pipe("/bt/big.png", b"\0" * 5000)
    fs.mkdir("/bt/folder.png")
    assert read_image("memory://bt/ok.png", max_bytes=LIMIT).shape[:2] == (100, 100)
    with pytest.raises(Exception, match="above the limit of 4096"):
        read_image("memory://bt/big.png", max_bytes=4096)
    with pytest.raises(Exception, match="not a file"):
        read_image("memory://bt/folder.png", max_bytes=4096)


def test_the_limits_are_options_with_the_stations_defaults(monkeypatch, sqlite_url):
    from click.testing import CliRunner

    from inspect_batch.commands import backtest
    from inspect_db.engine import make_engine
    from inspect_db.migrate import upgrade
    from inspect_stations.config.types import Limits

    upgrade(make_engine(sqlite_url))  # a backtest reads an existing database, never makes one

    seen: list[dict] = []

    def fake_run(**kw):
        seen.append(kw)
        return {"errors": 0, "images": 0}

    monkeypatch.setattr("inspect_batch.run.run_backtest", fake_run)
    monkeypatch.setattr("inspect_batch.commands._print", lambda s: None)
    args = ["--plugin", "industrial", "--recipe", "steel", "--candidate", str(STEEL)]
    args += ["--db", sqlite_url]
    assert CliRunner().invoke(backtest, args).exit_code == 0
    more = ["--max-bytes", "1000", "--max-pixels", "2000"]
    assert CliRunner().invoke(backtest, args + more).exit_code == 0
    station = Limits()
    assert (seen[0]["max_bytes"], seen[0]["max_pixels"]) == (
        station.max_bytes,
        station.max_pixels,
    )
    assert (seen[1]["max_bytes"], seen[1]["max_pixels"]) == (1000, 2000)
