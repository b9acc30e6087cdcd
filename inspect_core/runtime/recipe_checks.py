"""Checks of a recipe's tables that only their shape needs (no model): run as the recipe loads,
so that a mistake is one message at start-up, not an ERROR on every image; and whether a model
fits a recipe (:func:`model_fit_problems`: its network's real shapes and its metadata), run
when a model is added as a version of the recipe."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from inspect_core.runtime.model_file import GraphShapes
    from inspect_core.runtime.onnx_model import ModelMeta

__all__ = ["model_fit_problems", "shape_problems"]


def shape_problems(
    key: str, what: str, spec: dict[str, Any], pixel_size_mm: float | None
) -> list[str]:
    """A post-processing step's tables in the wrong shape, or in mm² without a pixel size:
    found at load, not on every image."""
    if key != "postprocess":
        return []
    out = []
    if isinstance(spec.get("classes"), str):
        out.append(f'{what}: classes = ["NAME", ...] is a list of class names, not a string')
    for table in ("min_px", "min_mm2"):
        if table in spec and not isinstance(spec[table], dict):
            out.append(f"{what}: {table} = {{ CLASS = VALUE }} is a table per class")
    if spec.get("min_mm2") and not pixel_size_mm:
        out.append(
            f"{what} has min_mm2 but there is no pixel_size_mm (set it in the recipe or the "
            "station, or --pixel-size)"
        )
    return out


def _kind(channels: int) -> str:
    name = {1: "gray", 3: "colour"}.get(channels)
    return f"{name} ({channels})" if name else f"{channels}-channel"


def model_fit_problems(
    recipe: str, want: ModelMeta, got: ModelMeta, graph: GraphShapes, tile: int = 0
) -> list[str]:
    """What in a model (its metadata ``got``, its network ``graph``) does not fit recipe
    ``recipe``, whose own model has the metadata ``want`` and which tiles at ``tile`` (0: the
    model's tile): found when a version is added, not as an ERROR (or a silent PASS) on every
    image of the station that switches to it."""
    out = _network_problems(recipe, want, got, graph)
    if got.channels != want.channels:
        out.append(
            f"its metadata says {got.channels} channels, recipe {recipe} is {_kind(want.channels)}"
        )
    if not (
        math.isfinite(got.mean)
        and math.isfinite(got.std)
        and 0 <= got.mean <= 1
        and 0 < got.std <= 1
    ):
        out.append(
            f"its normalisation (mean {got.mean:g}, std {got.std:g}) is not on the 0..1 scale "
            f"inspect feeds (pixel/255: mean within 0..1, std above 0 and at most 1); recipe "
            f"{recipe}'s model has mean {want.mean:.3g}, std {want.std:.3g}"
        )
    if got.stride < 1:
        out.append(f"its stride {got.stride} is no number of pixels (1 or more)")
    if got.input_size < 1:
        out.append(f"its input_size {got.input_size} is no number of pixels (1 or more)")
    if got.tile_size < 0 or 0 < got.tile_size < got.stride:
        out.append(
            f"its tile_size {got.tile_size} is neither 0 (the default) nor at least its stride "
            f"{got.stride}"
        )
    elif 0 < tile < got.stride:
        out.append(f"recipe {recipe} tiles at {tile} pixels, below its stride {got.stride}")
    return out


def _network_problems(recipe: str, want: ModelMeta, got: ModelMeta, g: GraphShapes) -> list[str]:
    """The network's real input and output against the recipe and the model's metadata."""
    n = len(want.classes)
    if g.inputs != 1 or len(g.input_dims) != 4:
        return [
            f"the network takes {g.inputs} input(s) of {len(g.input_dims)} dimensions; inspect "
            "feeds one (batch, channels, height, width) image tensor"
        ]
    out = []
    c, h, w = g.input_dims[1:]
    if c is not None and c != want.channels:
        out.append(f"the network takes {c} channels, recipe {recipe} is {_kind(want.channels)}")
    elif c is not None and c != got.channels:
        out.append(f"the network takes {c} channels, its metadata says {got.channels}")
    if h is not None or w is not None:
        out.append(
            f"the network takes only {h or 'any'}x{w or 'any'} images; a station feeds images "
            "and tiles of any size: export it with a free height and width (inspect train does)"
        )
    k = g.output_dims[1] if len(g.output_dims) == 4 else None
    if k is None and g.probe_out is not None and len(g.probe_out) == 4:
        k = g.probe_out[1]
    if k is not None and k != n:
        out.append(
            f"the network gives {k} classes (output channels), recipe {recipe} has {n} "
            f"{want.classes}"
        )
    elif k is not None and k != len(got.classes):
        out.append(f"the network gives {k} classes, its metadata lists {len(got.classes)}")
    if out:
        return out
    size = "x".join(map(str, g.probe[2:]))
    if g.probe_out is None:
        return [f"the network fails on a {size} input of {g.probe[1]} channel(s): {g.probe_error}"]
    if len(g.probe_out) != 4 or g.probe_out[2:] != g.probe[2:]:
        got_size = "x".join(map(str, g.probe_out[2:])) or "a scalar"
        return [
            f"the network gives {got_size} maps (shape {list(g.probe_out)}) for a {size} "
            "input; a segmentation network gives one map per class, of the image's size"
        ]
    return []
