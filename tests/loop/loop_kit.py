"""Small generated images, a throw-away plugin, stations and operators for the good-only
loop's tests.

Good parts are a smooth noise texture; a defect is a bright blob (a disc) or a dark line
painted on one; a "pair" part has a blob and a line too faint for the good-only model to see.
The operators are simulated from the truth masks, as a careful operator decides. Nothing real
is trained on: the models the loop trains take seconds.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import sqlalchemy as sa

from inspect_core.cli import cli
from inspect_core.plugin_api.manager import get_registry, load_cli_plugins
from inspect_db.engine import make_engine
from inspect_review.storage.queue import item
from inspect_review.storage.store import add_user, record_decision
from inspect_review.storage.types import DecisionIn, Mark, RegionLabel, RegionView
from inspect_stations.config.station import parse_config
from inspect_stations.pipeline.daemon import Station

SIZE = (48, 48)


def texture(rng: np.random.Generator, size: tuple[int, int] = SIZE) -> np.ndarray:
    noise = rng.normal(0.0, 1.0, size).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 1.0)
    return np.clip(120 + 12 * smooth / smooth.std(), 0, 255).astype(np.uint8)


def blob(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``img`` with a bright disc of radius 5 away from the border, and its mask (1 inside)."""
    h, w = img.shape
    cy, cx = int(rng.integers(12, h - 12)), int(rng.integers(12, w - 12))
    mask = np.zeros((h, w), np.uint8)
    cv2.circle(mask, (cx, cy), 5, 1, -1)
    out = img.copy()
    out[mask > 0] = 235
    return out, mask


