"""The recipe's own numbers and the parameters of every built-in preprocessing and
post-processing step, declared once: the recipe checks its tables against them as it loads
(:func:`inspect_core.params.param_problems`), and the configuration reference is made from them.
The steps themselves (:mod:`inspect_core.runtime.preprocess`, ``.postprocess``) take the same
keys."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field

from inspect_core.config.settings import Range, Settings

AREA_PX = Range(0, 1e8, "px")  # a 10000 x 10000 image is 1e8 px
PIXEL_SIZE = Range(1e-5, 1e5, "mm per pixel")
KERNEL = Range(1, 51, "px", whole=True)  # 51 px: ~0.4 s per class on a 2000 x 2000 mask
SIDE = Range(16, 4096, "px", whole=True, off=0)
TILE = Range(64, 4096, "px", whole=True, off=0)
OVERLAP = Range(0, 0.75)


def _not_a_string(v: object) -> object:
    if isinstance(v, str):
        raise ValueError('classes = ["NAME", ...] is a list of class names, not a string')
    return v


StepClasses = Annotated[list[str | int] | None, BeforeValidator(_not_a_string)]
CLASSES = "the classes it acts on (names, or indices); default: every class but 0"


class RecipeNumbers(Settings):
    """A recipe's own numbers (a station may override each one in ``[overrides]``)."""

    pixel_size_mm: Annotated[float, PIXEL_SIZE] | None = Field(
        default=None, description="mm per pixel of the image the model sees; areas in mm² need it"
    )
    tile: Annotated[int, TILE] = Field(
        default=0, description="tile side; 0: the model's own tile size"
    )
    tile_overlap: Annotated[float, OVERLAP] = Field(
        default=0.25, description="share of a tile that overlaps its neighbour"
    )


class ResizeParams(Settings):
    """``resize``: scale to ``width`` (or the longer side to ``max_side``), keeping aspect."""

    width: Annotated[int, SIDE] = Field(default=0, description="target width; 0: not by width")
    max_side: Annotated[int, SIDE] = Field(
        default=0, description="longest side at most; 0: no limit"
    )


class ClaheParams(Settings):
    """``clahe``: contrast-limited adaptive histogram equalisation (gray, or L of colour)."""

    clip: Annotated[float, Range(0.01, 1000)] = Field(default=2.0, description="contrast limit")
    grid: Annotated[int, Range(1, 64, whole=True)] = Field(default=8, description="tiles per side")


class MorphologyParams(Settings):
    """``open`` / ``close``: an elliptic kernel of ``size`` px, per class."""

    size: Annotated[int, KERNEL] = Field(default=3, description="kernel side")
    classes: StepClasses = Field(default=None, description=CLASSES)


class FillHolesParams(Settings):
    """``fill_holes``: fill background holes enclosed by one class."""

    max_area: Annotated[float, AREA_PX] = Field(
        default=0, description="largest hole filled; 0: any"
    )
    classes: StepClasses = Field(default=None, description=CLASSES)


def _per_class(table: str) -> BeforeValidator:
    def check(v: object) -> object:
        if not isinstance(v, dict):
            raise ValueError(f"{table} = {{ CLASS = VALUE }} is a table per class, got {v!r}")
        return v

    return BeforeValidator(check)


PerClassPx = Annotated[dict[str | int, Annotated[float, AREA_PX]], _per_class("min_px")]
PerClassMm2 = Annotated[dict[str | int, Annotated[float, AREA_PX]], _per_class("min_mm2")]


class RemoveSmallParams(Settings):
    """``remove_small`` (formerly ``min_area``): regions below a per-class minimum become
    background."""

    min_px: PerClassPx = Field(default_factory=dict, description="class -> minimum area in px")
    min_mm2: PerClassMm2 = Field(default_factory=dict, description="class -> minimum area in mm²")
    pixel_size_mm: Annotated[float, PIXEL_SIZE] | None = Field(
        default=None, description="default: the recipe's"
    )
    default_px: Annotated[float, AREA_PX] = Field(
        default=0, description="minimum of the other classes"
    )
    classes: StepClasses = Field(default=None, description=CLASSES)


PREPROCESS_PARAMS: dict[str, type[Settings]] = {"resize": ResizeParams, "clahe": ClaheParams}
POSTPROCESS_PARAMS: dict[str, type[Settings]] = {
    "open": MorphologyParams,
    "close": MorphologyParams,
    "fill_holes": FillHolesParams,
    "remove_small": RemoveSmallParams,
}
