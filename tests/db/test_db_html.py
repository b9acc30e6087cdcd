"""``inspect report --html``: one self-contained page, checked in headless Chromium."""

from __future__ import annotations

import base64
import re
import subprocess
import time

import cv2
import numpy as np
import pytest
from chromium_kit import APT_HINT, find_chromium
from click.testing import CliRunner
from db_support import make_inspection, region

from inspect_db.records.recorder import Recorder
from inspect_db.reports.cli import report as report_cmd


def dump_dom(chromium: str, page, profile) -> str:
    cmd = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=5000",
        "--dump-dom",
        page.as_uri(),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


@pytest.fixture
def html_report(sqlite_url, tmp_path):
    """A database with FAIL/REVIEW overlays (one missing) and the HTML page rendered from it."""
    rng = np.random.default_rng(0)
    now = time.time()
    with Recorder(sqlite_url) as rec:
        for i in range(4):
            rec.record(make_inspection(i, at=now - 60 * i))
        for i, (v, size) in enumerate(
            [("FAIL", (600, 800)), ("FAIL", (90, 120)), ("REVIEW", (300, 300)), ("FAIL", (40, 64))]
        ):
            png = tmp_path / f"overlay{i}.png"
            cv2.imwrite(str(png), rng.integers(0, 255, (*size, 3), dtype=np.uint8))
            rec.record(
                make_inspection(
                    10 + i,
                    verdict=v,
                    overlay=str(png),
                    at=now - 90 * i,
                    regions=[region("scratch", 30 + i)],
                )
            )
        rec.record(
            make_inspection(
                20,
                verdict="FAIL",
                overlay=str(tmp_path / "gone.png"),
                regions=[region("dent", 12, 2)],
                at=now - 30,
            )
        )
    page = tmp_path / "report.html"
    res = CliRunner().invoke(report_cmd, ["--db", sqlite_url, "--html", str(page)])
    assert res.exit_code == 0, res.output
    return page


def test_html_is_self_contained_with_small_thumbnails(html_report):
    html = html_report.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "url(" not in html and "@import" not in html
    uris = re.findall(r'<img class="thumb" src="data:image/jpeg;base64,([^"]+)"', html)
    assert len(uris) == 4  # the missing overlay gets a placeholder, not a broken image
    assert "overlay missing" in html
    for b64 in uris:
        img = cv2.imdecode(np.frombuffer(base64.b64decode(b64), np.uint8), cv2.IMREAD_COLOR)
        assert img is not None and max(img.shape[:2]) <= 200
    assert html.count('<svg class="chart"') == 2


def test_html_renders_in_headless_chromium(html_report, tmp_path):
    chromium = find_chromium()
    if chromium is None:
        pytest.skip(
            f"Chromium not found (looked for chromium, chromium-browser, google-chrome "
            f"and $INSPECT_CHROMIUM); {APT_HINT}"
        )
    dom = dump_dom(chromium, html_report, tmp_path / "profile")
    body = re.search(r"<body([^>]*)>", dom)
    assert body, dom[:500]
    attrs = dict(re.findall(r'data-([a-z]+)="([^"]*)"', body.group(1)))
    assert attrs.get("status") == "ready", attrs
    # verdicts, stations, defects by class, worst images, latency, counts per bucket, and
    # operator review (reviewed and pending; nothing decided yet, so no per-station table),
    # and verdicts and latency by model version
    assert int(attrs["tables"]) == 9
    assert int(attrs["charts"]) == 2  # yield over time and the Pareto, both with marks
    assert int(attrs["thumbnails"]) == 4  # every embedded thumbnail decoded
