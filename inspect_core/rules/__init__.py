"""Rules: regions in, a PASS / REVIEW / FAIL verdict out.

The contracts (:class:`RuleContext`, ``Rule``, ``VerdictAdjuster``) are in :mod:`.base`, every
built-in rule's parameters in :mod:`.params`, the rules in :mod:`.builtin` and :mod:`.roi`;
:func:`build_rules` (:mod:`.engine`) turns a recipe's ``[[rules]]`` into rule objects and
:func:`judge` applies them to a :class:`RuleContext`. The names below load on first use, so that
importing :mod:`.base` or :mod:`.params` does not load the engine.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "RuleConfigError": "base",
    "RuleContext": "base",
    "build_rules": "engine",
    "judge": "engine",
    "roi_mask": "roi",
    "roi_points": "params",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
