"""The good-only loop on real images (issue 24 item 7's walk-through, docs/good-only-loop.md):
a line starts on ``industrial:tile-anomaly``; operators name what it sends them; the named
images train a segmentation model; it is backtested, promoted, and both models meet a later
batch neither saw. Measures the share of the later batch's images whose verdict or regions
operators had to correct, per model (the figure ``inspect report`` shows per model version),
and the defects each let through as PASS (which no operator sees).

    python training/good_only_loop.py --work runs/loop [--minutes 12] [--history 400]

The operators are simulated from the dataset's true masks, as a careful operator would decide:
a recorded region that covers a true defect is named with that defect's class, one that
covers none is "not a defect", a true defect no region covers is drawn as a polygon, and the
verdict is FAIL when the image holds a defect, else PASS. History: the magnetic tile images of
lighting groups exp0-exp5 (a seeded sample) from four cameras, its REVIEW and FAIL images and
an audit of 10% of its PASS images reviewed; later batch: every image of group exp6 (train and
val), which neither model's training saw, judged by both models and every image reviewed (so
an escaped defect counts as a correction: the operator drew it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training"))

from inspect_core.data.datasets import open_dataset  # noqa: E402
from inspect_core.plugin_api.resolve import find_recipe  # noqa: E402
from inspect_core.runtime.inspector import Inspector  # noqa: E402
from inspect_db.engine import connect, make_engine  # noqa: E402
from inspect_db.records.recorder import Recorder  # noqa: E402
from inspect_review.storage.queue import item  # noqa: E402
from inspect_review.storage.store import add_user, get_user, record_decision  # noqa: E402
from inspect_review.storage.types import DecisionIn, Mark, RegionLabel  # noqa: E402

BIN = Path(sys.executable).parent
HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"  # a user who never logs in
MIN_OVERLAP = 0.1  # of a region's pixels on a true defect: the region is that defect
COVERED = 0.3  # of a true defect's pixels under named regions: not drawn again


def images(data: Path, groups: set[str]) -> list[tuple[Path, Path]]:
    """(image, mask) of every train and val image of ``groups`` (the ``_expN_`` in stems)."""
    out = []
    for split in ("train", "val"):
        ds = open_dataset(data, split)
        for s in ds.samples:
            group = next((p for p in s.image.stem.split("_") if p.startswith("exp")), "")
            if group in groups and s.mask is not None:
                out.append((s.image, s.mask))
    return out


def run_station(inspector: Inspector, stations: list[str], batch, url: str) -> dict[str, Path]:
    """Inspect and record ``batch``, image by image in turn from ``stations`` (the cameras of
    one line); the mask of each recorded source."""
    masks = {}
    with Recorder(url) as rec:
        for k, (image, mask) in enumerate(batch):
            station = stations[k % len(stations)]
            insp, _ = inspector.inspect_file(image, station=station, plugin="industrial")
            rec.record(insp)
            masks[str(image)] = mask
    return masks


def truth(mask_path: Path) -> np.ndarray:
    return cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)


def region_labels(view, gt: np.ndarray, classes: list[str]) -> tuple[list[RegionLabel], np.ndarray]:
    """A label for every recorded region from the true mask ``gt``; the pixels named."""
    named = np.zeros(gt.shape, bool)
    labels = []
    for r in view.regions:
        own = np.zeros(gt.shape, np.uint8)
        cv2.fillPoly(own, [np.array(r.polygon, np.int32)], 1)
        on = gt[own > 0]
        hits = on[(on > 0) & (on != 255)]
        if hits.size >= max(1, MIN_OVERLAP * max(1, on.size)):
            c = int(np.bincount(hits).argmax())
            labels.append(RegionLabel(r.id, "defect", classes[c], None))
            named |= own > 0
        else:
            labels.append(RegionLabel(r.id, "not_defect"))
    return labels, named


def drawn_marks(gt: np.ndarray, named: np.ndarray, classes: list[str]) -> list[Mark]:
    """A polygon for each true defect the named regions leave mostly uncovered."""
    marks = []
    for c in range(1, len(classes)):
        n, comp = cv2.connectedComponents((gt == c).astype(np.uint8))
        for k in range(1, n):
            part = comp == k
            if named[part].mean() >= COVERED or part.sum() < 6:
                continue
            contours, _ = cv2.findContours(
                part.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
            )
            outline = cv2.approxPolyDP(max(contours, key=cv2.contourArea), 1.0, True)[:, 0]
            if len(outline) >= 3:
                pts = tuple((float(x), float(y)) for x, y in outline[:400])
                marks.append(Mark("polygon", pts, "defect", classes[c]))
    return marks[:40]


def review(url: str, prefix: str, masks: dict, classes: list[str], user: int, audit: float) -> int:
    """The simulated operators decide every REVIEW and FAIL inspection of the stations named
    ``prefix``*, and ``audit`` of their PASS ones (a seeded sample, as a line audits)."""
    engine = make_engine(url)
    q = sa.text(
        "SELECT i.id, i.verdict FROM inspection i JOIN station s ON s.id = i.station_id "
        "WHERE s.name LIKE :st ORDER BY i.id"
    )
    with connect(engine) as conn:
        rows = list(conn.execute(q, {"st": prefix + "%"}))
    draw = np.random.default_rng(1).random(len(rows))
    ids = [r[0] for r, u in zip(rows, draw) if r[1] in ("REVIEW", "FAIL") or u < audit]
    for iid in ids:
        with connect(engine) as conn:
            view = item(conn, iid)
        gt = truth(masks[view.source])
        labels, named = region_labels(view, gt, classes)
        marks = drawn_marks(gt, named, classes)
        defect = bool(((gt > 0) & (gt != 255)).any())
        verdict = "FAIL" if defect else "PASS"
        record_decision(engine, DecisionIn(iid, user, verdict, tuple(labels), marks=tuple(marks)))
    engine.dispose()
    return len(ids)


def escaped(url: str, station: str, masks: dict[str, Path]) -> int:
    """Images ``station`` passed that hold a defect (found only by an audit)."""
    engine = make_engine(url)
    q = sa.text(
        "SELECT i.source FROM inspection i JOIN station s ON s.id = i.station_id "
        "WHERE s.name = :st AND i.verdict = 'PASS'"
    )
    with connect(engine) as conn:
        passed = [r[0] for r in conn.execute(q, {"st": station})]
    engine.dispose()
    return sum(bool(((truth(masks[p]) > 0) & (truth(masks[p]) != 255)).any()) for p in passed)


def inspect_cli(*args: str) -> str:
    run = subprocess.run([str(BIN / "inspect"), *args], capture_output=True, text=True)
    if run.returncode not in (0, 3, 4):
        raise SystemExit(f"inspect {' '.join(args)}: exit {run.returncode}\n{run.stderr[-3000:]}")
    return run.stdout


def first_days(args, work: Path, url: str, classes: list[str]) -> dict:
    """The history: recorded by four cameras on the good-only model, reviewed, exported, and
    the candidate trained on the export. Skipped when the candidate is there (a rerun goes on
    from the backtest)."""
    candidate = work / "candidate" / "model.onnx"
    if not candidate.is_file():
        history = images(args.data, {f"exp{k}" for k in range(6)})
        pick = np.random.default_rng(0).permutation(len(history))[: args.history]
        history = [history[int(i)] for i in sorted(pick)]
        cams = [f"history-cam{k}" for k in range(1, 5)]  # four cameras: four training groups
        first = Inspector(find_recipe("industrial", "tile-anomaly"), threads=2)
        masks = run_station(first, cams, history, url)
        user = add_user(make_engine(url), "sim-operator", "operator", HASH).id  # migrated now
        review(url, "history", masks, classes, user, args.audit)
        inspect_cli("review", "export", "--db", url, "--out", str(work / "dataset"), "--json")
        inspect_cli(
            "train", "--data", str(work / "dataset"), "--out", str(work / "candidate"),
            "--init-from", "industrial:tile-anomaly", "--max-minutes", str(args.minutes),
            "--threads", "2",
        )  # fmt: skip
    engine = make_engine(url)
    with connect(engine) as conn:
        counted = conn.execute(sa.text("SELECT count(*) FROM inspection")).scalar_one()
        reviewed = conn.execute(sa.text("SELECT count(*) FROM review")).scalar_one()
    engine.dispose()
    exported = json.loads((work / "dataset" / "export.json").read_text())
    card = json.loads(candidate.with_suffix(".json").read_text())
    return {
        "history_images": counted,
        "history_reviewed": reviewed,
        "export": {k: exported.get(k) for k in ("images", "classes", "unnamed", "skipped")},
        "export_classes": json.loads((work / "dataset" / "classes.json").read_text())["classes"],
        "candidate_validation": card.get("validation"),
    }


def later_days(args, work: Path, url: str, classes: list[str]) -> dict:
    """The backtest on the history, the candidate added, and the later batch judged by both
    models and reviewed whole."""
    candidate = work / "candidate" / "model.onnx"
    backtest = json.loads(
        inspect_cli(
            "backtest",
            "--plugin",
            "industrial",
            "--recipe",
            "tile-anomaly",
            "--candidate",
            str(candidate),
            "--db",
            url,
            "--workers",
            "1",
            "--json",
        )  # fmt: skip
    )
    out: dict = {"backtest": {k: v for k, v in backtest.items() if not isinstance(v, list)}}
    inspect_cli("model", "add", "--db", url, "--plugin", "industrial", "--recipe",
                "tile-anomaly", str(candidate))  # fmt: skip
    recipe = find_recipe("industrial", "tile-anomaly")
    after = replace(recipe, model=candidate, card=candidate.with_suffix(".json"))
    later = images(args.data, {"exp6"})
    user = get_user(make_engine(url), "sim-operator").id
    for station, r in (("later-before", recipe), ("later-after", after)):
        masks = run_station(Inspector(r, threads=2), [station], later, url)
        out[station] = {  # every image of the later batch reviewed: the whole truth
            "images": len(later),
            "reviewed": review(url, station, masks, classes, user, 1.0),
            "escaped": escaped(url, station, masks),
        }
        report = json.loads(inspect_cli("report", "--db", url, "--json", "--station", station))
        out[station]["report"] = report["review"]["corrections"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/datasets/magnetic-tile")
    ap.add_argument("--history", type=int, default=400, help="history images (seeded sample)")
    ap.add_argument("--minutes", type=float, default=12.0, help="the candidate's training")
    ap.add_argument("--audit", type=float, default=0.1, help="share of history PASS reviewed")
    args = ap.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{work / 'line.db'}"
    classes = json.loads((args.data / "classes.json").read_text())["classes"]
    out = first_days(args, work, url, classes)
    out.update(later_days(args, work, url, classes))
    (work / "loop.json").write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
