"""Sample images with expected verdicts, picked from a dataset (``inspect plugin samples``).

A recipe's ``[[samples]]`` are images and the verdict each must get; the plugin's test
(:func:`inspect_core.plugin_api.testing.assert_samples`) fails when a later model or rule change
alters one. :func:`pick_samples` takes them from a dataset split (the validation split by
default): the expected verdict of an image is what the recipe's post-processing and rules say
about its *true* mask, and only images where the model's verdict agrees are taken, so a sample
documents correct behaviour. When the split has no defect-free image (NEU-Seg: every image has
a defect), or no FAIL, a crop of an image is used. :func:`write_samples` saves the images as PNG
(the decoded pixels that were judged) into the plugin's ``samples/`` folder and writes the
``[[samples]]`` block at the end of the recipe's TOML file, after :data:`SAMPLES_MARK`
(replacing what an earlier run wrote there).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from inspect_core.data.datasets import Dataset
from inspect_core.data.frames import model_frame
from inspect_core.errors import InspectError
from inspect_core.plugin_api.scaffold_templates import SAMPLES_MARK
from inspect_core.runtime.inspector import InspectorBase

# the mark that training/pick_samples.py wrote before `inspect plugin samples` existed
OLD_MARKS = ("# --- samples (written by training/pick_samples.py) ---",)
VERDICTS = ("FAIL", "PASS", "REVIEW")


@dataclass(frozen=True)
class PickedSample:
    """An image whose verdict from the model equals the verdict of its true mask.
    ``source``: the dataset image; ``crop``: which crop of it (None: the whole image)."""

    verdict: str
    image: np.ndarray  # as decoded: gray (H, W) or RGB (H, W, 3)
    source: Path
    crop: int | None = None

    def file_name(self, recipe: str) -> str:
        crop = "" if self.crop is None else f"_crop{self.crop}"
        return f"{recipe}_{self.verdict.lower()}_{self.source.stem}{crop}.png"


def quotas(n: int) -> dict[str, int]:
    """How many samples of each verdict ``n`` asks for: half FAIL, a quarter PASS, one REVIEW
    (at least one of each)."""
    return {"FAIL": max(1, n // 2), "PASS": max(1, n // 4), "REVIEW": 1}


def _onehot(mask: np.ndarray, n: int) -> np.ndarray:
    """A true mask as probabilities (ignored pixels count as class 0)."""
    m = np.where(mask >= n, 0, mask)
    return np.eye(n, dtype=np.float32)[m].transpose(2, 0, 1)


def _verdicts(
    inspector: InspectorBase, img: np.ndarray, mask: np.ndarray, path: Path
) -> tuple[str, str]:
    """(verdict of the true mask, verdict of the model) on the recipe's preprocessed frame."""
    if inspector.recipe.preprocess is not None:
        frame, mask = model_frame(img, mask, inspector.preprocess, path)
    else:
        frame = img
    n = len(inspector.classes)
    run = inspector.run_frame(frame)  # its health (familiarity) is the image's, mask or model
    assert run.probs is not None
    truth = inspector.judge_probs(frame, _onehot(mask, n), run.features).verdict.decision.value
    got = inspector.judge_probs(frame, run.probs, run.features).verdict.decision.value
    return truth, got


def pick_samples(
    inspector: InspectorBase, ds: Dataset, n: int = 4, scan: int = 60, seed: int = 0
) -> list[PickedSample]:
    """Up to :func:`quotas` ``(n)`` samples per verdict from ``scan`` images of ``ds`` (in a
    seeded random order), FAIL first; crops stand in for a missing PASS or FAIL."""
    if len(ds.classes) != len(inspector.classes):
        raise InspectError(
            f"{ds.root}: the dataset has the classes {ds.classes}, the model of recipe "
            f"{inspector.recipe.name} {inspector.classes}; give the dataset it was trained on"
        )
    order = [int(i) for i in np.random.default_rng(seed).permutation(len(ds))[:scan]]
    picked: dict[str, list[PickedSample]] = {v: [] for v in VERDICTS}
    for i in order:
        img, mask = ds.load(i)
        truth, got = _verdicts(inspector, img, mask, ds.samples[i].image)
        if truth == got:
            picked[got].append(PickedSample(got, img, ds.samples[i].image))
    for want in ("PASS", "FAIL"):  # no defect-free image (NEU-Seg) or no FAIL: crops
        for i in order:
            if picked[want]:
                break
            img, mask = ds.load(i)
            for k, (ci, cm) in enumerate(_crops(img, mask)):
                truth, got = _verdicts(inspector, ci, cm, ds.samples[i].image)
                if truth == got == want:
                    picked[want].append(PickedSample(want, ci, ds.samples[i].image, k))
                    break
    quota = quotas(n)
    return [p for v in VERDICTS for p in picked[v][: quota[v]]]


