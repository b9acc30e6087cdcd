"""One recipe's full chain: preprocess -> model -> post-process -> regions -> rules -> verdict.

Every caller runs an image through the same steps, declared once by :class:`InspectorBase`
(the shape of anomalib's base inferencer):

``load``          the constructor: the model (checked against its card), post-processing, rules
``preprocess``    a decoded image -> the frame the model sees (the recipe's preprocessing)
``forward``       frames -> class probabilities, one :class:`ModelRun` per frame (a failure is
                  that frame's, never its neighbours'); ``probabilities`` for a single frame
``post_process``  probabilities -> :class:`Segmentation` (label map, regions, coverage)
``judge``         segmentation -> :class:`Result` (the rules' verdict, what an overlay needs)
``judge_probs``   ``post_process`` and ``judge``, then the frame's input health (issue 25: its
                  quality figures against the recipe's ``[health]`` limits, its familiarity
                  where the inspector has a :class:`~inspect_core.health.FamiliarityCheck`):
                  an image that breaks a limit is REVIEW or FAIL, never PASS
``record``        -> the :class:`~inspect_core.types.Inspection` that is stored

:class:`Inspector` implements them with ONNX Runtime. ``inspect predict`` calls
:meth:`InspectorBase.inspect_file`; ``inspect evaluate`` with a recipe calls ``preprocess`` and
``probabilities``; a station (and so ``inspect demo``) calls ``preprocess``, ``forward`` on
batches, ``judge_probs`` and ``record``; the station's ``FakeInspector`` implements the same
steps without a model.
"""

from __future__ import annotations

import hashlib
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from inspect_core.cards import ModelCheck
from inspect_core.data.datasets import read_image
from inspect_core.errors import DataError, ImageError, InspectError, ModelError
from inspect_core.health.familiarity import familiarity_path, for_model_file
from inspect_core.health.gate import FamiliarityCheck, assess, gate
from inspect_core.rules.engine import BUILTIN_RULES, RuleContext, build_rules
from inspect_core.rules.engine import judge as apply_rules
from inspect_core.runtime.loader import check_for
from inspect_core.runtime.onnx_model import ModelMeta, OnnxModel
from inspect_core.runtime.postprocess import Compose, argmax_labels, build_steps, extract_regions
from inspect_core.runtime.recipe import Recipe, RecipeError
from inspect_core.runtime.tuning_run import load_measured
from inspect_core.types import Decision, InputHealth, Inspection, Region, Verdict

if TYPE_CHECKING:
    from inspect_core.plugin_api.hookspecs import Rule, RuleFactory


@dataclass
class ModelRun:
    """What ``forward`` gives for one frame: its probabilities, or why the model failed on it."""

    probs: np.ndarray | None = None  # (classes, H, W) float32, H x W those of the frame
    error: str | None = None  # a sentence for the record; None when ``probs`` is set
    # the frame's pooled encoder features from the same runs, where the network gives them
    # (the familiarity score's input, issue 25); None otherwise
    features: np.ndarray | None = None


@dataclass
class Segmentation:
    """What ``post_process`` gives ``judge``: the label map after the recipe's steps, the
    regions of the recipe's region classes, and each coverage class's share of the frame."""

    labels: np.ndarray  # (H, W) class indexes
    regions: list[Region]
    coverage: dict[str, float]


@dataclass
class Result:
    """What ``judge`` gives: the verdict, plus what an overlay needs (the frame the model saw
    and its label map); ``judge_probs`` adds the frame's input health (and its verdict)."""

    verdict: Verdict
    labels: np.ndarray
    image: np.ndarray
    health: InputHealth | None = None


