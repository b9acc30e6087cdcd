"""inspect core: segmentation engine, post-processing, rules and plugin hooks.

What a plugin author needs is importable from here::

    from inspect_core import Domain, Recipe, hookimpl

Each name is imported on first use (PEP 562), so ``import inspect_core.types`` stays light and
nothing here imports torch or OpenCV until a name that needs it is asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> the submodule that defines it
_EXPORTS: dict[str, str] = {
    # hooks and what their register callables accept (inspect_core/plugin_api/hookspecs.py)
    "hookimpl": "plugin_api.hookspecs",
    "hookspec": "plugin_api.hookspecs",
    "Rule": "plugin_api.hookspecs",
    "RuleFactory": "plugin_api.hookspecs",
    "SourceFactory": "plugin_api.hookspecs",
    "SinkFactory": "plugin_api.hookspecs",
    "SourceContext": "plugin_api.interfaces",
    # what register_domains registers
    "Domain": "runtime.recipe",
    "Recipe": "runtime.recipe",
    "SampleImage": "runtime.recipe",
    "RecipeError": "runtime.recipe",
    # what rules, sources and sinks see
    "RuleContext": "rules.engine",
    "RuleConfigError": "rules.engine",
    "Region": "types",
    "RuleHit": "types",
    "Decision": "types",
    "Verdict": "types",
    "Inspection": "types",
    "Source": "plugin_api.interfaces",
    "BaseSource": "plugin_api.interfaces",
    "Sink": "plugin_api.interfaces",
    "SourceItem": "plugin_api.interfaces",
    "FileFacts": "plugin_api.interfaces",
    "InspectError": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
