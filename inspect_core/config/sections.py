"""The recipe file's sections of the configuration reference (:mod:`.reference`)."""

from __future__ import annotations

from inspect_core.config.health import HealthSettings, QualityLimits
from inspect_core.config.recipe_file import RecipeFile, SampleTable
from inspect_core.config.reference import Section
from inspect_core.params import PARAMS

RECIPE = "Recipe file"
SECTIONS = [
    Section("recipe (top level)", RecipeFile, RECIPE),
    Section("[[samples]]", SampleTable, RECIPE),
    Section("[health]", HealthSettings, RECIPE),
    Section("[health.quality]", QualityLimits, RECIPE),
] + [
    Section(f'[[{section}]] type = "{kind}"', model, RECIPE)
    for section in ("preprocess", "postprocess", "rules")
    for kind, model in PARAMS[section].items()
    if not (section == "postprocess" and kind == "close")
]
