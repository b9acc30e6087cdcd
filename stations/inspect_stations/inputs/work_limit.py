"""The model's work on one image, and the station's limit on it (``limits.max_work_mpx``).

An image that would make the recipe's model run too long is refused from its header, before
anything is decoded (:func:`check_work`: tiles x test-time copies x tile area).
"""

from __future__ import annotations

from dataclasses import dataclass

from inspect_core.runtime.onnx_model import tile_starts
from inspect_stations.inputs.image_check import BadImage, Header

# The model's work on one image, in megapixels through the network: the tiles it is cut into
# (overlapping, so more than its area) x the tile's area x the copies run for test-time
# augmentation. At the default, the largest validation images of the shipped recipes need a
# third of it (landcover 1817x2061: 12 tiles of 768x768 x 3 copies = 21 M); a 7000x7000 image
# under the tile recipe needs 340 M, about 100 s of CPU on two cores.
DEFAULT_WORK_MPX = 64.0


@dataclass(frozen=True)
class WorkShape:
    """How a recipe's model runs over an image (see
    :func:`inspect_stations.pipeline.work.work_shape`)."""

    recipe: str
    tile: int  # the tile side (the recipe's, else the model's)
    overlap: float
    stride: int
    copies: int  # 1 + the test-time augmentation copies
    budget_mpx: float = DEFAULT_WORK_MPX  # limits.max_work_mpx
    resizes: tuple[tuple[int, int], ...] = ()  # the recipe's resize steps: (width, max_side)


def scaled_size(w: int, h: int, resizes: tuple[tuple[int, int], ...]) -> tuple[int, int]:
    """The size after the recipe's resize steps (as
    :class:`inspect_core.runtime.preprocess.Resize` computes it)."""
    for width, max_side in resizes:
        f = width / w if width else min(1.0, max_side / max(h, w)) if max_side else 1.0
        if abs(f - 1) >= 1e-6:
            w, h = max(1, round(w * f)), max(1, round(h * f))
    return w, h


def model_work(w: int, h: int, shape: WorkShape) -> tuple[int, int, int, int]:
    """(tiles, tile width, tile height, pixels through the network) for a w x h image, as
    :meth:`inspect_core.runtime.onnx_model.OnnxModel.probabilities` cuts it."""
    if w <= shape.tile and h <= shape.tile:
        return 1, w, h, w * h * shape.copies
    s = max(1, shape.stride)
    hp, wp = -(-h // s) * s, -(-w // s) * s
    tile = max(s, shape.tile // s * s)
    th, tw = min(tile, hp), min(tile, wp)
    n = len(tile_starts(hp, th, shape.overlap, s)) * len(tile_starts(wp, tw, shape.overlap, s))
    return n, tw, th, n * th * tw * shape.copies


def largest_square(shape: WorkShape) -> int:
    """The side of the largest square image within the budget (after the recipe's resize)."""
    lo, hi = 1, 1 << 17
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if model_work(*scaled_size(mid, mid, shape.resizes), shape)[3] <= shape.budget_mpx * 1e6:
            lo = mid
        else:
            hi = mid - 1
    return lo


def check_work(hdr: Header, shape: WorkShape) -> None:
    """Refuse an image whose model work is above the budget (from its header: nothing decoded)."""
    w, h = scaled_size(hdr.width, hdr.height, shape.resizes)
    n, tw, th, px = model_work(w, h, shape)
    if px <= shape.budget_mpx * 1e6:
        return
    side = largest_square(shape)
    scaled = f" (scaled by the recipe to {w}x{h})" if (w, h) != (hdr.width, hdr.height) else ""
    copies = f"{shape.copies} cop{'y' if shape.copies == 1 else 'ies'}" + (
        " (test-time augmentation)" if shape.copies > 1 else ""
    )
    takes = (
        f"; at that limit this recipe takes images up to about {side}x{side}"
        if side < 1 << 17
        else ""
    )
    raise BadImage(
        f"too much work for recipe {shape.recipe}: a {hdr.width}x{hdr.height} "
        f"image{scaled} is {n} tiles of {tw}x{th} x {copies} = {px / 1e6:.0f} "
        f"megapixels through the model, above the limit of {shape.budget_mpx:g} "
        f"(limits.max_work_mpx){takes}. Send smaller images, or raise "
        "limits.max_work_mpx if the line needs them (inspection time grows with it)"
    )