class InspectorBase(ABC):
    """The steps of an inspection (see the module docstring). A subclass sets ``recipe``,
    ``classes`` and ``meta`` and writes ``probabilities``, ``post_process`` and ``judge``; the
    rest is shared. ``model_sha256`` / ``model_card`` are recorded with every inspection."""

    recipe: Recipe
    classes: list[str]
    model_sha256: str = ""
    model_card: str | None = None
    # how like the training images a frame is (issue 25); None: not checked
    familiarity: FamiliarityCheck | None = None
    _meta: ModelMeta

    @property
    def meta(self) -> ModelMeta:
        """How the model runs over a frame: tile, stride, test-time copies."""
        return self._meta

    @meta.setter
    def meta(self, value: ModelMeta) -> None:
        self._meta = value

    # -- the steps --------------------------------------------------------------------------
    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """The frame the model sees: the recipe's preprocessing (a plugin's), if any."""
        pre = self.recipe.preprocess
        return image if pre is None else pre(image)

    @abstractmethod
    def probabilities(self, frame: np.ndarray) -> np.ndarray:
        """Class probabilities (classes, H, W) of one preprocessed frame; raises on failure."""

    def run_frame(self, frame: np.ndarray) -> ModelRun:
        """The model over one frame: its probabilities and, where the network gives them, its
        features (subclasses with a familiarity check override it); raises on failure."""
        return ModelRun(self.probabilities(frame))

    def forward(self, frames: Sequence[np.ndarray]) -> list[ModelRun]:
        """Probabilities of several frames, one :class:`ModelRun` each, in order; a frame the
        model fails on gets its reason, the others still run."""
        return [self._run_one(f) for f in frames]

    @abstractmethod
    def post_process(self, probs: np.ndarray) -> Segmentation:
        """Label map, regions and coverage from the probabilities."""

    @abstractmethod
    def judge(self, frame: np.ndarray, seg: Segmentation) -> Result:
        """The rules' verdict on a segmentation of ``frame``."""

    # -- the runs built from them -----------------------------------------------------------
    def judge_probs(
        self, frame: np.ndarray, probs: np.ndarray, features: np.ndarray | None = None
    ) -> Result:
        """``post_process`` then ``judge``, then the frame's input health: its quality figures
        checked against the recipe's ``[health]`` limits (a broken one makes the verdict REVIEW
        or FAIL, ``on_problem``, with a ``quality`` hit that says why), and its familiarity
        from the ``features`` of its model run (an unfamiliar frame likewise)."""
        result = self.judge(frame, self.post_process(probs))
        settings = self.recipe.health
        result.health = assess(frame, settings, self.familiarity, features)
        result.verdict = gate(result.verdict, result.health, settings)
        return result

    def inspect_image(self, image: np.ndarray) -> Result:
        """The whole chain on one decoded image; raises what a step raises."""
        frame = self.preprocess(image)
        run = self.run_frame(frame)
        return self.judge_probs(frame, cast(np.ndarray, run.probs), run.features)

    def record(
        self,
        source: str,
        image_sha256: str,
        size: tuple[int, int],
        verdict: Verdict,
        started: float,
        **fields: Any,
    ) -> Inspection:
        """The :class:`Inspection` to store for one image: ``size`` is (width, height) as
        delivered, ``started`` the ``time.perf_counter()`` when its work began; ``fields`` are
        the other :class:`Inspection` fields (station, plugin, error, part_id, capture_id...)."""
        return Inspection(
            source=source,
            image_sha256=image_sha256,
            width=int(size[0]),
            height=int(size[1]),
            verdict=verdict,
            recipe=self.recipe.name,
            model_sha256=self.model_sha256,
            model_card=self.model_card,
            thresholds=self.recipe.thresholds(),
            inspected_at=time.time(),
            latency_ms=(time.perf_counter() - started) * 1000,
            **fields,
        )

    def inspect_file(
        self, path: str | Path, station: str = "cli", plugin: str = ""
    ) -> tuple[Inspection, Result | None]:
        """Inspect one file; unreadable images give an ERROR inspection, never an exception."""
        path = Path(path)
        t0 = time.perf_counter()
        err: str | None
        try:
            raw = path.read_bytes()
        except OSError as e:
            raw, err = b"", f"cannot read file: {e}"
        else:
            err = None
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
        sha = hashlib.sha256(raw).hexdigest()
        health = result.health if result else None
        fields = dict(station=station, plugin=plugin, error=err, health=health)
        return self.record(str(path), sha, (w, h), verdict, t0, **fields), result

    def _run_one(self, frame: np.ndarray) -> ModelRun:
        try:
            return self.run_frame(frame)
        except Exception as e:
            return ModelRun(error=f"the model failed on this image: {type(e).__name__}: {e}")


