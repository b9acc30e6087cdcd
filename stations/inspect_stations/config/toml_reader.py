"""What the station's configuration models share: the error that lists every problem, paths
relative to the file, ``${VAR}`` from the environment.

The keys themselves are declared once, as pydantic models (:mod:`.config_types`,
:mod:`.mqttconf`); :func:`inspect_core.config.lenient` validates a table with every problem
and its key. The validators here read the configuration file's folder from the validation
context (``{"base": folder}``); without one (an object made in Python) a path stays as given.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BeforeValidator, ValidationInfo

from inspect_core.config import Problem
from inspect_core.errors import InspectError

T = TypeVar("T")


class ConfigError(InspectError):
    """A station configuration has problems; ``problems`` lists (key, message) pairs."""

    multiline = True  # one problem a line: `inspect` keeps the newlines (and escapes the rest)

    def __init__(self, problems: list[Problem], path: str | Path | None = None):
        self.problems = problems
        self.path = path
        where = f"{path}: " if path else ""
        lines = "\n".join(f"  {k}: {m}" if k else f"  {m}" for k, m in problems)
        n = len(problems)
        super().__init__(
            f"{where}{n} problem{'s' if n != 1 else ''} in the station configuration:\n{lines}"
        )


def read_alone(
    read: Callable[[dict[str, Any], Path], tuple[T, list[Problem]]],
    table: dict[str, Any],
    base: Path,
) -> T:
    """``read(table, base)`` for a table on its own (a source's or a sink's configuration,
    relative paths from ``base``); :class:`ConfigError` lists every problem found."""
    out, problems = read(table, Path(base))
    if problems:
        raise ConfigError(problems)
    return out


def _base(info: ValidationInfo) -> Path | None:
    ctx = info.context
    return Path(ctx["base"]) if isinstance(ctx, dict) and ctx.get("base") is not None else None


def _path(v: Any, info: ValidationInfo) -> Any:
    """A non-empty string as a path: ``~`` expanded, relative to the file's folder."""
    if isinstance(v, Path):  # a default, or an object made in Python
        base = _base(info)
        return v if v.is_absolute() or base is None else base / v
    if not isinstance(v, str):
        raise ValueError(f"must be a string (a path), got {type(v).__name__} {v!r}")
    if not v.strip():
        raise ValueError(f"must not be empty, got {v!r}")
    p = Path(os.path.expanduser(v))
    base = _base(info)
    return p if p.is_absolute() or base is None else base / p


ConfigPath = Annotated[Path, BeforeValidator(_path)]

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(value: str) -> str:
    """``${VAR}`` from the environment (for passwords in URLs); an unset variable is refused."""
    missing = [m.group(1) for m in _ENV.finditer(value) if m.group(1) not in os.environ]
    if missing:
        raise ValueError(f"environment variable {missing[0]} is not set")
    return _ENV.sub(lambda m: os.environ[m.group(1)], value)


def _with_env(v: Any) -> Any:
    return expand_env(v) if isinstance(v, str) else v


WithEnv = Annotated[str, BeforeValidator(_with_env)]


def nonempty(v: Any) -> Any:
    if isinstance(v, str) and not v.strip():
        raise ValueError(f"must not be empty, got {v!r}")
    return v


NonEmpty = Annotated[str, BeforeValidator(nonempty)]


def absolute_sqlite(url: str, base: Path) -> str:
    """``sqlite:///rel.db`` is relative to the config file's folder, not the working dir."""
    prefix = "sqlite:///"
    if url.startswith(prefix):
        rest = url[len(prefix) :]
        if (
            rest
            and not rest.startswith("/")
            and not rest.startswith(":memory:")
            and not rest.startswith("file:")
        ):
            return prefix + str((base / rest).resolve())
    return url
