"""One typed configuration layer: every file key and every step's and rule's parameter is
declared once, as a pydantic model (:class:`Settings`), and every problem is reported at once
with the file, the key's path and a "did you mean" (:mod:`.problems`).

This package imports nothing of inspect's above it (pydantic and the standard library only):
the recipe, the rules and the station configuration all build on it.
"""

from inspect_core.config.problems import (
    Problem,
    did_you_mean,
    format_params,
    not_registered,
    problems_of,
)
from inspect_core.config.settings import Range, Settings, lenient, validate

__all__ = [
    "Problem",
    "Range",
    "Settings",
    "did_you_mean",
    "not_registered",
    "format_params",
    "lenient",
    "problems_of",
    "validate",
]
