"""Inspection at run time, without torch: a recipe's chain from image to verdict.

source image -> :mod:`preprocess` -> :class:`OnnxModel` (ONNX Runtime, tiling, test-time
copies) -> :mod:`postprocess` (label map -> regions) -> :mod:`inspect_core.rules` -> verdict.
:class:`Inspector` runs that chain for one :class:`Recipe` (the steps are declared by
:class:`InspectorBase`); :mod:`overlay` draws the result.
"""

from .inspector import Inspector, InspectorBase, ModelRun, Result, Segmentation
from .onnx_model import META_KEY, TTA_TRANSFORMS, ModelMeta, OnnxModel
from .overlay import render_overlay, render_result, save_overlay
from .postprocess import argmax_labels, build_steps, extract_regions
from .preprocess import build_preprocess
from .recipe import Domain, Recipe, RecipeError, SampleImage

__all__ = [
    "Domain",
    "Inspector",
    "InspectorBase",
    "META_KEY",
    "ModelMeta",
    "ModelRun",
    "OnnxModel",
    "Recipe",
    "RecipeError",
    "Result",
    "SampleImage",
    "Segmentation",
    "TTA_TRANSFORMS",
    "argmax_labels",
    "build_preprocess",
    "build_steps",
    "extract_regions",
    "render_overlay",
    "render_result",
    "save_overlay",
]
