"""A pydantic ``ValidationError`` as the project's problems: one ``(key, message)`` a problem,
the key as the person wrote it (``source.path``, ``sinks[1].topic``), the message in words
(``must be a number, got string 'fast'``, ``unknown key; did you mean 'path'?``)."""

from __future__ import annotations

import difflib
import math
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

Problem = tuple[str, str]  # (key path, what is wrong with it)

# a TOML value's type in words: what a key must be (by pydantic error type), what it was given
_MUST = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
    "path_type": "a path (a string)",
}
_GIVEN = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    list: "list",
    dict: "table",
}


def kind(value: Any) -> str:
    """A value's TOML type in words (``string``, ``table``...)."""
    return _GIVEN.get(type(value), type(value).__name__)


def did_you_mean(word: str, options: Iterable[str]) -> str | None:
    """The known key closest to ``word`` (difflib), or None."""
    m = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.75)
    return m[0] if m else None


def not_registered(what: str, name: object, known: Iterable[str]) -> str:
    """The refusal of a name no plugin registered: the known names, and the closest of them
    ("no source named 'foldr' is registered; did you mean 'folder'? Known: camera, folder")."""
    names = sorted(known)
    guess = did_you_mean(name, names) if isinstance(name, str) else None
    hint = f"; did you mean {guess!r}? Known: " if guess else "; known: "
    return f"no {what} named {name!r} is registered{hint}{', '.join(names) or 'none'}"


def key_path(prefix: str, loc: Sequence[str | int]) -> str:
    """``prefix`` and a pydantic location as a TOML key path: ``sinks[1].topic``."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = f"{out}.{part}" if out else str(part)
    return out


def problems_of(err: ValidationError, model: type[BaseModel], prefix: str = "") -> list[Problem]:
    """Every error of ``err`` (raised validating ``model``) as a :data:`Problem`."""
    return [
        (key_path(prefix, e["loc"]), message(e, _model_at(model, e["loc"][:-1])))
        for e in err.errors(include_url=False)
    ]


def message(e: Any, model: type[BaseModel] | None) -> str:
    """One pydantic error in words, as the project writes them."""
    kind_, ctx, value = e["type"], e.get("ctx") or {}, e.get("input")
    if kind_ == "missing":
        hint = _extra(model, str(e["loc"][-1]), "hint") if model else None
        return "required" + (f" ({hint})" if hint else "")
    if kind_ == "extra_forbidden":
        known = set(model.model_fields) if model else set()
        hint = did_you_mean(str(e["loc"][-1]), known)
        if hint:
            return f"unknown key; did you mean {hint!r}?"
        return "unknown key" + (f"; known keys: {', '.join(sorted(known))}" if known else "")
    if kind_ in ("value_error", "assertion_error"):
        return str(ctx.get("error", e["msg"]))
    if kind_ in _MUST:
        return f"must be {_MUST[kind_]}, got {kind(value)} {value!r}"
    if kind_ == "literal_error":
        return f"must be one of {ctx['expected']}, got {value!r}"
    words = _bounds(kind_, ctx, e["msg"])
    if isinstance(value, float) and not math.isfinite(value) and words.startswith("must be "):
        words = "must be a finite number, " + words[len("must be ") :]  # NaN: no limit at all
    return f"{words}, got {value!r}"


def _bounds(kind_: str, ctx: dict[str, Any], msg: str) -> str:
    words = {
        "greater_than": "must be greater than {gt}",
        "greater_than_equal": "must be {ge} or more",
        "less_than": "must be less than {lt}",
        "less_than_equal": "must be at most {le}",
        "finite_number": "must be a finite number",
        "too_short": "must have at least {min_length} item(s)",
        "too_long": "must have at most {max_length} item(s)",
        "string_pattern_mismatch": "must match {pattern}",
    }
    if kind_ in words:
        shown = {k: f"{v:g}" if isinstance(v, float) else v for k, v in ctx.items()}
        return words[kind_].format(**shown)
    return msg[:1].lower() + msg[1:]


def _model_at(model: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model that holds the key at ``loc`` (nested tables), or None when it is not one."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or not (
            isinstance(current, type) and issubclass(current, BaseModel)
        ):
            return None
        field = current.model_fields.get(part)
        current = _table_of(field.annotation) if field else None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _table_of(annotation: Any) -> Any:
    """The model of an optional table (``QualityLimits | None``), else ``annotation``."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return annotation


def _extra(model: type[BaseModel], name: str, key: str) -> Any:
    field = model.model_fields.get(name)
    extra = field.json_schema_extra if field else None
    return extra.get(key) if isinstance(extra, dict) else None


def format_params(problems: Iterable[Problem]) -> list[str]:
    """Problems of a step's or a rule's parameters as they read in one line each:
    ``size must be a whole number in 1..51 px, got 0``; ``minimum: unknown key...``."""
    out = []
    for key, msg in problems:
        if not key:
            out.append(msg)
        elif msg.startswith(("must ", "is ")) or msg.startswith(f"{key} "):
            out.append(msg if msg.startswith(f"{key} ") else f"{key} {msg}")
        else:
            out.append(f"{key}: {msg}")
    return out
