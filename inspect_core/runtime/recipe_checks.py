"""Checks of a recipe's tables that only their shape needs (no model): run as the recipe loads,
so that a mistake is one message at start-up, not an ERROR on every image."""

from __future__ import annotations

__all__ = ["shape_problems"]


def shape_problems(key: str, what: str, spec: dict, pixel_size_mm: float | None) -> list[str]:
    """A post-processing step's tables in the wrong shape, or in mm² without a pixel size:
    found at load, not on every image."""
    if key != "postprocess":
        return []
    out = []
    if isinstance(spec.get("classes"), str):
        out.append(f'{what}: classes = ["NAME", ...] is a list of class names, not a string')
    for table in ("min_px", "min_mm2"):
        if table in spec and not isinstance(spec[table], dict):
            out.append(f"{what}: {table} = {{ CLASS = VALUE }} is a table per class")
    if spec.get("min_mm2") and not pixel_size_mm:
        out.append(
            f"{what} has min_mm2 but there is no pixel_size_mm (set it in the recipe or the "
            "station, or --pixel-size)"
        )
    return out
