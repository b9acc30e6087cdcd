"""Image-quality checks (issue 25) on every shipped recipe's dataset: limits fitted on the
train split (:func:`inspect_core.health.fit_limits`), then the share of val images flagged as
they are (aim: at most 2 %) and strongly degraded (aim: at least 80 %).

    python bench/quality.py [--datasets ../shared/datasets] [--train 0] [--val 0]
                            [--focus 40] [--out quality.md] [--json]

Degradations of each val image: Gaussian blur sigma 3 and 6 px, darkened x0.3, over-exposed
x2.5 (clipped). A flagged image breaks at least one limit; "(reason)" is the share flagged
with the reason that fits the degradation ("out of focus", "under-exposed", "over-exposed").
``--train``/``--val`` take that many images evenly spread over a split (0: all). ``--focus N``
adds the comparison of focus measures behind :mod:`inspect_core.health.quality`'s choice, on
N val images per dataset; the speed of :func:`measure` is timed on one OpenCV thread.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from inspect_core.data.datasets import open_dataset, read_image
from inspect_core.health import QualityLimits, check, fit_limits, measure, measure_split
from inspect_core.health.fit import fit_one
from inspect_core.health.limits import LimitSpec
from inspect_core.health.quality import FIGURES, focus_of, gray_of

ROOT = Path(__file__).resolve().parents[1]
Transform = Callable[[np.ndarray], np.ndarray]


def _scaled(gain: float) -> Transform:
    return lambda img: np.clip(img.astype(np.float32) * gain + 0.5, 0, 255).astype(np.uint8)


def _blurred(sigma: float) -> Transform:
    return lambda img: cv2.GaussianBlur(img, (0, 0), sigma)


# variant -> (the degradation, the reason that names it; "" for the image as it is)
VARIANTS: dict[str, tuple[Transform, str]] = {
    "as is": (lambda img: img, ""),
    "blur σ3": (_blurred(3), "out of focus"),
    "blur σ6": (_blurred(6), "out of focus"),
    "dark ×0.3": (_scaled(0.3), "under-exposed"),
    "bright ×2.5": (_scaled(2.5), "over-exposed"),
}


@dataclass
class Row:
    dataset: str
    recipes: list[str]
    train: int
    val: int
    flagged: dict[str, float]  # variant -> share of val images flagged
    right: dict[str, float]  # variant -> share flagged with the variant's own reason
    limits: QualityLimits
    spans: dict[str, tuple[float, float]]  # figure -> its least and largest over the train split


def shipped_datasets() -> dict[str, list[str]]:
    """dataset name -> the shipped recipes trained on it."""
    out: dict[str, list[str]] = {}
    for path in sorted(ROOT.glob("plugins/inspect_plugins/*/recipes/*.toml")):
        recipe = tomllib.loads(path.read_text(encoding="utf-8"))
        if recipe.get("dataset"):
            out.setdefault(recipe["dataset"], []).append(recipe.get("name", path.stem))
    return out


def _spread(n: int, limit: int) -> list[int]:
    if limit <= 0 or limit >= n:
        return list(range(n))
    return sorted({int(i) for i in np.linspace(0, n - 1, limit).round()})


def run_dataset(root: Path, recipes: list[str], n_train: int, n_val: int) -> Row:
    train = measure_split(root, "train", n_train or None)
    limits = fit_limits(train)
    val = open_dataset(root, "val")
    picks = _spread(len(val), n_val)
    flagged = dict.fromkeys(VARIANTS, 0)
    right = dict.fromkeys(VARIANTS, 0)
    for i in picks:
        img = read_image(val.samples[i].image)
        for name, (degrade, reason) in VARIANTS.items():
            problems = check(measure(degrade(img)), limits)
            flagged[name] += bool(problems)
            right[name] += any(p.reason == reason for p in problems)
    n = len(picks)
    return Row(
        root.name,
        recipes,
        len(train),
        n,
        {k: v / n for k, v in flagged.items()},
        {k: v / n for k, v in right.items()},
        limits,
        {k: (min(f.value(k) for f in train), max(f.value(k) for f in train)) for k in FIGURES},
    )


# --- the focus measures compared (--focus) ----------------------------------------------------


def _lap_var(gray: np.ndarray) -> float:
    return float(cv2.Laplacian(gray, cv2.CV_32F).var())


def _short_side(side: int) -> Callable[[np.ndarray], float]:
    def f(gray: np.ndarray) -> float:
        s = side / min(gray.shape)
        size = (max(1, round(gray.shape[1] * s)), max(1, round(gray.shape[0] * s)))
        how = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
        return _lap_var(cv2.resize(gray, size, interpolation=how))

    return f


def _lap_ratio(gray: np.ndarray) -> float:
    coarse = cv2.pyrDown(cv2.pyrDown(gray))
    return _lap_var(gray) / max(_lap_var(coarse), 1.0)


FOCUS_MEASURES: dict[str, Callable[[np.ndarray], float]] = {
    "fine/coarse gradient energy (shipped)": focus_of,
    "fine/coarse Laplacian variance": _lap_ratio,
    "Laplacian variance, own size": _lap_var,
    "Laplacian variance, short side 256": _short_side(256),
    "Laplacian variance, short side 512": _short_side(512),
}


def _half(img: np.ndarray) -> np.ndarray:
    return cv2.resize(img, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)


def compare_focus(root: Path, n_train: int, n_val: int) -> list[dict[str, object]]:
    """Per focus measure: the median ratio of the figure of each val image at half resolution
    and darkened x0.3 to its own (1 = stable), and the share of val images blurred (sigma 3,
    6) and darkened that fall below a lower limit fitted on the train images."""
    spec = LimitSpec("focus", "min", "out of focus")
    train = open_dataset(root, "train")
    grays = [gray_of(read_image(train.samples[i].image)) for i in _spread(len(train), n_train)]
    val = open_dataset(root, "val")
    images = [read_image(val.samples[i].image) for i in _spread(len(val), n_val)]
    degraded = {k: [gray_of(VARIANTS[k][0](im)) for im in images] for k in VARIANTS}
    half = [gray_of(_half(im)) for im in images]
    out: list[dict[str, object]] = []
    for name, f in FOCUS_MEASURES.items():
        limit = fit_one(np.array([f(g) for g in grays]), spec, 0.005, 0.25)
        own = np.array([f(g) for g in degraded["as is"]])

        def below(k: str, f: Callable[[np.ndarray], float] = f, limit: float = limit) -> float:
            return float(np.mean([f(g) < limit for g in degraded[k]]))

        out.append(
            {
                "dataset": root.name,
                "measure": name,
                "half_res_ratio": float(np.median(np.array([f(g) for g in half]) / own)),
                "dark_ratio": float(
                    np.median(np.array([f(g) for g in degraded["dark ×0.3"]]) / own)
                ),
                "blur3_below": below("blur σ3"),
                "blur6_below": below("blur σ6"),
                "dark_below": below("dark ×0.3"),
            }
        )
    return out


def time_measure(runs: int = 50) -> dict[str, float]:
    """Median ms of :func:`measure` on a 1000x1000 image, one OpenCV thread."""
    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    rgb = cv2.GaussianBlur(rng.integers(0, 256, (1000, 1000, 3), np.uint8), (0, 0), 1.5)
    out = {}
    for name, img in (("gray", cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)), ("RGB", rgb)):
        times = []
        for k in range(runs + 3):
            t = time.perf_counter()
            measure(img)
            if k >= 3:
                times.append(1000 * (time.perf_counter() - t))
        out[name] = float(np.median(times))
    cv2.setNumThreads(-1)
    return out


# --- the report -------------------------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def _results(rows: list[Row]) -> list[str]:
    degraded = list(VARIANTS)[1:]
    lines = [
        "| dataset (recipes) | train / val | val flagged (aim ≤ 2 %) | "
        + " | ".join(f"{c} (reason)" for c in degraded)
        + " | all four degraded (aim ≥ 80 %) |",
        "|---|---:|---:|" + "---:|" * (len(degraded) + 1),
    ]
    for r in rows:
        cells = [f"{_pct(r.flagged[c])} ({_pct(r.right[c])})" for c in degraded]
        pooled = sum(r.flagged[c] for c in degraded) / len(degraded)
        lines.append(
            f"| {r.dataset} ({', '.join(r.recipes)}) | {r.train} / {r.val} | "
            f"{_pct(r.flagged['as is'])} | " + " | ".join(cells) + f" | {_pct(pooled)} |"
        )
    return lines


def _limits(rows: list[Row]) -> list[str]:
    keys = list(QualityLimits.model_fields)
    lines = ["", "Limits fitted (share 0.005, margin 0.25):", ""]
    lines += ["| dataset | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys)]
    for r in rows:
        vals = [getattr(r.limits, k) for k in keys]
        lines.append(f"| {r.dataset} | " + " | ".join(f"{v:.3g}" for v in vals) + " |")
    lines += ["", "The train split's range of each figure (least..largest):", ""]
    lines += ["| dataset | " + " | ".join(FIGURES) + " |", "|---|" + "---:|" * len(FIGURES)]
    for r in rows:
        spans = [f"{r.spans[k][0]:.3g}..{r.spans[k][1]:.3g}" for k in FIGURES]
        lines.append(f"| {r.dataset} | " + " | ".join(spans) + " |")
    return lines


def _focus(focus: list[dict[str, object]]) -> list[str]:
    lines = ["", "Focus measures compared (`--focus`):", ""]
    lines += [
        "| dataset | measure | half resolution (ratio) | dark ×0.3 (ratio) | "
        "blur σ3 below limit | blur σ6 below limit | dark ×0.3 below limit |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for f in focus:
        shares = [_pct(float(str(f[k]))) for k in ("blur3_below", "blur6_below", "dark_below")]
        lines.append(
            f"| {f['dataset']} | {f['measure']} | {f['half_res_ratio']:.2f} | "
            f"{f['dark_ratio']:.2f} | " + " | ".join(shares) + " |"
        )
    return lines


def markdown(rows: list[Row], focus: list[dict[str, object]], speed: dict[str, float]) -> str:
    lines = _results(rows) + _limits(rows) + (_focus(focus) if focus else [])
    lines += [
        "",
        f"`measure()` on a 1000x1000 image, one OpenCV thread, median of 50: "
        f"{speed['gray']:.2f} ms gray, {speed['RGB']:.2f} ms RGB.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    ap.add_argument("--train", type=int, default=0, help="train images per dataset (0: all)")
    ap.add_argument("--val", type=int, default=0, help="val images per dataset (0: all)")
    ap.add_argument("--focus", type=int, default=0, help="val images per dataset to compare")
    ap.add_argument("--out", type=Path, help="write the markdown tables here too")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    speed = time_measure()
    rows, focus = [], []
    for name, recipes in shipped_datasets().items():
        root = a.datasets / name
        if not root.is_dir():
            print(f"{root}: not here, skipped")
            continue
        t = time.perf_counter()
        rows.append(run_dataset(root, recipes, a.train, a.val))
        if a.focus:
            focus += compare_focus(root, min(a.train or 150, 150), a.focus)
        print(f"{name}: {time.perf_counter() - t:.0f} s", flush=True)
    if a.json:
        print(
            json.dumps(
                {"speed_ms": speed, "rows": [asdict(r) for r in rows], "focus": focus}, default=str
            )
        )
    text = markdown(rows, focus, speed)
    print(text)
    if a.out:
        a.out.write_text(text, encoding="utf-8")
    print(platform.processor() or platform.machine())


if __name__ == "__main__":
    main()
