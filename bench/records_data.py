"""The synthetic records of bench/records.py: inspections made in Python for the recording
rate, and a SQLite database bulk-filled in SQL (a recursive CTE, no Python loop over rows) for
the report's time."""

from __future__ import annotations

import secrets
import sqlite3
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inspect_core.types import Decision, Inspection, Region, RuleHit, Verdict  # noqa: E402
from inspect_db.engine import make_engine  # noqa: E402
from inspect_db.migrate import ensure_schema  # noqa: E402

CLASSES = ["scratch", "dent", "inclusion"]
DAYS = 30


def synthetic(i: int, station: str, regions: int = 5) -> Inspection:
    regs = [
        Region(
            1 + k % 3,
            CLASSES[k % 3],
            (10 * k, 20, 15, 12),
            120 + k,
            (10 * k + 7.5, 26.0),
            0.93,
            0.81,
            [(10 * k + dx, 20 + dy) for dx, dy in ((0, 0), (15, 0), (15, 12), (8, 14), (0, 12))],
            1.2,
        )
        for k in range(regions)
    ]
    return Inspection(
        source=f"/cam/{station}/{i:08d}.png",
        image_sha256=f"{i:064x}",
        width=1280,
        height=960,
        verdict=Verdict(
            Decision.FAIL,
            [RuleHit("min_area", Decision.FAIL, "5 regions", list(range(regions)))],
            regs,
        ),
        station=station,
        plugin="industrial",
        recipe="steel",
        model_sha256="ab" * 32,
        thresholds={"rules": [{"type": "min_area", "min": 30}], "pixel_size_mm": 0.1},
        inspected_at=time.time(),
        latency_ms=42.0,
        part_id=f"P{i}",
        lot="L7",
    )


def pg_database(admin: str):
    """Create a scratch database; returns (url, drop function) or (None, reason)."""
    try:
        import psycopg

        name = f"inspect_bench_{secrets.token_hex(4)}"
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as c:
            c.execute(f'CREATE DATABASE "{name}"')
    except Exception as e:
        return None, f"PostgreSQL unavailable: {' '.join(str(e).split())[:120]}"

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return admin.rpartition("/")[0] + "/" + name, drop


TS = "strftime('%Y-%m-%d %H:%M:%S', :t0 + x * :step, 'unixepoch') || '.000000'"
AREA = "(1 + ((x * 7919 + j * 104729) % 500))"

FILL_INSPECTIONS = f"""
WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < :n - 1),
js(j) AS (VALUES (0), (1), (2), (3), (4), (5), (6))
INSERT INTO inspection (id, station_id, model_id, plugin, recipe, source, image_sha256, width,
    height, captured_at, inspected_at, inspected_hour, latency_ms, verdict, fired, thresholds,
    part_id, lot, error, overlay_path, n_regions, defect_area_px)
SELECT x + 1, 1 + x % 4, 1, 'industrial', 'steel', '/cam/' || x || '.png', printf('%064x', x),
    1280, 960, NULL, {TS}, CAST((:t0 + x * :step) / 3600 AS INTEGER),
    20 + (abs(random()) % 4000) / 100.0,
    CASE WHEN x % 1000 = 0 THEN 'ERROR' WHEN x % 7 <= 2 THEN 'PASS'
         WHEN x % 7 = 3 THEN 'REVIEW' ELSE 'FAIL' END,
    CASE WHEN x % 7 >= 3 AND x % 1000 != 0 THEN '[{{"rule": "min_area"}}]' ELSE '[]' END,
    '{{"rules": [{{"type": "min_area", "min": 30}}]}}', NULL, NULL,
    CASE WHEN x % 1000 = 0 THEN 'cannot read file' END, NULL,
    CASE WHEN x % 1000 = 0 THEN 0 ELSE x % 7 END,
    CASE WHEN x % 1000 = 0 THEN 0 ELSE
        (SELECT coalesce(sum({AREA}), 0) FROM js WHERE j < x % 7) END
FROM c
"""

FILL_REGIONS = f"""
WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < :n - 1),
js(j) AS (VALUES (0), (1), (2), (3), (4), (5), (6))
INSERT INTO region (inspection_id, station_id, inspected_at, verdict, plugin, recipe, class_id,
    class_name, bbox_x, bbox_y, bbox_w, bbox_h, area_px, area_mm2, centroid_x, centroid_y,
    max_prob, mean_prob, polygon)
SELECT x + 1, 1 + x % 4, {TS},
    CASE WHEN x % 7 <= 2 THEN 'PASS' WHEN x % 7 = 3 THEN 'REVIEW' ELSE 'FAIL' END,
    'industrial', 'steel', 1 + (x + j) % 3,
    CASE (x + j) % 3 WHEN 0 THEN 'scratch' WHEN 1 THEN 'dent' ELSE 'inclusion' END,
    j * 20, 30, 15, 12, {AREA}, {AREA} * 0.01, j * 20 + 7.5, 36.0, 0.9, 0.7,
    '[[0,0],[15,0],[15,12],[0,12]]'
FROM c JOIN js ON js.j < x % 7
WHERE x % 1000 != 0
ORDER BY x, j
"""


def fill_sqlite(path: Path, n: int) -> dict[str, float]:
    """Bulk-fill a migrated SQLite file in SQL; returns timings and row counts."""
    engine = make_engine(f"sqlite:///{path}")
    ensure_schema(engine)
    engine.dispose()
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=DELETE")  # one big load: no WAL file to checkpoint
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-400000")
    t0 = time.time() - DAYS * 86400
    params = {"n": n, "t0": t0, "step": DAYS * 86400 / n}
    t = time.perf_counter()
    con.execute("BEGIN")
    con.executemany(
        "INSERT INTO station (id, name, plugin, recipe, config_hash, created_at) "
        "VALUES (?, ?, 'industrial', 'steel', '', '2025-01-01 00:00:00.000000')",
        [(k + 1, f"line-{k + 1}") for k in range(4)],
    )
    con.execute(
        "INSERT INTO model (id, sha256, plugin, recipe, created_at) VALUES "
        "(1, ?, 'industrial', 'steel', '2025-01-01 00:00:00.000000')",
        ("ab" * 32,),
    )
    con.execute(FILL_INSPECTIONS, params)
    t_insp = time.perf_counter() - t
    con.execute(FILL_REGIONS, params)
    con.execute("COMMIT")
    fill_s = time.perf_counter() - t
    regions = con.execute("SELECT count(*) FROM region").fetchone()[0]
    con.execute("PRAGMA journal_mode=WAL")
    con.close()
    return {
        "fill_s": fill_s,
        "inspections_s": t_insp,
        "regions": regions,
        "size_mb": path.stat().st_size / 1e6,
    }