def _crops(img: np.ndarray, mask: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Half-size crops on a grid (image and mask)."""
    sh, sw = max(32, mask.shape[0] // 2), max(32, mask.shape[1] // 2)
    for y in range(0, max(1, mask.shape[0] - sh + 1), max(1, sh // 2)):
        for x in range(0, max(1, mask.shape[1] - sw + 1), max(1, sw // 2)):
            yield img[y : y + sh, x : x + sw].copy(), mask[y : y + sh, x : x + sw].copy()


def samples_block(picks: list[PickedSample], recipe: str, image_dir: str) -> str:
    """The ``[[samples]]`` tables (after :data:`SAMPLES_MARK`); ``image_dir``: the samples
    folder as the recipe file reaches it (``../samples``)."""
    lines = [SAMPLES_MARK]
    for p in picks:
        image = f"{image_dir}/{p.file_name(recipe)}"
        lines += ["", "[[samples]]", f"image = {json.dumps(image)}", f'expected = "{p.verdict}"']
    return "\n".join(lines) + "\n"


_TABLE = re.compile(r"^\s*\[")  # a table or array-of-tables header
_SAMPLES = re.compile(r"^\s*\[\[\s*samples\s*\]\]")


def samples_dir(recipe_toml: Path) -> Path:
    """Where a recipe's sample images go: ``samples/`` beside its ``recipes/`` folder."""
    return recipe_toml.resolve().parent.parent / "samples"


def write_samples(picks: list[PickedSample], recipe: str, recipe_toml: Path) -> list[Path]:
    """Save ``picks`` into :func:`samples_dir` and put their ``[[samples]]`` block at the end
    of ``recipe_toml`` in place of the one after :data:`SAMPLES_MARK` (or an old mark);
    returns the images written."""
    out_dir = samples_dir(recipe_toml)
    out_dir.mkdir(exist_ok=True)
    written = []
    for p in picks:
        path = out_dir / p.file_name(recipe)
        bgr = p.image if p.image.ndim == 2 else cv2.cvtColor(p.image, cv2.COLOR_RGB2BGR)
        if not cv2.imwrite(str(path), bgr):
            raise InspectError(f"{path}: cannot write the sample image (disk full? permissions?)")
        written.append(path)
    rel = Path(os.path.relpath(out_dir, recipe_toml.resolve().parent)).as_posix()
    text = recipe_toml.read_text()
    marks = "|".join(re.escape(m) for m in (SAMPLES_MARK, *OLD_MARKS))
    head, *tail = re.split(marks, text, maxsplit=1)
    after = _after_samples(tail[0]) if tail else ""
    block = samples_block(picks, recipe, rel)
    recipe_toml.write_text(head.rstrip() + "\n\n" + block + (f"\n{after}" if after else ""))
    return written


def _after_samples(tail: str) -> str:
    """What follows the old ``[[samples]]`` block in a recipe (a table added after it, e.g. the
    ``[health.quality]`` that ``inspect health fit --write`` appends): from the first table
    header that is not ``[[samples]]``, with the comment lines just above it."""
    lines = tail.splitlines()
    for i, line in enumerate(lines):
        if _TABLE.match(line) and not _SAMPLES.match(line):
            start = i
            while start > 0 and lines[start - 1].lstrip().startswith("#"):
                start -= 1
            return "\n".join(lines[start:]).rstrip() + "\n"
    return ""
