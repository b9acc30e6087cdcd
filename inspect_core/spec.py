"""Building objects from config tables ``{"type": NAME, ...params}``: one way, one kind of error.

Recipes and station files describe preprocessing, post-processing and rules as lists of such
tables. :func:`parse` checks one table and finds its factory; :func:`construct` calls it, and
turns a wrong or missing parameter into a message that names the table and lists what the
factory takes, so the person editing the TOML sees where and what.
"""
from __future__ import annotations

from typing import Any, Callable


def parse(n: int, spec: Any, factories: dict[str, Callable], section: str, what: str,
          error: type[Exception] = ValueError) -> tuple[str, dict[str, Any]]:
    """``(type, params)`` of table number ``n`` of ``section`` (e.g. "rules"); ``what`` names
    one entry in messages (e.g. "rule type")."""
    if not isinstance(spec, dict):
        raise error(f"{section}[{n}]: expected a table with a 'type', got {spec!r}")
    params = dict(spec)
    kind = params.pop("type", None)
    if kind not in factories:
        raise error(f"{section}[{n}]: unknown {what} {kind!r}; known: {', '.join(sorted(factories))}")
    return kind, params


def construct(factory: Callable, params: dict[str, Any], where: str,
              error: type[Exception] = ValueError) -> Any:
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
