"""Building objects from config tables ``{"type": NAME, ...params}``: one way, one kind of error.

Recipes and station files describe preprocessing, post-processing and rules as lists of such
tables. Every built-in type declares its parameters once, as a pydantic model
(:mod:`inspect_core.config.steps`, :mod:`inspect_core.rules.params`): :func:`parse` checks one
table against its model (every problem at once: ranges, types, unknown keys with a "did you
mean") and finds its factory; :func:`construct` calls it, and turns a wrong or missing parameter
into a message that names the table, so the person editing the TOML sees where and what.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from inspect_core.config.problems import format_params
from inspect_core.config.settings import Settings, validate
from inspect_core.config.steps import POSTPROCESS_PARAMS, PREPROCESS_PARAMS, TILE, RecipeNumbers
from inspect_core.rules.params import (
    InRoiParams,
    MaxAreaParams,
    MaxCountParams,
    MinAreaParams,
    ReviewBandParams,
    RoiCoverageParams,
)

# section -> type -> its parameters; the section "recipe", type "", holds the recipe's own keys
PARAMS: dict[str, dict[str, type[Settings]]] = {
    "recipe": {"": RecipeNumbers},
    "preprocess": PREPROCESS_PARAMS,
    "postprocess": POSTPROCESS_PARAMS,
    "rules": {
        "min_area": MinAreaParams,
        "max_area": MaxAreaParams,
        "max_count": MaxCountParams,
        "roi": InRoiParams,
        "roi_coverage": RoiCoverageParams,
        "review_band": ReviewBandParams,
    },
}

# Old type names still accepted, section -> old name -> current name. The post-processing step
# that removes small regions was ``min_area``, the name of the rule that fires for large ones.
ALIASES: dict[str, dict[str, str]] = {"postprocess": {"min_area": "remove_small"}}

__all__ = ["ALIASES", "PARAMS", "TILE", "canonical", "construct", "limit_problems", "parse"]


def parse(
    n: int,
    spec: Any,
    factories: Mapping[str, Callable[..., Any]],
    section: str,
    what: str,
    error: type[Exception] = ValueError,
) -> tuple[str, dict[str, Any]]:
    """``(type, params)`` of table number ``n`` of ``section`` (e.g. "rules"); ``what`` names
    one entry in messages (e.g. "rule type"). An old type name (:data:`ALIASES`) comes back
    as the current one."""
    if not isinstance(spec, dict):
        raise error(f"{section}[{n}]: expected a table with a 'type', got {spec!r}")
    params = dict(spec)
    written = params.pop("type", None)
    kind = canonical(section, written)
    if not isinstance(kind, str) or kind not in factories:
        raise error(
            f"{section}[{n}]: unknown {what} {written!r}; known: {', '.join(sorted(factories))}"
        )
    problems = limit_problems(section, kind, params)
    if problems:
        raise error(f"{section}[{n}] ({written}): " + "; ".join(problems))
    return kind, params


def construct(
    factory: Callable[..., Any],
    params: dict[str, Any],
    where: str,
    error: type[Exception] = ValueError,
) -> Any:
    """``factory(**params)``; a TypeError (unknown or missing parameter) becomes ``error``,
    and an ``error`` the factory raises itself (a bad value) gets ``where`` in front."""
    try:
        return factory(**params)
    except TypeError as e:
        fields = getattr(factory, "__dataclass_fields__", {})
        known = f"; its parameters: {', '.join(fields)}" if fields else ""
        raise error(f"{where}: {e}{known}") from None
    except error as e:
        raise error(f"{where}: {e}") from None


def canonical(section: str, kind: Any) -> Any:
    """The current name of type ``kind`` of ``section`` (see :data:`ALIASES`)."""
    return ALIASES.get(section, {}).get(kind, kind) if isinstance(kind, str) else kind


def limit_problems(section: str, kind: str, params: Mapping[str, Any]) -> list[str]:
    """What in ``params`` (of one ``kind`` of ``section``, without its ``type``) does not fit
    the type's parameters (:data:`PARAMS`), one line a problem; a type the table does not know
    (a plugin's) is left to its factory."""
    model = PARAMS.get(section, {}).get(canonical(section, kind))
    if model is None:
        return []
    _, problems = validate(model, {k: v for k, v in params.items() if k != "type"})
    return format_params(problems)
