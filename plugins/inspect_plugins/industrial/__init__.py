"""Industrial defects: steel strip (NEU-Seg), magnetic tile and ball screw pitting; magnetic
tile also from good parts alone (``tile-anomaly``, a good-only model).

Gray-scale surfaces; any defect region above its class's minimum area fails the part, and
regions the model is unsure of go to an operator (REVIEW). Ball screw images (1100-2700 px,
pits a few pixels wide) are inspected tiled at native resolution.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from inspect_core.plugin_api.hookspecs import hookimpl

if TYPE_CHECKING:  # the recipe module (NumPy, pydantic) loads when the hook is called
    from inspect_core.runtime.recipe import Domain

__all__ = ["register_domains"]  # the hook implementation pluggy finds

HERE = Path(__file__).parent
RECIPES = ("steel", "tile", "tile-anomaly", "ballscrew")


@hookimpl
def register_domains(register: Callable[[Domain], None]) -> None:
    from inspect_core.runtime.recipe import Domain, Recipe

    register(
        Domain(
            "industrial",
            [Recipe.from_toml(HERE / "recipes" / f"{n}.toml") for n in RECIPES],
            description="surface defects on steel strip, magnetic tiles and ball screws",
        )
    )