class Inspector(InspectorBase):
    """Runs one recipe with ONNX Runtime. Build once per station; every step is cheap to call
    repeatedly."""

    def __init__(
        self,
        recipe: Recipe,
        rule_factories: Mapping[str, RuleFactory] | None = None,
        threads: int = 0,
        model: OnnxModel | None = None,
    ):
        """Load the model and build the post-processing and rules; anything in the recipe that
        does not fit the model is a :class:`RecipeError` naming the recipe (exit code 2)."""
        self.recipe = recipe
        card, required = recipe.card_path, recipe.card_required  # a plugin's: card required
        # the model is checked against its card once, as it loads (a mismatch is a ModelError);
        # a model handed in keeps the check it loaded with when it is of the recipe's files
        # measured on this machine the first time it meets it (issue 26), then the variant
        # that passed here and runs fastest here
        self.model = model or load_measured(recipe.model, threads, card, required)
        self.model_check: ModelCheck = check_for(self.model.loaded, recipe.model, card, required)
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
            self.rules: list[Rule] = build_rules(
                recipe.rules, rule_factories or BUILTIN_RULES, self.classes
            )
        except (ValueError, TypeError) as e:  # RuleConfigError is a ValueError
            raise RecipeError(f"{recipe.where}: {e}") from e
        self.region_ids = [self.classes.index(c) for c in names]
        # the card is recorded with every inspection only when it vouches for this very file
        self.model_card = str(self.model_check.card.resolve()) if self.model_check.card else None
        self.familiarity = familiarity_for(self.model)

    @property
    def meta(self) -> ModelMeta:
        """The model's (a tool that changes ``model.meta`` changes this)."""
        return self.model.meta

    @meta.setter
    def meta(self, value: ModelMeta) -> None:
        self.model.meta = value

    def probabilities(self, frame: np.ndarray) -> np.ndarray:
        """The model over one frame, tiled as the recipe says (else as the model says)."""
        return self.model.probabilities(
            frame, tile=self.recipe.tile or None, overlap=self.recipe.tile_overlap
        )

    def run_frame(self, frame: np.ndarray) -> ModelRun:
        """:meth:`probabilities`, with the frame's features from the same runs when the
        inspector checks familiarity."""
        if self.familiarity is None:
            return ModelRun(self.probabilities(frame))
        out = self.model.predict(frame, self.recipe.tile or None, self.recipe.tile_overlap)
        return ModelRun(out.probs, features=out.features)

    def forward(self, frames: Sequence[np.ndarray]) -> list[ModelRun]:
        """Same-size frames that fit one tile share one batch; if a batch fails, its frames run
        one by one, so that one bad frame does not fail the others."""
        runs: list[ModelRun | None] = [None] * len(frames)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, f in enumerate(frames):
            groups.setdefault(f.shape, []).append(i)
        tile = self.recipe.tile or self.meta.tile
        for shape, idx in groups.items():
            if len(idx) > 1 and max(shape[:2]) <= tile:
                try:
                    outs = self.model.predict_batch(
                        [frames[i] for i in idx], tile=tile, overlap=self.recipe.tile_overlap
                    )
                except Exception:
                    pass  # one by one below
                else:
                    for i, out in zip(idx, outs):
                        runs[i] = ModelRun(out.probs, features=out.features)
                    continue
            for i in idx:
                runs[i] = self._run_one(frames[i])
        return [r for r in runs if r is not None]

    def post_process(self, probs: np.ndarray) -> Segmentation:
        labels, found = self.post.run(argmax_labels(probs), probs)
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
        return Segmentation(labels, regions, coverage)

    def judge(self, frame: np.ndarray, seg: Segmentation) -> Result:
        ctx = RuleContext(seg.regions, seg.labels, self.classes, self.recipe.pixel_size_mm)
        return Result(apply_rules(ctx, self.rules, seg.coverage), seg.labels, frame)


def familiarity_for(model: OnnxModel) -> FamiliarityCheck | None:
    """The familiarity model shipped beside the file ``model`` runs (the variant's own file
    where a faster variant runs), when that file gives the features it needs; else None."""
    file = model.loaded.file
    if not model.has_features:
        if familiarity_path(file).is_file():
            raise ModelError(
                f"{familiarity_path(file)}: a familiarity file, but {file} has no 'features' "
                "output to score it with; ship the model copy that training/fit_familiarity.py "
                "made beside it (or remove the familiarity file)"
            )
        return None
    return for_model_file(file)


def _by_index(specs: list[dict[str, Any]], classes: list[str]) -> list[dict[str, Any]]:
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
