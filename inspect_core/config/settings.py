"""The base of every configuration model, numeric ranges, and validating with every problem.

:class:`Settings` forbids unknown keys and converts nothing a TOML file would not (a string is no
number, ``true`` is no integer). :class:`Range` is a parameter's allowed range, declared on the
field (``size: Annotated[int, Range(1, 51, "px", whole=True)]``): it checks the value, words the
refusal (``must be a whole number in 1..51 px, got 0``) and documents itself in the reference.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler, ValidationError
from pydantic_core import PydanticCustomError, core_schema

from inspect_core.config.problems import Problem, problems_of

M = TypeVar("M", bound=BaseModel)


class Settings(BaseModel):
    """A configuration table: unknown keys refused, no conversions a TOML file would not make."""

    model_config = ConfigDict(extra="forbid", strict=True, arbitrary_types_allowed=True)


@dataclass(frozen=True)
class Range:
    """``lo..hi`` (inclusive) in ``unit``; ``whole``: an integer; ``off``: one more allowed value
    (0 = "off" or "the model's own")."""

    lo: float
    hi: float
    unit: str = ""
    whole: bool = False
    off: float | None = None

    def describe(self) -> str:
        what = "a whole number" if self.whole else "a number"
        text = f"{what} in {self.lo:g}..{self.hi:g}" + (f" {self.unit}" if self.unit else "")
        return text + (f" (or {self.off:g})" if self.off is not None else "")

    def fits(self, v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, (numbers.Integral, numbers.Real)):
            return False
        # a whole number is an integer: 256.0 would pass here and fail in OpenCV on every image
        if not math.isfinite(v) or (self.whole and not isinstance(v, numbers.Integral)):
            return False
        x = float(v)
        return self.lo <= x <= self.hi or (self.off is not None and x == self.off)

    def _check(self, v: Any, handler: core_schema.ValidatorFunctionWrapHandler) -> Any:
        if not self.fits(v):
            raise PydanticCustomError("value_error", "{error}", {"error": self.refusal(v)})
        return handler(v)

    def refusal(self, v: Any) -> str:
        return f"must be {self.describe()}, got {v!r}"

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_wrap_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> dict[str, Any]:
        out = dict(handler(schema))
        out.update(minimum=self.lo, maximum=self.hi)
        return out


def validate(
    model: type[M], data: Any, prefix: str = "", context: Mapping[str, Any] | None = None
) -> tuple[M | None, list[Problem]]:
    """``model`` from ``data``, or None and every problem (keys under ``prefix``)."""
    try:
        return model.model_validate(data, context=dict(context or {})), []
    except ValidationError as e:
        return None, problems_of(e, model, prefix)


def lenient(
    model: type[M],
    data: Mapping[str, Any],
    prefix: str = "",
    context: Mapping[str, Any] | None = None,
    placeholders: Mapping[str, Any] | None = None,
) -> tuple[M, list[Problem]]:
    """``model`` from the table ``data`` with every problem, and the defaults where a value is
    wrong (a missing required key: its ``placeholders`` value), so that one pass finds every
    problem of a file and the checks that follow still have an object to look at."""
    table = dict(data)
    problems: list[Problem] = []
    for _ in range(3):
        try:
            return model.model_validate(table, context=dict(context or {})), problems
        except ValidationError as e:
            seen = {k for k, _ in problems}  # a placeholder's own problem is not the person's
            problems += [p for p in problems_of(e, model, prefix) if p[0] not in seen]
            for err in e.errors(include_url=False):
                top = err["loc"][0] if err["loc"] else None
                if isinstance(top, str) and top in table:
                    del table[top]
                elif isinstance(top, str) and placeholders and top in placeholders:
                    table[top] = placeholders[top]
                elif not err["loc"]:  # a check of the whole table: its defaults then
                    table = dict(placeholders or {})
    return model.model_construct(**dict(placeholders or {})), problems