def line(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``img`` with a dark straight line 3 pixels wide, 24 long, and its mask (1 on it)."""
    h, w = img.shape
    y0, x0 = int(rng.integers(10, h - 10)), int(rng.integers(8, w - 32))
    y1 = int(np.clip(y0 + rng.integers(-6, 7), 6, h - 6))
    mask = np.zeros((h, w), np.uint8)
    cv2.line(mask, (x0, y0), (x0 + 24, y1), 1, 3)
    out = img.copy()
    out[mask > 0] = 25
    return out, mask


def faint_line(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``img`` with a faint dark bar (2 x 16 pixels, 20 grey levels darker) near its bottom
    edge, too faint for the good-only model, and its mask (1 on it)."""
    h, w = img.shape
    x, y, bw, bh = (w - 16) // 2, h - 9, 16, 2
    mask = np.zeros((h, w), np.uint8)
    mask[y : y + bh, x : x + bw] = 1
    out = img.copy()
    out[mask > 0] = np.clip(out[mask > 0].astype(int) - 20, 0, 255).astype(np.uint8)
    return out, mask


CLASS_OF = {"blob": 1, "line": 2}  # the truth masks' values
NAMES = {v: k for k, v in CLASS_OF.items()}  # and what operators call them


def make(kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """An image of ``kind`` and its truth mask: 0 good, 1 blob, 2 line. ``pair`` is a blob
    near the top and a faint line near the bottom (:func:`faint_line`)."""
    img = texture(rng)
    if kind in CLASS_OF:
        img, mask = (blob if kind == "blob" else line)(img, rng)
        return img, mask * CLASS_OF[kind]
    if kind == "pair":
        img[:30], top = blob(img[:30], rng)  # the disc's centre at most 18 rows down
        img, bottom = faint_line(img)
        truth = np.zeros(img.shape, np.uint8)
        truth[:30] = top
        truth[bottom > 0] = CLASS_OF["line"]
        return img, truth
    return img, np.zeros(img.shape, np.uint8)


def good_dataset(root: Path, groups: int = 3, per_group: int = 8, seed: int = 0) -> Path:
    """A shared-layout dataset of good images only (masks all background), in groups
    (``_gN_`` in each stem): what a good-only model is trained from."""
    rng = np.random.default_rng(seed)
    for sub in ("images", "masks"):
        (root / "train" / sub).mkdir(parents=True, exist_ok=True)
    meta = {"name": "loop-texture", "classes": ["background", "defect"], "groups": "_(g\\d+)_"}
    (root / "classes.json").write_text(json.dumps(meta))
    for g in range(groups):
        for i in range(per_group):
            img, mask = make("good", rng)
            cv2.imwrite(str(root / "train" / "images" / f"tex_g{g}_{i:03d}.png"), img)
            cv2.imwrite(str(root / "train" / "masks" / f"tex_g{g}_{i:03d}.png"), mask)
    return root


@dataclass(frozen=True)
class Part:
    """An image put in a station's inbox: its file name, what it shows (good, blob, line or
    pair) and its truth mask (0 background, 1 blob, 2 line)."""

    name: str
    kind: str
    mask: np.ndarray


def write_parts(inbox: Path, counts: dict[str, int], seed: int, prefix: str = "") -> list[Part]:
    """``counts[kind]`` images of each kind, written to ``inbox`` by write-then-rename (a
    station never sees half a file); their :class:`Part` records."""
    rng = np.random.default_rng(seed)
    inbox.mkdir(parents=True, exist_ok=True)
    out = []
    for kind, n in counts.items():
        for i in range(n):
            img, mask = make(kind, rng)
            name = f"{prefix}{kind}_{i:03d}.png"
            tmp = inbox / f".{name}.tmp"
            tmp.write_bytes(cv2.imencode(".png", img)[1].tobytes())
            os.replace(tmp, inbox / name)
            out.append(Part(name, kind, mask))
    return out


PLUGIN_CODE = '''"""A throw-away plugin of the good-only loop's tests: one domain, its recipes."""
from pathlib import Path

from inspect_core.plugin_api.hookspecs import hookimpl
from inspect_core.runtime.recipe import Domain, Recipe

HERE = Path(__file__).parent


@hookimpl
def register_domains(register):
    recipes = [Recipe.from_toml(p) for p in sorted(HERE.glob("*.toml"))]
    register(Domain("{name}", recipes, description="the good-only loop's tests"))
'''

# as the shipped tile-anomaly recipe: no class named, so the model trained from the operators'
# names runs it unchanged (a region rule that names no decision: anomaly REVIEW, a named FAIL)
GOOD_ONLY_RECIPE = """name = "{recipe}"
description = "generated texture, good-only: what is unlike the good parts goes to an operator"
model = "{model}"

[[postprocess]]
type = "remove_small"
default_px = 6

[[rules]]
type = "min_area"
min = 12
"""


def recipe_text(recipe: str, model: Path, template: str = GOOD_ONLY_RECIPE) -> str:
    return template.format(recipe=recipe, model=str(model.resolve()).replace("\\", "/"))


def install_plugin(site: Path, name: str, recipes: dict[str, str]) -> Path:
    """A plugin package ``name`` with ``recipes`` (name -> TOML text), and a
    ``name-0.1.dist-info`` whose entry point (``inspect.plugins``) finds it, both in ``site``:
    on ``sys.path`` (and ``PYTHONPATH``, for other processes) it is installed."""
    pkg = site / name
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(PLUGIN_CODE.format(name=name))
    for recipe, text in recipes.items():
        (pkg / f"{recipe}.toml").write_text(text)
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[inspect.plugins]\n{name} = {name}\n")
    return pkg


def use_plugin(monkeypatch, site: Path) -> None:
    """Put the plugins installed in ``site`` on ``sys.path`` and ``PYTHONPATH`` (the Dask
    workers of a backtest are other processes), and load the registry and the CLI's plugin
    commands again. :func:`forget_plugins` undoes it."""
    monkeypatch.syspath_prepend(str(site))
    paths = [str(site), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    get_registry(refresh=True)
    load_cli_plugins(cli)


def forget_plugins(monkeypatch, *names: str) -> None:
    """The registry as it was before :func:`use_plugin` (the plugins' modules dropped)."""
    monkeypatch.undo()
    for name in names:
        sys.modules.pop(name, None)
    get_registry(refresh=True)


# -- the line: stations and their records ------------------------------------------------------
def run_station(folder: Path, name: str, plugin: str, recipe: str, url: str) -> int:
    """Run station ``name`` on ``folder/inbox`` until it is empty, recording to ``url`` and
    following the model registry there (the default); its exit code."""
    cfg = parse_config(
        {
            "station": {
                "name": name,
                "plugin": plugin,
                "recipe": recipe,
                "until_empty": True,
                "state_dir": "state",
            },
            "source": {"type": "folder", "path": "inbox", "stable_s": 0.0, "poll_s": 0.02},
            "database": {"url": url},
            "archive": {"path": "archive", "quarantine": "quarantine"},
        },
        folder,
    )
    return Station(cfg).run(install_signals=False)


@dataclass(frozen=True)
class Record:
    """One recorded inspection: its id, the file name it came in as, its verdict, and the
    model that judged it (sha256, and its registry label)."""

    id: int
    name: str
    verdict: str
    sha256: str
    version: str | None


def records(url: str) -> list[Record]:
    """Every inspection recorded in ``url``, oldest first."""
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            rows = c.execute(
                sa.text(
                    "SELECT i.id, i.source, i.verdict, m.sha256, m.version FROM inspection i "
                    "JOIN model m ON m.id = i.model_id ORDER BY i.id"
                )
            ).fetchall()
    finally:
        engine.dispose()
    return [Record(r.id, Path(r.source).name, r.verdict, r.sha256, r.version) for r in rows]


# -- the operators ----------------------------------------------------------------------------


def region_label(region: RegionView, truth: np.ndarray) -> RegionLabel:
    """What an operator who sees the part says of a recorded region: the defect it covers
    most, by name, or "not a defect"."""
    x, y, w, h = region.bbox
    under = truth[y : y + h, x : x + w]
    under = under[under > 0]
    if not under.size:
        return RegionLabel(region.id, "not_defect")
    return RegionLabel(region.id, "defect", NAMES[int(np.bincount(under).argmax())])


def missed_marks(regions: list[RegionView], truth: np.ndarray) -> tuple[Mark, ...]:
    """A polygon around each true defect no recorded region touches (the model missed it),
    drawn with its class: its corners at the defect's first and last pixels."""
    covered = np.zeros(truth.shape, bool)
    for r in regions:
        x, y, w, h = r.bbox
        covered[y : y + h, x : x + w] = True
    marks = []
    for value, name in NAMES.items():
        ys, xs = np.nonzero(truth == value)
        if ys.size and not covered[ys, xs].any():
            x0, x1, y0, y1 = int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())
            box = ((x0, y0), (x1, y0), (x1, y1), (x0, y1))
            marks.append(
                Mark("polygon", tuple((float(a), float(b)) for a, b in box), "defect", name)
            )
    return tuple(marks)


def review_all(url: str, parts: dict[str, Part]) -> dict[str, DecisionIn]:
    """An operator decides every recorded image as the review page would record it: a good
    part PASS (its regions not a defect), a part with a defect FAIL, each region named by the
    defect it covers and each defect no region found drawn as a polygon. The decisions by
    file name."""
    engine = make_engine(url)
    out = {}
    try:
        user = add_user(engine, "olga", "operator", "not-a-real-hash")
        for rec in records(url):
            part = parts[rec.name]
            with engine.connect() as c:
                view = item(c, rec.id)
            labels = tuple(region_label(r, part.mask) for r in view.regions)
            if part.kind == "good":
                d = DecisionIn(rec.id, user.id, "PASS", labels)
            else:
                d = DecisionIn(
                    rec.id, user.id, "FAIL", labels, marks=missed_marks(view.regions, part.mask)
                )
            record_decision(engine, d)
            out[rec.name] = d
    finally:
        engine.dispose()
    return out
