"""Domains and recipes: what a plugin registers to inspect one kind of part.

A recipe is usually written as a TOML file beside its model::

    name = "steel"
    model = "models/steel.onnx"
    pixel_size_mm = 0.1
    region_classes = ["inclusion", "patches", "scratches"]
    [[postprocess]]
    type = "open"
    size = 3
    [[rules]]
    type = "min_area"
    classes = ["inclusion", "patches", "scratches"]
    min = 30
    [[samples]]
    image = "samples/steel_ok.png"
    expected = "PASS"

and loaded with :meth:`Recipe.from_toml`; a plugin may add a Python ``preprocess`` callable.
"""

from __future__ import annotations

import copy
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from inspect_core.cards import (
    MAX_SMALL_FILE,
    OVERRIDE_HINT,
    CardError,
    ModelCheck,
    allow_unverified,
    card_fix,
    read_card,
    read_small_file,
    verify_model,
)
from inspect_core.config.health import HealthSettings, with_override
from inspect_core.config.recipe_file import LAST_SAMPLE_HINT, RecipeFile
from inspect_core.config.settings import validate
from inspect_core.errors import InspectError
from inspect_core.params import limit_problems
from inspect_core.runtime.preprocess import build_preprocess
from inspect_core.runtime.recipe_checks import shape_problems

Preprocess = Callable[[np.ndarray], np.ndarray]
REGION_RULES = ("min_area", "max_area", "max_count", "roi")  # built-in rules that judge regions


#: the settings every record keeps (:meth:`Recipe.thresholds`): each one a station may override
RECORDED_SETTINGS = (
    "rules",
    "postprocess",
    "pixel_size_mm",
    "region_classes",
    "coverage_classes",
    "tile",
    "tile_overlap",
    "health",  # kept only when the recipe has a [health] table (older records' keys unchanged)
)


class RecipeError(InspectError, ValueError):
    """A recipe does not fit its model (unknown class names...) or is malformed; exit code 2."""


@dataclass(frozen=True)
class SampleImage:
    image: Path
    expected: str  # PASS / REVIEW / FAIL


def _check_file(raw: dict[str, Any], where: object) -> None:
    """Every problem of a recipe file's own keys at once (:class:`RecipeFile`), one a line,
    each with its key; the step and rule tables are checked as the recipe is built."""
    _, problems = validate(RecipeFile, raw)
    if not problems:
        return
    lines = [
        f"{key}: {msg}; {LAST_SAMPLE_HINT}"
        if key.startswith("samples[") and msg.startswith("unknown key")
        else f"{key}: {msg}"
        for key, msg in problems
    ]
    if len(lines) == 1:
        raise RecipeError(f"{where}: {lines[0]}")
    raise RecipeError(f"{where}: {len(lines)} problems:\n  " + "\n  ".join(lines))


