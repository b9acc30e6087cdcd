"""The README's screenshots of the review page: ``python tests/review/demo_shots.py docs/``.

Runs the shipped steel recipe on a dozen NEU-Seg val images (``../shared/datasets/neu-steel``),
records them for two stations over three days in a fresh SQLite database, decides two of them,
serves the page and photographs the queue and an item in headless Chromium
(``review-queue.png``, ``review-item.png``). Needs the review extra and Debian's chromium.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(HERE), str(HERE.parent)]

import cv2  # noqa: E402
from chromium_kit import find_chromium  # noqa: E402
from chromium_pipe import Browser  # noqa: E402
from review_kit import PASSWORD, add_user, live_server  # noqa: E402

from inspect_core.plugin_api.manager import get_registry  # noqa: E402
from inspect_core.runtime.inspector import Inspector  # noqa: E402
from inspect_core.runtime.overlay import render_result, save_overlay  # noqa: E402
from inspect_db.engine import connect, make_engine  # noqa: E402
from inspect_db.records.recorder import Recorder  # noqa: E402
from inspect_review.labels import resolve  # noqa: E402
from inspect_review.storage.queue import item  # noqa: E402
from inspect_review.storage.store import get_user, record_decision  # noqa: E402
from inspect_review.storage.types import DecisionIn  # noqa: E402

IMAGES = ROOT.parent / "shared" / "datasets" / "neu-steel" / "val" / "images"
MAX_BYTES = 200_000


def record_demo(url: str, work: Path, n: int = 14) -> list[int]:
    """Inspect ``n`` val images with industrial:steel, as stations line-1 and line-2 over three
    days (line-2 with a wider review band, as a station override: more REVIEW); returns the ids
    of the REVIEW and FAIL inspections."""
    reg = get_registry()
    recipe = reg.domains["industrial"].recipe("steel")
    wide = recipe.with_overrides({"rule_params": {"review_band": {"high": 0.95}}})
    inspectors = {
        "line-1": Inspector(recipe, reg.rules, threads=1),
        "line-2": Inspector(wide, reg.rules, threads=1),
    }
    now = time.time()
    with Recorder(url) as rec:
        for k, src in enumerate(sorted(IMAGES.glob("*.jpg"))[:n]):
            archived = work / "archive" / src.name
            archived.parent.mkdir(parents=True, exist_ok=True)
            archived.write_bytes(src.read_bytes())
            station = "line-1" if k % 3 else "line-2"
            inspector = inspectors[station]
            insp, result = inspector.inspect_file(archived, station, plugin="industrial")
            insp.inspected_at = now - 86400 * (k % 3) - 600 * k
            if result is not None:
                ov = render_result(result, insp.verdict, inspector)
                insp.overlay_path = str(save_overlay(work / "overlays" / f"{src.stem}.png", ov))
            rec.record(insp)
    engine = make_engine(url)
    with connect(engine) as conn:
        ids = [
            r[0]
            for r in conn.exec_driver_sql(
                "SELECT id FROM inspection WHERE verdict IN ('REVIEW', 'FAIL') ORDER BY id"
            )
        ]
    engine.dispose()
    return ids


def decide_some(engine, ids: list[int]) -> None:
    user = get_user(engine, "olga")
    for iid, verdict in zip(ids[-2:], ("FAIL", "PASS")):
        with connect(engine) as conn:
            view = item(conn, iid)
        labels = resolve(view, verdict, {}, None)
        record_decision(engine, DecisionIn(iid, user.id, verdict, labels, "demo"))


def shrink(path: Path) -> None:
    """Keep a screenshot under MAX_BYTES: fewer grey levels compress better in PNG."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    for step in (1, 8, 16, 24, 32):
        out = img if step == 1 else (img // step) * step + step // 2
        cv2.imwrite(str(path), out, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        if path.stat().st_size <= MAX_BYTES:
            return


def main(out: Path) -> None:
    chromium = find_chromium()
    if chromium is None:
        sys.exit("chromium not found: apt-get install -y chromium")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        url = f"sqlite:///{work / 'demo.db'}"
        engine = make_engine(url)
        ids = record_demo(url, work)
        add_user(engine, "olga", "operator")
        decide_some(engine, ids)
        with (
            live_server(engine, poll_seconds=5) as base,
            Browser(chromium, work / "profile", width=1200, height=840) as b,
        ):
            b.go(base + "/login")
            b.js(
                "document.getElementById('name').value = 'olga';"
                f"document.getElementById('password').value = '{PASSWORD}';"
                "document.getElementById('login').click()"
            )
            b.wait("document.body.dataset.page === 'queue' && document.body.dataset.ready")
            b.wait("[...document.images].every(i => i.complete)")
            shrink(b.screenshot(out / "review-queue.png"))
            b.key("Enter")
            b.wait("document.body.dataset.page === 'item' && document.body.dataset.ready")
            b.wait("[...document.images].every(i => i.complete)")
            b.key("j")
            b.key("x")
            shrink(b.screenshot(out / "review-item.png"))
        engine.dispose()
    for name in ("review-queue.png", "review-item.png"):
        print(f"wrote {out / name} ({(out / name).stat().st_size:,} bytes)")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs"))
