"""Building objects from config tables ``{"type": NAME, ...params}``: one way, one kind of error.

Recipes and station files describe preprocessing, post-processing and rules as lists of such
tables. :func:`parse` checks one table (its numbers against :data:`LIMITS`) and finds its
factory; :func:`construct` calls it, and turns a wrong or missing parameter into a message that
names the table and lists what the factory takes, so the person editing the TOML sees where and
what.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


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


# ---------------------------------------------------------------------------------------------
# The allowed range of every numeric parameter, in one table, checked when a recipe is built
# (and again by :func:`parse` when its steps and rules are): a kernel of 1e9 px or a tile of 8 px
# is refused with the recipe file, the key and the range, before the first image.


@dataclass(frozen=True)
class Limit:
    """``lo..hi`` (inclusive); ``whole``: a whole number; ``off``: one more allowed value (0 =
    "off" or "the default"); ``points``: the value is a polygon of at most that many [x, y]
    points, each coordinate in range. A dict value (class -> number) is checked entry by entry;
    None (not set) always passes."""

    lo: float
    hi: float
    unit: str = ""
    whole: bool = False
    off: float | None = None
    points: int = 0

    def describe(self) -> str:
        kind = "a whole number" if self.whole else "a number"
        text = f"{kind} in {self.lo:g}..{self.hi:g}" + (f" {self.unit}" if self.unit else "")
        if self.off is not None:
            text += f" (or {self.off:g})"
        return text + (f", at most {self.points} points" if self.points else "")

    def problem(self, key: str, value: Any) -> str | None:
        """Why ``value`` is not allowed for ``key``, or None."""
        if value is None:
            return None
        if isinstance(value, dict):
            return next((p for k, v in value.items() if (p := self.problem(f"{key}.{k}", v))), None)
        if self.points:
            return self._polygon(key, value)
        if not self._fits(value):
            return f"{key} must be {self.describe()}, got {value!r}"
        return None

    def _fits(self, v: Any) -> bool:
        if not _is_number(v):
            return False
        # a whole number is an integer: 256.0 would pass here and fail in OpenCV on every image
        if not math.isfinite(v) or (self.whole and not isinstance(v, numbers.Integral)):
            return False
        return self.lo <= v <= self.hi or (self.off is not None and v == self.off)

    def _polygon(self, key: str, value: Any) -> str | None:
        if not isinstance(value, (list, tuple)):
            return None  # not a polygon at all: the rule itself says what it needs
        coords = [c for p in value if isinstance(p, (list, tuple)) for c in p]
        if len(value) > self.points or not all(self._fits(c) for c in coords):
            shown = repr(value) if len(value) <= 8 else f"{len(value)} points"
            return f"{key} must be {self.describe()}, got {shown}"
        return None


def _is_number(v: object) -> bool:
    """A real number (int, float, NumPy's), not a bool."""
    return not isinstance(v, bool) and isinstance(v, (numbers.Integral, numbers.Real))


AREA = Limit(0, 1e8, 'px (or mm² with unit = "mm2")')  # a 10000 x 10000 image is 1e8 px
PIXEL_SIZE = Limit(1e-5, 1e5, "mm per pixel")
KERNEL = Limit(1, 51, "px", whole=True)  # 51 px: ~0.4 s per class on a 2000 x 2000 mask
POLYGON = Limit(-1e6, 1e6, "px (or fractions 0..1)", points=1000)
SIDE = Limit(16, 4096, "px", whole=True, off=0)
RATIO = Limit(0, 1)

# section -> type -> parameter -> Limit; the section "recipe", type "", holds the recipe's own keys
LIMITS: dict[str, dict[str, dict[str, Limit]]] = {
    "recipe": {
        "": {
            "pixel_size_mm": PIXEL_SIZE,
            "tile": Limit(64, 4096, "px", whole=True, off=0),
            "tile_overlap": Limit(0, 0.75),
        }
    },
    "preprocess": {
        "resize": {"width": SIDE, "max_side": SIDE},
        "clahe": {"clip": Limit(0.01, 1000), "grid": Limit(1, 64, whole=True)},
    },
    "postprocess": {
        "open": {"size": KERNEL},
        "close": {"size": KERNEL},
        "fill_holes": {"max_area": Limit(0, 1e8, "px")},
        "remove_small": {
            "min_px": Limit(0, 1e8, "px"),
            "min_mm2": Limit(0, 1e8, "mm²"),
            "default_px": Limit(0, 1e8, "px"),
            "pixel_size_mm": PIXEL_SIZE,
        },
    },
    "rules": {
        "min_area": {"min": AREA},
        "max_area": {"max": AREA},
        "max_count": {"max": Limit(0, 1e6, "regions", whole=True)},
        "roi": {"min_area": AREA, "polygon": POLYGON},
        "roi_coverage": {"max_ratio": RATIO, "polygon": POLYGON},
        "review_band": {"low": RATIO, "high": RATIO},
    },
}


# Old type names still accepted, section -> old name -> current name. The post-processing step
# that removes small regions was ``min_area``, the name of the rule that fires for large ones.
ALIASES: dict[str, dict[str, str]] = {"postprocess": {"min_area": "remove_small"}}


def canonical(section: str, kind: Any) -> Any:
    """The current name of type ``kind`` of ``section`` (see :data:`ALIASES`)."""
    return ALIASES.get(section, {}).get(kind, kind) if isinstance(kind, str) else kind


def limit_problems(section: str, kind: str, params: dict[str, Any]) -> list[str]:
    """What in ``params`` (of one ``kind`` of ``section``) lies outside :data:`LIMITS`; a type
    the table does not know (a plugin's rule) is left to its factory."""
    table = LIMITS.get(section, {}).get(canonical(section, kind), {})
    found = (lim.problem(key, params[key]) for key, lim in table.items() if key in params)
    return [p for p in found if p]
