"""A recipe file's own keys, declared once: the top level (its numbers from
:class:`~inspect_core.config.steps.RecipeNumbers`, names, model, card, classes) and each
``[[samples]]`` table. The step and rule tables are lists here; each table's parameters are
checked against its own model (:mod:`inspect_core.params`) when the recipe is built."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from inspect_core.config.health import HealthSettings
from inspect_core.config.settings import Settings
from inspect_core.config.steps import RecipeNumbers

LAST_SAMPLE_HINT = "a setting written after the last [[samples]] table belongs to it; move it above"


def _upper(v: object) -> object:
    return v.upper() if isinstance(v, str) else v


class SampleTable(Settings):
    """``[[samples]]``: a shipped image and the verdict the recipe must give it (checked by
    ``inspect plugins --check`` and before a station switches to a new model)."""

    image: str = Field(min_length=1, description="the image file, relative to the recipe file")
    expected: Annotated[Literal["PASS", "REVIEW", "FAIL"], BeforeValidator(_upper)] = Field(
        description="the verdict the recipe must give it"
    )


Tables = list[dict[str, Any]]


class RecipeFile(RecipeNumbers):
    """A recipe TOML file's top level."""

    name: str = Field(min_length=1, description="the recipe's name (`--recipe NAME`)")
    model: str = Field(min_length=1, description="the ONNX model, relative to the recipe file")
    description: str = Field(default="", description="one line for `inspect plugins`")
    card: str | None = Field(
        default=None,
        min_length=1,
        description="the model card; default: the .json beside the model (named: required)",
    )
    dataset: str = Field(default="", description="the dataset the model was trained on")
    region_classes: list[str] | None = Field(
        default=None, description="classes whose regions the rules judge; default: all but 0"
    )
    coverage_classes: list[str] = Field(
        default_factory=list, description="classes measured as a share of the image"
    )
    preprocess: Tables = Field(default_factory=list, description="[[preprocess]] steps")
    postprocess: Tables = Field(default_factory=list, description="[[postprocess]] steps")
    rules: Tables = Field(default_factory=list, description="[[rules]] that give the verdict")
    health: HealthSettings | None = Field(
        default=None, description="[health]: image-quality limits and what breaking one does"
    )
    samples: list[SampleTable] = Field(
        default_factory=list, description="[[samples]] with their expected verdicts"
    )
