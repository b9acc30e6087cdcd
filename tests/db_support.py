"""Shared fixtures and helpers of the records tests (imported by the other test_db_* files).

``db_url`` runs a test once on SQLite (a file in tmp_path) and once on PostgreSQL. For
PostgreSQL the test run creates its own database ``inspect_test_<random>`` on 127.0.0.1:5432
(or the server of ``INSPECT_TEST_PG_URL``) and drops it at the end; each test gets a fresh
schema in it (via ``search_path``), so tests and runs never see each other's rows. If the
server cannot be reached the PostgreSQL cases are skipped, saying why.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator

import pytest

from inspect_core.types import Decision, Inspection, Region, RuleHit, Verdict

PG_BASE = os.environ.get("INSPECT_TEST_PG_URL", "")
PG_CANDIDATES = (
    [PG_BASE]
    if PG_BASE
    else ["postgresql://postgres@127.0.0.1:5432/test", "postgresql://root@127.0.0.1:5432/test"]
)


def _pg_admin() -> tuple[str | None, str]:
    """A working admin URL on the test server, or None and why not."""
    try:
        import psycopg
    except ImportError as e:
        return None, f"psycopg 3 is not installed ({e}); pip install -e '.[dev]'"
    reasons = []
    for url in PG_CANDIDATES:
        try:
            with psycopg.connect(url, connect_timeout=3, autocommit=True) as c:
                c.execute("SELECT 1")
            return url, ""
        except Exception as e:
            reasons.append(f"{url}: {' '.join(str(e).split())[:160]}")
    return None, "PostgreSQL test server unreachable (" + "; ".join(reasons) + ")"


def _with_db(url: str, name: str) -> str:
    head, _, _ = url.rpartition("/")
    return f"{head}/{name}"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """URL of a database created for this test run (dropped afterwards)."""
    import psycopg

    admin, why = _pg_admin()
    if admin is None:
        pytest.skip(why)
    name = f"inspect_test_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_db(admin, name)
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pg_schema_url(base: str) -> str:
    """A fresh, empty schema in the run's database; the URL selects it via search_path."""
    import psycopg

    schema = f"t_{secrets.token_hex(5)}"
    with psycopg.connect(base, autocommit=True) as c:
        c.execute(f'CREATE SCHEMA "{schema}"')
    return f"{base}?options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """An empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'inspect.db'}"
    return _pg_schema_url(request.getfixturevalue("pg_database"))


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'inspect.db'}"


def region(cls: str = "scratch", area: int = 40, class_id: int = 1, x: int = 5) -> Region:
    return Region(
        class_id,
        cls,
        (x, 6, 7, 8),
        area,
        (x + 3.5, 9.25),
        0.91,
        0.72,
        [(x, 6), (x + 7, 6), (x + 7, 14)],
        area * 0.01,
    )


def make_inspection(
    i: int,
    *,
    station: str = "line-1",
    verdict: str = "PASS",
    regions: list[Region] | None = None,
    at: float | None = None,
    latency: float = 10.0,
    plugin: str = "industrial",
    recipe: str = "steel",
    model: str = "ab" * 32,
    overlay: str | None = None,
) -> Inspection:
    """A synthetic inspection; image sha256 derived from ``i`` (same i = same image)."""
    regions = list(regions or [])
    d = Decision(verdict)
    hits = (
        [RuleHit("min_area", d, f"{len(regions)} regions", list(range(len(regions))))]
        if d in (Decision.FAIL, Decision.REVIEW)
        else []
    )
    return Inspection(
        source=f"/images/{i:05d}.png",
        image_sha256=f"{i:064x}",
        width=640,
        height=480,
        verdict=Verdict(d, hits, regions),
        station=station,
        plugin=plugin,
        recipe=recipe,
        model_sha256=model,
        thresholds={"rules": [{"type": "min_area", "min": 30}], "pixel_size_mm": 0.1},
        captured_at=(at or time.time()) - 0.5,
        inspected_at=at or time.time(),
        latency_ms=latency,
        part_id=f"P{i}",
        lot="L1",
        error="cannot read file" if d is Decision.ERROR else None,
        overlay_path=overlay,
    )


def writer_process(url: str, station: str, ids: list[int]) -> int:
    """Body of a concurrent writer process: record inspections ``ids``; returns how many
    were new. Module-level so ``multiprocessing`` (spawn) can import it."""
    from inspect_db.records.recorder import Recorder

    with Recorder(url) as rec:
        return sum(
            rec.record(
                make_inspection(i, station=station, verdict="FAIL", regions=[region(area=10 + i)])
            )
            for i in ids
        )
