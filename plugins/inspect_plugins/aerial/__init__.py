"""Aerial imagery: land cover (Dubai aerial tiles).

Large tiles are inspected tiled; every inspection reports the share of each land-cover class,
and FAILs when buildings cover more than the configured share of a protected zone (a region of
interest, set per station).
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


@hookimpl
def register_domains(register: Callable[[Domain], None]) -> None:
    from inspect_core.runtime.recipe import Domain, Recipe

    register(
        Domain(
            "aerial",
            [Recipe.from_toml(HERE / "recipes" / "landcover.toml")],
            description="land cover from aerial imagery",
        )
    )
