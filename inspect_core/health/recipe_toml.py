"""Quality limits as a recipe's ``[health.quality]`` table: the TOML text, and writing it into a
recipe file (``inspect health fit --write``) without touching the rest of the file."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

from inspect_core.cards import MAX_SMALL_FILE, read_small_file
from inspect_core.config.health import QualityLimits
from inspect_core.errors import InspectError

__all__ = ["HEADER", "limits_toml", "write_limits"]

HEADER = "[health.quality]"
_HEADER = re.compile(r"^\s*\[\s*health\s*\.\s*quality\s*\]\s*(#.*)?$")
_ANY_HEADER = re.compile(r"^\s*\[")


def limits_toml(limits: QualityLimits) -> str:
    """``[health.quality]`` and one ``key = value`` line per set limit (4 significant digits)."""
    lines = [HEADER]
    for key, value in limits.model_dump(exclude_none=True).items():
        lines.append(f"{key} = {float(f'{value:.4g}')!r}")
    return "\n".join(lines) + "\n"


def _replaced(text: str, table: str) -> str:
    """``text`` with its ``[health.quality]`` table (header to the next header) replaced by
    ``table``, or ``table`` appended when it has none."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if _HEADER.match(line)), None)
    if start is None:
        sep = "" if not text or text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
        return text + sep + table
    end = next((i for i in range(start + 1, len(lines)) if _ANY_HEADER.match(lines[i])), len(lines))
    tail = lines[end:]
    return "".join(lines[:start]) + table + ("\n" if tail else "") + "".join(tail)


def write_limits(path: str | Path, limits: QualityLimits) -> None:
    """Write ``limits`` as the ``[health.quality]`` table of the recipe TOML at ``path``: its
    table replaced, or added at the end; the other lines kept as they are. The file is written
    only when the result reads back as TOML with exactly these limits (InspectError naming
    the file and what to do otherwise)."""
    path = Path(path)
    try:
        text = read_small_file(path, MAX_SMALL_FILE).decode("utf-8")
        before = tomllib.loads(text)
    except OSError as e:
        raise InspectError(f"{path}: cannot read the recipe ({e.strerror or e})") from e
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise InspectError(f"{path}: cannot read the recipe ({e}); it must be TOML text") from e
    health = before.get("health")
    if isinstance(health, dict) and "quality" in health:
        if not any(_HEADER.match(line) for line in text.splitlines()):
            raise InspectError(
                f"{path}: health.quality is written inline, not as a [health.quality] table; "
                "remove it and run again, or paste the printed table in its place"
            )
    new = _replaced(text, limits_toml(limits))
    try:
        after = tomllib.loads(new)["health"]["quality"]
    except (tomllib.TOMLDecodeError, KeyError, TypeError) as e:
        raise InspectError(
            f"{path}: adding [health.quality] would not read back ({e}); the file is unchanged: "
            "paste the printed table into it by hand"
        ) from e
    if QualityLimits.model_validate(after) != QualityLimits.model_validate(
        tomllib.loads(limits_toml(limits))["health"]["quality"]
    ):
        raise InspectError(f"{path}: [health.quality] did not read back as written; unchanged")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(new, encoding="utf-8")
    os.replace(tmp, path)
