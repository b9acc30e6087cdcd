"""Robotics scenes: driving (CamVid).

Frames are scaled to the training width (480 px); a pedestrian, bicyclist or car region above
its minimum area inside the drive corridor (a region of interest in front of the vehicle) means
FAIL, i.e. stop.
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
            "robotics",
            [Recipe.from_toml(HERE / "recipes" / "driving.toml")],
            description="obstacles in the drive corridor",
        )
    )
