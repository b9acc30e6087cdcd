"""One recipe's full chain: preprocess -> model -> post-process -> regions -> rules -> verdict."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inspect_core.cards import ModelCheck, verify_model
from inspect_core.data.datasets import read_image
from inspect_core.errors import DataError, ImageError, InspectError
from inspect_core.rules.engine import RuleContext, build_rules, judge
from inspect_core.runtime.onnx_model import OnnxModel
from inspect_core.runtime.postprocess import Compose, argmax_labels, build_steps, extract_regions
from inspect_core.runtime.recipe import Recipe, RecipeError
from inspect_core.types import Decision, Inspection, Verdict


@dataclass
class Result:
    """A verdict plus what an overlay needs."""

    verdict: Verdict
    labels: np.ndarray
    image: np.ndarray


class Inspector:
    """Runs one recipe. Build once per station; ``inspect_image`` is cheap to call repeatedly."""

    def __init__(
        self,
        recipe: Recipe,
        rule_factories: dict | None = None,
        threads: int = 0,
        model: OnnxModel | None = None,
    ):
        """Load the model and build the post-processing and rules; anything in the recipe that
        does not fit the model is a :class:`RecipeError` naming the recipe (exit code 2)."""
        from inspect_core.rules.engine import BUILTIN_RULES

        self.recipe = recipe
        card = recipe.card or recipe.model.with_suffix(".json")
        # the model is checked against its card as it loads (a mismatch is a ModelError);
        # a model handed in was checked when it loaded, its hash is cached: this is cheap
        self.model = model or OnnxModel(recipe.model, threads=threads, card=card)
        self.model_check: ModelCheck = verify_model(recipe.model, card)
        self.classes = self.model.classes
        self.model_sha256 = self.model_check.sha256
        problems = recipe.class_problems(self.classes)
        if problems:
            raise RecipeError("; ".join(problems))
        names = recipe.region_classes if recipe.region_classes is not None else self.classes[1:]
        try:
            self.post: Compose = build_steps(
                _by_index(recipe.postprocess, self.classes), recipe.pixel_size_mm
            )
            self.rules = build_rules(recipe.rules, rule_factories or BUILTIN_RULES, self.classes)
        except (ValueError, TypeError) as e:  # RuleConfigError is a ValueError
            raise RecipeError(f"{recipe.where}: {e}") from e
        self.region_ids = [self.classes.index(c) for c in names]
        # the card is recorded with every inspection only when it vouches for this very file
        self.model_card = str(self.model_check.card.resolve()) if self.model_check.card else None

    def inspect_image(self, img: np.ndarray) -> Result:
        if self.recipe.preprocess is not None:
            img = self.recipe.preprocess(img)
        probs = self.model.probabilities(
            img, tile=self.recipe.tile or None, overlap=self.recipe.tile_overlap
        )
        return self.judge_probs(img, probs)

    def judge_probs(self, img: np.ndarray, probs: np.ndarray) -> Result:
        labels = argmax_labels(probs)
        run = getattr(self.post, "run", None)  # Compose: also the components it has labelled
        if run is not None:
            labels, found = run(labels, probs)
        else:
            labels, found = self.post(labels, probs), None
        regions = extract_regions(
            labels,
            probs,
            self.classes,
            self.region_ids,
            self.recipe.pixel_size_mm,
            components=found,
        )
        total = labels.size
        coverage = {
            c: float(np.count_nonzero(labels == self.classes.index(c))) / total
            for c in self.recipe.coverage_classes
        }
        ctx = RuleContext(regions, labels, self.classes, self.recipe.pixel_size_mm)
        return Result(judge(ctx, self.rules, coverage), labels, img)

    def inspect_file(
        self, path: str | Path, station: str = "cli", plugin: str = "", **extra
    ) -> tuple[Inspection, Result | None]:
        """Inspect one file; unreadable images give an ERROR inspection, never an exception."""
        path = Path(path)
        t0 = time.perf_counter()
        try:
            raw = path.read_bytes()
        except OSError as e:
            raw = b""
            err = f"cannot read file: {e}"
        else:
            err = None
        sha = hashlib.sha256(raw).hexdigest()
        result = None
        w = h = 0
        if err is None:
            try:
                img = read_image(path)
                h, w = img.shape[:2]
                result = self.inspect_image(img)
            except (DataError, ImageError) as e:
                err = str(e)
            except InspectError:
                raise  # a configuration problem (e.g. a rule), not this image's
            except Exception as e:  # one odd image must not stop a batch: record why
                err = f"{path}: inspection failed: {type(e).__name__}: {e}"
        verdict = result.verdict if result else Verdict(Decision.ERROR)
        insp = Inspection(
            source=str(path),
            image_sha256=sha,
            width=w,
            height=h,
            verdict=verdict,
            station=station,
            plugin=plugin,
            recipe=self.recipe.name,
            model_sha256=self.model_sha256,
            model_card=self.model_card,
            thresholds=self.recipe.thresholds(),
            inspected_at=time.time(),
            latency_ms=(time.perf_counter() - t0) * 1000,
            error=err,
            **extra,
        )
        return insp, result


def _by_index(specs: list[dict], classes: list[str]) -> list[dict]:
    """Post-processing specs may name classes; the steps work on class indexes."""

    def index(c: Any) -> int:
        if isinstance(c, str) and c in classes:
            return classes.index(c)
        try:
            i = int(c)
        except (TypeError, ValueError):
            i = -1
        if not 0 <= i < len(classes):
            raise ValueError(
                f"postprocess: {c!r} is neither a class of the model {classes} "
                f"nor a class index 0..{len(classes) - 1}"
            )
        return i

    out = []
    for s in specs:
        s = dict(s)
        if "classes" in s and s["classes"] is not None:
            s["classes"] = [index(c) for c in s["classes"]]
        for key in ("min_px", "min_mm2"):
            if key in s:
                s[key] = {index(k): v for k, v in s[key].items()}
        out.append(s)
    return out