@dataclass
class Recipe:
    name: str
    model: Path
    description: str = ""
    preprocess: Preprocess | None = None  # uint8 image -> uint8 image, before normalisation
    postprocess: list[dict[str, Any]] = field(default_factory=list)
    rules: list[dict[str, Any]] = field(default_factory=list)
    pixel_size_mm: float | None = None
    region_classes: list[str] | None = None  # None = every class but index 0
    coverage_classes: list[str] = field(default_factory=list)
    tile: int = 0  # 0 = the model's own tile size
    tile_overlap: float = 0.25
    samples: list[SampleImage] = field(default_factory=list)
    card: Path | None = None  # the model card (JSON): classes, validation, sha256 of the model
    # a missing card refuses the model (a plugin's recipe: set when it registers; a recipe that
    # names its card); else a model without a card file runs, with a warning
    card_required: bool = False
    dataset: str = ""
    health: HealthSettings | None = None  # [health]: quality limits, what breaking one does
    source: Path | None = field(default=None, compare=False)  # the TOML file, for messages

    def __post_init__(self) -> None:
        """Every numeric parameter within its range (:data:`inspect_core.params.PARAMS`): checked
        here, so a recipe file, a plugin's recipe and a station's overrides (a copy made by
        :meth:`with_overrides`) are all refused before the first image."""
        problems = self.limit_problems()
        if problems:
            raise RecipeError(f"{self.where}: " + "; ".join(problems))

    def limit_problems(self) -> list[str]:
        out = limit_problems(
            "recipe", "", {k: getattr(self, k) for k in ("pixel_size_mm", "tile", "tile_overlap")}
        )
        for key in ("postprocess", "rules"):
            specs = getattr(self, key)
            for i, spec in enumerate(specs if isinstance(specs, list) else []):
                if isinstance(spec, dict) and isinstance(spec.get("type"), str):
                    out += [
                        f"{key}[{i}] ({spec['type']}): {p}"
                        for p in limit_problems(key, spec["type"], spec)
                    ]
        return out

    @property
    def where(self) -> str:
        """How messages name the recipe: its name and, when it came from a file, the file."""
        return f"recipe {self.name}" + (f" ({self.source})" if self.source else "")

    @classmethod
    def from_toml(cls, path: str | Path, preprocess: Preprocess | None = None) -> Recipe:
        """The recipe in the TOML file ``path``: a regular file of at most 1 MB (a device, a
        FIFO or a directory is refused before it is read)."""
        path = Path(path)
        try:
            raw = tomllib.loads(read_small_file(path, MAX_SMALL_FILE).decode("utf-8"))
        except OSError as e:
            raise InspectError(
                f"{path}: cannot read recipe ({e.strerror or e}); a recipe is a TOML file "
                f"of at most {MAX_SMALL_FILE // (1 << 20)} MB"
            ) from e
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise InspectError(f"{path}: cannot read recipe ({e}); it must be TOML text") from e
        return cls.from_dict(raw, path.parent, preprocess, source=path)

    @classmethod
    def from_dict(
        cls,
        raw: dict[str, Any],
        base: Path,
        preprocess: Preprocess | None = None,
        source: Path | None = None,
    ) -> Recipe:
        raw = dict(raw)
        where = source or f"recipe in {base}"
        _check_file(raw, where)
        model = (base / raw.pop("model")).resolve()
        spec = raw.pop("preprocess", None)
        if spec and preprocess is not None:
            raise RecipeError(
                f"{where}: preprocess: the recipe lists preprocess steps and its plugin passes "
                "a Python preprocess function too; keep one (remove the recipe's preprocess "
                "tables, or the plugin's preprocess= argument to Recipe.from_toml)"
            )
        if spec:
            try:
                preprocess = build_preprocess(spec)
            except (ValueError, TypeError) as e:
                raise RecipeError(f"{where}: preprocess: {e}") from e
        card = raw.pop("card", None)
        health = raw.pop("health", None)  # checked by _check_file
        samples = [
            SampleImage((base / s["image"]).resolve(), s["expected"].upper())
            for s in raw.pop("samples", [])
        ]
        return cls(
            model=model,
            samples=samples,
            preprocess=preprocess,
            source=source,
            card=(base / card).resolve() if card else model.with_suffix(".json"),
            card_required=card is not None,
            health=None if health is None else HealthSettings.model_validate(health),
            **raw,
        )

    @property
    def card_path(self) -> Path:
        """Where the model card is: :attr:`card`, else the ``.json`` beside the model."""
        return self.card or self.model.with_suffix(".json")

    def load_card(self) -> dict[str, Any] | None:
        """The model card (a JSON object with the model's sha256), or None when there is no
        file at :attr:`card_path` and the recipe does not need one (:attr:`card_required`). A
        required card that is missing, or a card that is there but damaged, is a
        :class:`RecipeError` naming it and what to do (None with the development override
        ``INSPECT_ALLOW_UNVERIFIED_MODELS=1``: loading the model logs it)."""
        path = self.card_path
        try:
            if not os.path.lexists(path):
                if not self.card_required:
                    return None
                raise CardError(
                    f"model card {path} is missing; a plugin's recipe, or one that names its "
                    "card, runs only a model its card vouches for"
                )
            return read_card(path)
        except CardError as e:
            if allow_unverified():
                return None
            raise RecipeError(f"{self.where}: {e}. {card_fix(path)}. {OVERRIDE_HINT}") from e

    def check_model(self) -> ModelCheck:
        """The model file checked against its card (:func:`inspect_core.cards.verify_model`);
        a missing card refuses it when :attr:`card_required`."""
        return verify_model(self.model, self.card_path, required=self.card_required)

    def class_problems(self, classes: list[str]) -> list[str]:
        """What in the recipe does not fit a model with ``classes``: class names it does not
        know, region rules on classes that are not region classes (they could never fire), and
        mm² rules without a pixel size."""
        out = []
        known = f"; the model's classes are {classes}"
        region = self.region_classes if self.region_classes is not None else classes[1:]
        for key, names in (("region_classes", region), ("coverage_classes", self.coverage_classes)):
            unknown = [c for c in names if c not in classes]
            if unknown:
                out.append(f"{key} {unknown} are not classes of the model{known}")
            if twice := sorted({c for c in names if list(names).count(c) > 1}):
                out.append(f"{key} names {twice} twice: each region would count twice")
        for key in ("postprocess", "rules"):
            for i, spec in enumerate(getattr(self, key)):
                if not isinstance(spec, dict):
                    continue
                what = f"{key}[{i}] ({spec.get('type')})"
                names = spec.get("classes") or []
                names = (
                    [names]
                    if isinstance(names, str)
                    else list(names)
                    if isinstance(names, (list, tuple))
                    else []
                )
                for table in ("min_px", "min_mm2"):
                    names += list(spec[table]) if isinstance(spec.get(table), dict) else []
                names = [c for c in names if isinstance(c, str) and not c.isdigit()]
                unknown = [c for c in names if c not in classes]
                outside = [c for c in names if c not in region]
                if unknown:
                    out.append(f"{what} names {unknown}, not classes of the model{known}")
                elif key == "rules" and spec.get("type") in REGION_RULES and outside:
                    out.append(
                        f"{what} names {outside}, which are not region_classes {region}: "
                        "no region of them is extracted, so it could never fire"
                    )
                out += shape_problems(key, what, spec, self.pixel_size_mm)
                if key == "rules" and spec.get("unit") == "mm2" and not self.pixel_size_mm:
                    out.append(
                        f"{what} measures in mm2 but there is no pixel_size_mm (set it in "
                        "the recipe or the station, or --pixel-size)"
                    )
        return [f"{self.where}: {p}" for p in out]

    def problems(self) -> list[str]:
        out = []
        if not self.model.is_file():
            out.append(f"recipe {self.name}: model file {self.model} not found")
        for s in self.samples:
            if not s.image.is_file():
                out.append(f"recipe {self.name}: sample image {s.image} not found")
            if s.expected not in ("PASS", "REVIEW", "FAIL"):
                out.append(
                    f"recipe {self.name}: sample {s.image.name} expects {s.expected!r}, "
                    "not PASS/REVIEW/FAIL"
                )
        for key in ("postprocess", "rules"):
            for i, spec in enumerate(getattr(self, key)):
                if not isinstance(spec, dict) or "type" not in spec:
                    out.append(f"recipe {self.name}: {key}[{i}] needs a 'type'")
        try:  # the card names the model's classes: a misspelt class is found at load time
            card = self.load_card()
        except RecipeError as e:
            return out + [str(e)]
        if card and isinstance(card.get("classes"), list):
            out.extend(self.class_problems(card["classes"]))
        return out

    def with_overrides(self, overrides: dict[str, Any] | None) -> Recipe:
        """A copy with station overrides applied, no retraining needed.

        Keys: ``rules`` / ``postprocess`` (replace the lists), ``rule_params`` (``{rule name:
        {param: value}}`` patches one rule), ``pixel_size_mm``, ``tile``, ``tile_overlap``,
        ``region_classes``, ``health`` (``{on_problem, quality}``: the keys given replace the
        recipe's ``[health]`` keys).
        """
        if not overrides:
            return self
        o = dict(overrides)
        patches = o.pop("rule_params", {})
        health = o.pop("health", None)
        allowed = {
            "rules",
            "postprocess",
            "pixel_size_mm",
            "tile",
            "tile_overlap",
            "region_classes",
            "coverage_classes",
        }
        unknown = set(o) - allowed
        if unknown:
            raise RecipeError(
                f"unknown recipe override(s) {sorted(unknown)}; "
                f"allowed: {sorted(allowed | {'rule_params', 'health'})}"
            )
        new = replace(self, **copy.deepcopy(o))
        if health is not None:
            try:
                new = replace(new, health=with_override(self.health, health, self.where))
            except ValueError as e:
                raise RecipeError(str(e)) from None
        if patches:
            rules = copy.deepcopy(new.rules)
            names = [r.get("name", r["type"]) for r in rules]
            for rule_name, params in patches.items():
                if rule_name not in names:
                    raise RecipeError(
                        f"rule_params: recipe {self.name} has no rule {rule_name!r}; "
                        f"its rules: {names}"
                    )
                if names.count(rule_name) > 1:
                    raise RecipeError(
                        f"rule_params: recipe {self.name} has {names.count(rule_name)} "
                        f"rules named {rule_name!r}; give each a distinct `name` "
                        "in the recipe, or replace the whole `rules` list"
                    )
                rules[names.index(rule_name)].update(params)
            new = replace(new, rules=rules)
        return new

    def thresholds(self) -> dict[str, Any]:
        """What is in force, recorded with every inspection: each setting a station may
        override (``region_classes`` changes which regions the rules see, ``tile`` and
        ``tile_overlap`` the model's output, ``coverage_classes`` what coverage counts), so a
        backtest judges a recorded image exactly as it was judged."""
        out = {k: getattr(self, k) for k in RECORDED_SETTINGS if k != "health"}
        if self.health is not None:
            out["health"] = self.health.model_dump()
        return out


@dataclass
class Domain:
    name: str
    recipes: list[Recipe]
    description: str = ""

    def recipe(self, name: str) -> Recipe:
        for r in self.recipes:
            if r.name == name:
                return r
        raise InspectError(
            f"domain {self.name} has no recipe {name!r}; "
            f"recipes: {', '.join(r.name for r in self.recipes)}"
        )

    def problems(self) -> list[str]:
        out = []
        if not self.name or not isinstance(self.name, str):
            out.append("a domain needs a name")
        if not self.recipes:
            out.append("a domain needs at least one recipe")
        names = [r.name for r in self.recipes]
        if len(set(names)) != len(names):
            out.append(f"duplicate recipe names {names}")
        for r in self.recipes:
            if not isinstance(r, Recipe):
                out.append(f"{r!r} is not a Recipe")
            else:
                out.extend(r.problems())
        return out
