"""The configuration reference, made from the models: ``python -m inspect_core.config.reference``
writes ``docs/reference/configuration.md`` (``--check``: exit 1 when the file differs, as the
test does). Every key with its type, default, range or choices and its description."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from inspect_core.config.settings import Range

OUT = Path(__file__).resolve().parents[2] / "docs" / "reference" / "configuration.md"
# modules that declare sections (``SECTIONS``: a list of :class:`Section`); one not installed
# is left out
PROVIDERS = ("inspect_core.config.sections", "inspect_stations.config.reference")


@dataclass(frozen=True)
class Section:
    heading: str  # e.g. "[limits]" or "[[rules]] type = \"roi\""
    model: type[BaseModel]
    group: str  # "Station file", "Recipe file"...


def type_words(annotation: Any) -> str:
    """A field's type as a TOML reader would say it."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_words(args[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_words(a) for a in args if a is not type(None))
    if origin is Literal:
        return "choice"
    if origin in (list, Sequence):
        return f"list of {type_words(args[0])}" if args else "list"
    if origin is dict:
        return "table"
    names = {str: "string", int: "integer", float: "number", bool: "boolean", Path: "path"}
    if annotation in names:
        return names[annotation]
    return (
        "table"
        if isinstance(annotation, type) and issubclass(annotation, BaseModel)
        else (getattr(annotation, "__name__", str(annotation)))
    )


def _metadata(annotation: Any) -> list[Any]:
    out = list(getattr(annotation, "__metadata__", ()))
    for arg in typing.get_args(annotation):
        out += _metadata(arg)
    return out


def _literal(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) is Literal:
        return list(typing.get_args(annotation))
    return [v for a in typing.get_args(annotation) for v in _literal(a)]


def allowed(field: FieldInfo) -> str:
    """The field's range or choices in words ("" when any value of its type is)."""
    choices = _literal(field.annotation)
    if choices:
        return ", ".join(repr(c) for c in choices)
    meta = field.metadata + _metadata(field.annotation)
    for m in meta:
        if isinstance(m, Range):
            return m.describe()
    words = (
        (annotated_types.Gt, "gt", "> {}"),
        (annotated_types.Ge, "ge", ">= {}"),
        (annotated_types.Lt, "lt", "< {}"),
        (annotated_types.Le, "le", "<= {}"),
    )
    parts = [
        text.format(getattr(m, a)) for m in meta for cls, a, text in words if isinstance(m, cls)
    ]
    return ", ".join(parts)


def default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        return f"`{field.default_factory()!r}`"  # type: ignore[call-arg]
    if field.default is PydanticUndefined:
        return "**required**"
    return f"`{field.default!r}`" if field.default is not None else "not set"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_section(s: Section) -> list[str]:
    doc = " ".join((s.model.__doc__ or "").split())
    lines = [f"### `{s.heading}`", "", _cell(doc), ""] if doc else [f"### `{s.heading}`", ""]
    lines += ["| key | type | default | allowed | meaning |", "|---|---|---|---|---|"]
    for name, field in s.model.model_fields.items():
        if name == "type" or field.exclude:
            continue
        desc = field.description or ""
        extra = field.json_schema_extra
        if isinstance(extra, dict) and extra.get("hint"):
            desc = desc or str(extra["hint"])
        row = (name, type_words(field.annotation), default(field), allowed(field), desc)
        lines.append("| " + " | ".join(_cell(c) for c in (f"`{row[0]}`", *row[1:])) + " |")
    return lines + [""]


def render(sections: Iterable[Section]) -> str:
    out = [
        "# Configuration reference",
        "",
        "Generated from the configuration models by `python -m inspect_core.config.reference`;",
        "do not edit by hand (a test fails when this file and the models disagree).",
        "",
    ]
    group = None
    for s in sections:
        if s.group != group:
            group = s.group
            out += [f"## {group}", ""]
        out += render_section(s)
    return "\n".join(out).rstrip() + "\n"


def all_sections() -> list[Section]:
    out: list[Section] = []
    for name in PROVIDERS:
        if importlib.util.find_spec(name.rsplit(".", 1)[0]) is not None:
            out += importlib.import_module(name).SECTIONS
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true", help="exit 1 when the file is stale")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    text = render(all_sections())
    if args.check:
        same = args.out.is_file() and args.out.read_text(encoding="utf-8") == text
        if not same:
            print(f"{args.out} is stale: run python -m inspect_core.config.reference")
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
