"""The HTML report's FAIL and REVIEW images: every one is shown, none silently left out. An
overlay where one was recorded; else the image with its recorded regions outlined (polygon or
box, as SVG over it); else a note naming the file that is gone (or replaced: its sha256
differs). The charts have legends. Recorded paths are escaped. Checked in headless Chromium
where it is installed."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import subprocess

import cv2
import numpy as np
import pytest
from chromium_kit import APT_HINT, find_chromium
from db_support import make_inspection, region

from inspect_db.engine import make_engine
from inspect_db.records.recorder import Recorder
from inspect_db.reports.filters import ReportFilters
from inspect_db.reports.html import render_html
from inspect_db.reports.query import build_report

HOSTILE = '<img src=x onerror="alert(1)">'


def _png(path, shape=(480, 640)) -> str:
    img = np.random.default_rng(0).integers(0, 255, (*shape, 3), dtype=np.uint8)
    cv2.imwrite(str(path), img)
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def report(sqlite_url, tmp_path):
    """FAIL with an overlay; FAIL without one (its image there); REVIEW without one, its image
    gone (a hostile name); FAIL without one, its image replaced since."""
    overlay, shown, replaced = tmp_path / "ov.png", tmp_path / "shown.png", tmp_path / "rep.png"
    _png(overlay)
    sha = _png(shown)
    _png(replaced)
    gone = str(tmp_path / f"{HOSTILE}.png")
    plan = [
        (1, "FAIL", str(tmp_path / "elsewhere.png"), None, str(overlay)),
        (2, "FAIL", str(shown), sha, None),
        (3, "REVIEW", gone, None, None),
        (4, "FAIL", str(replaced), "00" * 32, None),
        (5, "PASS", str(shown), sha, None),
    ]
    engine = make_engine(sqlite_url)
    with Recorder(engine=engine) as rec:
        for i, verdict, src, digest, ov in plan:
            regs = [region("scratch", 40, x=20), region("dent", 30, 2, x=200)]
            insp = make_inspection(i, verdict=verdict, regions=regs, overlay=ov, at=1e9 + i)
            insp = dataclasses.replace(insp, source=src, image_sha256=digest or f"{i:064x}")
            rec.record(insp)
    built = build_report(engine, ReportFilters(), gallery=10)
    engine.dispose()
    return built


def test_every_fail_and_review_image_is_in_the_gallery(report):
    assert [g.id for g in report.gallery] == [4, 3, 2, 1]  # newest first, PASS left out
    shown = report.gallery[2]
    assert (shown.width, shown.height) == (640, 480) and len(shown.outlines) == 2
    assert shown.outlines[0].polygon == [(20, 6), (27, 6), (27, 14)]
    assert shown.outlines[0].bbox == (20, 6, 7, 8)


def test_the_page_outlines_images_without_overlays_and_names_the_gone(report, tmp_path):
    page = render_html(report)
    assert page.count('<img class="thumb"') == 2  # the overlay, and the image outlined
    assert page.count('<svg class="outlines" viewBox="0 0 640 480"') == 1
    assert '<polygon points="20,6 27,6 27,14"><title>scratch</title></polygon>' in page
    assert "no overlay recorded: regions outlined from the record" in page
    assert "image file missing (file not found): " in page  # the REVIEW whose image is gone
    assert "not the recorded image: its sha256 differs" in page  # the replaced one
    assert HOSTILE not in page and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;.png" in page
    assert page.count('<g class="legend">') == 2
    assert "inspections per hour (left axis)" in page and "yield, share of PASS" in page


def test_the_page_renders_outlines_legends_and_versions_in_chromium(report, tmp_path):
    chromium = find_chromium()
    if chromium is None:
        pytest.skip(f"Chromium not found (or set $INSPECT_CHROMIUM); {APT_HINT}")
    page = tmp_path / "report.html"
    page.write_text(render_html(report), encoding="utf-8")
    cmd = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000",
        "--dump-dom",
        page.as_uri(),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert res.returncode == 0, res.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", res.stdout)
    assert body, res.stdout[:500]
    attrs = dict(re.findall(r'data-([a-z]+)="([^"]*)"', body.group(1)))
    assert attrs.get("status") == "ready", attrs
    assert attrs["thumbnails"] == "2" and attrs["outlined"] == "1" and attrs["legends"] == "2"
    assert "By model version" in res.stdout and "<img src=x" not in res.stdout
