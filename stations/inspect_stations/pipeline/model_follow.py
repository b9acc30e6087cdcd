"""Following the model registry: the station asks it every ``[model] check_s`` seconds which
version of its recipe's model is active, loads a new one beside the running one (the line
keeps running meanwhile) and hands it to the pipeline, which switches between two images: an
image is judged, post-processed and recorded entirely by the model that ran on it, and every
record carries that model's sha256. A version that fails to load (a missing file, a card that
does not vouch for it, classes that are neither the recipe's nor the named defects of its
good-only model: :mod:`inspect_core.anomaly.named`) is logged and the running model kept
(and loaded again after ``RETRY_S``); a registry that does not answer (the database away)
keeps the running model too, and is asked again later.

Before the switch a version is tried (:meth:`ModelFollower.trial`): on a blank frame, on the
last image the station recorded and on the recipe's shipped samples (``[[samples]]``, each of
which must get its expected verdict). A version that fails its trial (it raises, or gives other
than one probability map per class of the image's size, or misjudges a sample) is never switched
to nor tried again; it is logged once (``model_switch_failed``), and ``station status`` shows it
as NEEDS ACTION until the station runs the active version again (a later version switched to, a
rollback)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from inspect_core.anomaly.named import GOOD_ONLY_CLASSES, NAMED_HINT, names_defects
from inspect_core.cards import read_small_file, sha256_cached
from inspect_core.data.datasets import read_image
from inspect_core.errors import InspectError
from inspect_core.plugin_api.interfaces import ModelVersion, VersionSource
from inspect_core.runtime.inspector import Inspector, InspectorBase
from inspect_stations.config.types import Limits
from inspect_stations.inputs.image_check import load_image
from inspect_stations.logs import StationLog
from inspect_stations.pipeline.status import StatusBoard

RETRY_S = 60.0  # a version that would not load is tried again after this long
SWITCH_KEY = "model_switch"  # the status's NEEDS ACTION entry for a version not switched to
BLANK = (40, 56)  # the blank frame every version is tried on first (height, width)
VERDICTS = ("PASS", "REVIEW", "FAIL")

Build = Callable[[Any], InspectorBase]  # a recipe -> its inspector (with the station's overrides)


class TrialFailed(Exception):
    """A version that loads but fails its trial run: the same file would fail the same way, so
    it is not tried again."""


@dataclass(frozen=True)
class TrialImage:
    """An image a new version is tried on before the switch."""

    what: str  # how messages name it
    image: np.ndarray
    expected: str | None = None  # the verdict it must get (a shipped sample); None: any
    # a good-only recipe's REVIEW sample judged by a model that names defects: FAIL is its
    # answer to the same finding
    fail_for_review: bool = False


def run_trial(insp: InspectorBase, t: TrialImage, preprocess: bool = True) -> str:
    """The verdict of ``insp`` on ``t``; :class:`TrialFailed` when it fails on the image, gives
    other than one probability map per class of the frame's size, or (a sample) another
    verdict than the expected one."""
    try:
        frame = insp.preprocess(t.image) if preprocess else t.image
        run = insp.forward([frame])[0]
        if run.error is not None or run.probs is None:
            raise TrialFailed(f"on {t.what}: {_one_line(run.error)}")
        h, w = frame.shape[:2]
        n = len(insp.classes)
        if tuple(run.probs.shape) != (n, h, w):
            raise TrialFailed(
                f"on {t.what} ({w}x{h} pixels) it gives probabilities of shape "
                f"{list(run.probs.shape)}, not {n} classes x {h} x {w}: its network does not "
                f"fit the recipe's {n} classes {list(insp.classes)}"
            )
        if not np.isfinite(run.probs).all():
            raise TrialFailed(f"on {t.what} it gives probabilities that are NaN or infinite")
        verdict = insp.judge_probs(frame, run.probs).verdict.decision.value
    except TrialFailed:
        raise
    except Exception as e:
        raise TrialFailed(f"on {t.what}: {type(e).__name__}: {_one_line(e)}") from e
    named = t.fail_for_review and t.expected == "REVIEW" and verdict == "FAIL"
    if t.expected and verdict != t.expected and not named:
        raise TrialFailed(f"shipped sample {t.what} is judged {verdict}, expected {t.expected}")
    return str(verdict)


def recipe_for(base: Any, version: ModelVersion | None) -> Any:
    """``base`` (the recipe as the plugin ships it) running ``version``'s model file, checked
    against its card (required); ``base`` itself for None."""
    if version is None:
        return base
    model = Path(version.path)
    card = Path(version.card) if version.card else model.with_suffix(".json")
    return replace(base, model=model, card=card, card_required=True)


class ModelFollower:
    """Keeps the pipeline on the registry's active version (see the module docstring)."""

    def __init__(
        self,
        station: str,
        plugin: str,
        base_recipe: Any,
        versions: VersionSource,
        build: Build,
        running: InspectorBase,
        log: StationLog,
        status: StatusBoard,
        limits: Limits | None = None,
        rule_factories: Mapping[str, Any] | None = None,
    ):
        """``limits``: the station's file checks, applied to a recorded image read back for a
        trial; ``rule_factories``: the rules the recipe's samples are judged by, as shipped."""
        self.station, self.plugin, self.base = station, plugin, base_recipe
        self.limits, self.rule_factories = limits or Limits(), rule_factories
        self.versions, self.build, self.log, self.status = versions, build, log, status
        self.running_sha = running.model_sha256
        self.classes = list(running.classes)  # the recipe's own model's: what a version fits
        # versions that would not load -> when to try again (a share not mounted yet, a copy
        # still running); the error is said once per version, and again when it loads
        self.failed: dict[str, float] = {}
        self.retry_s = RETRY_S
        self.away = False  # the registry did not answer last time
        self.tried = ""  # what the version loaded last was tried on (said when switching)

    def wanted(self) -> ModelVersion | None | bool:
        """The active version (None: the recipe's own file), or False when the registry does
        not answer."""
        try:
            v = self.versions.active(self.plugin, self.base.name, self.station)
        except Exception as e:
            if not self.away:
                self.log.warning(
                    "model_registry_unavailable",
                    f"cannot ask the model registry which version of {self.base.name} is "
                    f"active ({type(e).__name__}: {e}); keeping the model that runs "
                    f"(sha256 {self.running_sha[:12]}) and asking again later",
                )
            self.away = True
            return False
        if self.away:
            self.log.info("model_registry_back", "the model registry answers again")
        self.away = False
        return v

    def load(self, v: ModelVersion | None) -> InspectorBase | None:
        """The inspector of ``v`` when it differs from the running model, loads and passes its
        trial (:meth:`trial`); None otherwise (a failure is logged once per version, shown as
        NEEDS ACTION, and the running model kept)."""
        key = v.sha256 if v is not None else "recipe"
        if time.monotonic() < self.failed.get(key, 0.0):
            return None  # failed a moment ago: tried again after retry_s (a trial: never)
        if (v.sha256 if v else self._recipe_sha()) == self.running_sha:
            self.status.resolved(SWITCH_KEY)  # it runs the active version: nothing to do
            return None  # nothing to switch to: not loaded again on every poll
        what = f"version {v.label or v.sha256[:12]} ({v.path})" if v else "the recipe's model"
        keeping = f"keeping the model that runs (sha256 {self.running_sha[:12]})"
        try:
            new = self.build(recipe_for(self.base, v))
            self._check_classes(list(new.classes))
            self.tried = self.trial(new, v) if v is not None else ""
        except TrialFailed as e:
            self._failed(
                key,
                what,
                f"cannot switch {self.base.name} to {what}: it failed its trial before the "
                f"switch: {e}; {keeping}; this version is not tried again. Promote a version "
                "that fits the recipe, or roll back (`inspect model rollback`)",
                math.inf,
            )
            return None
        except Exception as e:
            self._failed(
                key,
                what,
                f"cannot switch {self.base.name} to {what}: {type(e).__name__}: {e}; {keeping} "
                f"and trying again every {self.retry_s:g} s. Fix the file or promote another "
                "version",
                self.retry_s,
            )
            return None
        if self.failed.pop(key, None) is not None:
            self.log.info("model_switch_loads", f"{self.base.name}: {what} loads now")
        if new.model_sha256 == self.running_sha:
            return None
        self.status.resolved(SWITCH_KEY)
        return new

    def _check_classes(self, classes: list[str]) -> None:
        """ValueError unless ``classes`` are the recipe's model's, or (a good-only recipe) name
        its defects."""
        if classes == self.classes or names_defects(self.classes, classes):
            return
        hint = f" ({NAMED_HINT})" if self.classes == GOOD_ONLY_CLASSES else ""
        raise ValueError(
            f"its classes {classes} are not those of the recipe's model {self.classes}{hint}"
        )

    def _failed(self, key: str, what: str, msg: str, again_s: float) -> None:
        """A version not switched to: said once per version (not on every retry), shown as
        NEEDS ACTION; tried again after ``again_s`` seconds (inf: never)."""
        if key not in self.failed:
            self.log.error("model_switch_failed", msg)
            self.status.error(what, msg)
            self.status.needs_action(SWITCH_KEY, msg)
        self.failed[key] = time.monotonic() + again_s

    def trial(self, new: InspectorBase, v: ModelVersion) -> str:
        """Run ``new`` (the inspector of ``v``) before the switch: on a blank frame, on the last
        image the station recorded (any verdict, but it must run) and on the recipe's shipped
        samples (each its expected verdict, judged by the recipe as shipped, not by the
        station's overrides). What it ran on; :class:`TrialFailed` when it failed."""
        blank = np.full(BLANK, 128, np.uint8)
        run_trial(new, TrialImage("a blank frame", blank), False)
        tried = []
        last = self._last_recorded()
        if last is not None:
            run_trial(new, last)
            tried.append(f"the last recorded image {last.what}")
        samples = [t for t in map(_sample, self.base.samples) if t is not None]
        if names_defects(self.classes, list(new.classes)):
            samples = [replace(t, fail_for_review=True) for t in samples]
        if samples:
            judge = self._as_shipped(new, v)
            for t in samples:
                run_trial(judge, t)
            tried.append(f"{len(samples)} shipped sample(s)")
        return " and ".join(tried) or "a blank frame"

    def _as_shipped(self, new: InspectorBase, v: ModelVersion) -> InspectorBase:
        """``new`` judging by the recipe as shipped (its samples' verdicts are for that)."""
        if not isinstance(new, Inspector) or new.recipe.thresholds() == self.base.thresholds():
            return new
        return Inspector(recipe_for(self.base, v), self.rule_factories, model=new.model)

    def _last_recorded(self) -> TrialImage | None:
        """The newest image the station recorded with a verdict that is still where it was
        filed, read with the station's own file checks; None when there is none."""
        with self.status.lock:
            recent = list(self.status.recent)
        for e in reversed(recent):
            source = e.get("source")
            if e.get("verdict") not in VERDICTS or not isinstance(source, str):
                continue
            try:
                data = read_small_file(source, self.limits.max_bytes)
                image = load_image(data, Path(source).suffix, self.limits)
            except Exception:  # moved away since, or no image: the next one
                continue
            return TrialImage(source, image)
        return None

    def _recipe_sha(self) -> str | None:
        """The sha256 of the recipe's own model file (hashed once per process), None when it
        cannot be read: then it is loaded, and the load says why."""
        try:
            return sha256_cached(self.base.model)
        except OSError:
            return None

    def check(self, switch: Callable[[InspectorBase], None]) -> bool:
        """Ask once; hand a newly loaded model to ``switch``. True when it switched."""
        v = self.wanted()
        if v is False:
            return False
        assert v is None or isinstance(v, ModelVersion)
        new = self.load(v)
        if new is None:
            return False
        old, self.running_sha = self.running_sha, new.model_sha256
        switch(new)
        tried = f" (tried first on {self.tried})" if self.tried else ""
        self.log.info(
            "model_switched",
            f"{self.base.name}: switching from model {old[:12]} to "
            f"{(v.label + ' ') if v and v.label else ''}{new.model_sha256[:12]}{tried} between "
            "two images; every record says which model judged it",
            old_sha256=old,
            new_sha256=new.model_sha256,
            version=v.label if v else "recipe",
        )
        return True

    def run(
        self, stop: threading.Event, every_s: float, switch: Callable[[InspectorBase], None]
    ) -> None:
        """Ask every ``every_s`` seconds until ``stop`` is set (the station's thread body)."""
        while not stop.wait(every_s):
            self.check(switch)


