"""Inspection at run time, without torch: a recipe's chain from image to verdict.

source image -> :mod:`preprocess` -> :class:`OnnxModel` (ONNX Runtime, tiling, test-time
copies) -> :mod:`postprocess` (label map -> regions) -> :mod:`inspect_core.rules` -> verdict.
:class:`Inspector` runs that chain for one :class:`Recipe` (the steps are declared by
:class:`InspectorBase`); :mod:`overlay` draws the result.

The names below are exported lazily (module ``__getattr__``): importing one submodule, e.g.
``inspect_core.runtime.recipe`` from a plugin's hook, loads that module and what it imports,
not the inspector, health, ONNX Runtime and OpenCV. ``from inspect_core.runtime import X``
works for every name in ``__all__``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names as mypy sees them; at run time __getattr__ imports each
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

#: the module that defines each exported name
_LAZY = {
    "Inspector": "inspect_core.runtime.inspector",
    "InspectorBase": "inspect_core.runtime.inspector",
    "ModelRun": "inspect_core.runtime.inspector",
    "Result": "inspect_core.runtime.inspector",
    "Segmentation": "inspect_core.runtime.inspector",
    "META_KEY": "inspect_core.runtime.onnx_model",
    "TTA_TRANSFORMS": "inspect_core.runtime.onnx_model",
    "ModelMeta": "inspect_core.runtime.onnx_model",
    "OnnxModel": "inspect_core.runtime.onnx_model",
    "render_overlay": "inspect_core.runtime.overlay",
    "render_result": "inspect_core.runtime.overlay",
    "save_overlay": "inspect_core.runtime.overlay",
    "argmax_labels": "inspect_core.runtime.postprocess",
    "build_steps": "inspect_core.runtime.postprocess",
    "extract_regions": "inspect_core.runtime.postprocess",
    "build_preprocess": "inspect_core.runtime.preprocess",
    "Domain": "inspect_core.runtime.recipe",
    "Recipe": "inspect_core.runtime.recipe",
    "RecipeError": "inspect_core.runtime.recipe",
    "SampleImage": "inspect_core.runtime.recipe",
}


def __getattr__(name: str) -> Any:
    """An exported name, imported from its module on first use."""
    if name not in _LAZY:  # e.g. a submodule not imported yet: `from . import x` imports it
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_LAZY[name]), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
