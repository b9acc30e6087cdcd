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
    # hooks and what their register callables accept (inspect_core/hookspecs.py)
    "hookimpl": "hookspecs", "hookspec": "hookspecs", "Rule": "hookspecs",
    "RuleFactory": "hookspecs", "SourceFactory": "hookspecs", "SinkFactory": "hookspecs",
    "SourceContext": "hookspecs",
    # what register_domains registers
    "Domain": "recipes", "Recipe": "recipes", "SampleImage": "recipes", "RecipeError": "recipes",
    # what rules, sources and sinks see
    "RuleContext": "rules", "RuleConfigError": "rules",
    "Region": "types", "RuleHit": "types", "Decision": "types", "Verdict": "types",
    "Inspection": "types",
    "Source": "interfaces", "Sink": "interfaces", "SourceItem": "interfaces",
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
