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
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import InspectError

Preprocess = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class SampleImage:
    image: Path
    expected: str  # PASS / REVIEW / FAIL


@dataclass
class Recipe:
    name: str
    model: Path
    description: str = ""
    preprocess: Preprocess | None = None  # uint8 image -> uint8 image, before normalisation
    postprocess: list[dict] = field(default_factory=list)
    rules: list[dict] = field(default_factory=list)
    pixel_size_mm: float | None = None
    region_classes: list[str] | None = None  # None = every class but index 0
    coverage_classes: list[str] = field(default_factory=list)
    tile: int = 0  # 0 = the model's own tile size
    tile_overlap: float = 0.25
    samples: list[SampleImage] = field(default_factory=list)
    card: Path | None = None
    dataset: str = ""

    @classmethod
    def from_toml(cls, path: str | Path, preprocess: Preprocess | None = None) -> "Recipe":
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise InspectError(f"{path}: cannot read recipe ({e})") from e
        return cls.from_dict(raw, path.parent, preprocess)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], base: Path, preprocess: Preprocess | None = None) -> "Recipe":
        raw = dict(raw)
        if "model" not in raw or "name" not in raw:
            raise InspectError(f"recipe in {base}: 'name' and 'model' are required")
        model = (base / raw.pop("model")).resolve()
        spec = raw.pop("preprocess", None)
        if spec and preprocess is None:
            from .preprocess import build_preprocess

            preprocess = build_preprocess(spec)
        card = raw.pop("card", None)
        samples = [SampleImage((base / s["image"]).resolve(), s["expected"].upper()) for s in raw.pop("samples", [])]
        known = set(cls.__dataclass_fields__)
        unknown = set(raw) - known
        if unknown:
            raise InspectError(f"recipe {raw.get('name')}: unknown keys {sorted(unknown)}")
        return cls(model=model, samples=samples, preprocess=preprocess,
                   card=(base / card) if card else model.with_suffix(".json"), **raw)

    def problems(self) -> list[str]:
        out = []
        if not self.model.is_file():
            out.append(f"recipe {self.name}: model file {self.model} not found")
        for s in self.samples:
            if not s.image.is_file():
                out.append(f"recipe {self.name}: sample image {s.image} not found")
            if s.expected not in ("PASS", "REVIEW", "FAIL"):
                out.append(f"recipe {self.name}: sample {s.image.name} expects {s.expected!r}, "
                           "not PASS/REVIEW/FAIL")
        for key in ("postprocess", "rules"):
            for i, spec in enumerate(getattr(self, key)):
                if not isinstance(spec, dict) or "type" not in spec:
                    out.append(f"recipe {self.name}: {key}[{i}] needs a 'type'")
        return out

    def with_overrides(self, overrides: dict[str, Any] | None) -> "Recipe":
        """A copy with station overrides applied, no retraining needed.

        Keys: ``rules`` / ``postprocess`` (replace the lists), ``rule_params`` (``{rule name:
        {param: value}}`` patches one rule), ``pixel_size_mm``, ``tile``, ``tile_overlap``,
        ``region_classes``.
        """
        if not overrides:
            return self
        o = dict(overrides)
        patches = o.pop("rule_params", {})
        allowed = {"rules", "postprocess", "pixel_size_mm", "tile", "tile_overlap",
                   "region_classes", "coverage_classes"}
        unknown = set(o) - allowed
        if unknown:
            raise InspectError(f"unknown recipe override(s) {sorted(unknown)}; "
                               f"allowed: {sorted(allowed | {'rule_params'})}")
        new = replace(self, **copy.deepcopy(o))
        if patches:
            rules = copy.deepcopy(new.rules)
            names = [r.get("name", r["type"]) for r in rules]
            for rule_name, params in patches.items():
                if rule_name not in names:
                    raise InspectError(f"rule_params: recipe {self.name} has no rule {rule_name!r}; "
                                       f"its rules: {names}")
                rules[names.index(rule_name)].update(params)
            new = replace(new, rules=rules)
        return new

    def thresholds(self) -> dict[str, Any]:
        """What is in force, recorded with every inspection."""
        return {"rules": self.rules, "postprocess": self.postprocess,
                "pixel_size_mm": self.pixel_size_mm}


@dataclass
class Domain:
    name: str
    recipes: list[Recipe]
    description: str = ""

    def recipe(self, name: str) -> Recipe:
        for r in self.recipes:
            if r.name == name:
                return r
        raise InspectError(f"domain {self.name} has no recipe {name!r}; "
                           f"recipes: {', '.join(r.name for r in self.recipes)}")

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