def open_follower(
    cfg: Any,
    registry: Any,
    base_recipe: Any,
    running: InspectorBase,
    build: Build,
    log: StationLog,
    status: StatusBoard,
    versions: VersionSource | None = None,
) -> ModelFollower | None:
    """The station's follower: of ``versions`` when given, else of the version source
    ``[model] follow`` names (``"sql"``: the records plugin's, on the station's database);
    None for ``follow = "none"``, or when the default ``"sql"`` is not installed."""
    if versions is None:
        name = cfg.model.follow
        if name == "none":
            return None
        factory = registry.version_sources.get(name)
        if factory is None:
            if name == "sql":  # the default, without the records plugin: nothing to follow
                return None
            known = ", ".join(sorted(registry.version_sources)) or "none installed"
            raise InspectError(
                f"model.follow = {name!r}: no such model registry (registered: {known}); "
                'set it to one of those, or to "none" to run the recipe\'s own model file'
            )
        versions = factory({"url": cfg.database_url} if cfg.database_url else {})
    return ModelFollower(
        cfg.name,
        cfg.plugin,
        base_recipe,
        versions,
        build,
        running,
        log,
        status,
        limits=cfg.limits,
        rule_factories=getattr(registry, "rules", None),
    )


def _sample(s: Any) -> TrialImage | None:
    """A recipe's shipped sample as a trial image; None when it cannot be read (the recipe's
    own check names a missing sample)."""
    try:
        return TrialImage(str(s.image), read_image(s.image), s.expected)
    except Exception:
        return None


def _one_line(e: object) -> str:
    """An error's text on one line (ONNX Runtime's span several)."""
    return " ".join(str(e).split())
