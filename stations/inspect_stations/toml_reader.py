"""Reading typed values out of TOML tables, collecting every problem with its key.

The helpers behind :mod:`inspect_stations.config`: each check returns None when a value is
fine, or what is wrong with it in words (the key and the value are added by :class:`Reader`).
The problems found are raised together as one :class:`ConfigError`.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from inspect_core.errors import InspectError

REQUIRED = object()
Check = Callable[[Any], str | None]
T = TypeVar("T")


class ConfigError(InspectError):
    """A station configuration has problems; ``problems`` lists (key, message) pairs."""

    multiline = True  # one problem a line: `inspect` keeps the newlines (and escapes the rest)

    def __init__(self, problems: list[tuple[str, str]], path: str | Path | None = None):
        self.problems = problems
        self.path = path
        where = f"{path}: " if path else ""
        lines = "\n".join(f"  {k}: {m}" if k else f"  {m}" for k, m in problems)
        n = len(problems)
        super().__init__(
            f"{where}{n} problem{'s' if n != 1 else ''} in the station configuration:\n{lines}"
        )


class Reader:
    """Reads typed values out of nested tables, collecting every problem with its key."""

    def __init__(self, base: Path):
        self.base = base
        self.problems: list[tuple[str, str]] = []

    def err(self, key: str, msg: str) -> None:
        self.problems.append((key, msg))

    def table(self, raw: dict, key: str, required: bool = False) -> dict:
        v = raw.get(key)
        if v is None:
            if required:
                self.err(key, f"missing [{key}] table")
            return {}
        if not isinstance(v, dict):
            self.err(key, f"must be a table ([{key}]), got {_kind(v)}")
            return {}
        return v

    def unknown(self, table: dict, prefix: str, known: set[str]) -> None:
        for k in sorted(set(table) - known):
            hint = _close(k, known)
            self.err(
                f"{prefix}.{k}" if prefix else k,
                "unknown key"
                + (
                    f"; did you mean {hint!r}?"
                    if hint
                    else f"; known keys: {', '.join(sorted(known))}"
                ),
            )

    def get(
        self,
        table: dict,
        prefix: str,
        key: str,
        kind: type | tuple,
        default: Any = None,
        check=None,
        hint: str = "",
    ) -> Any:
        full = f"{prefix}.{key}" if prefix else key
        if key not in table:
            if default is REQUIRED:
                self.err(full, "required" + (f" ({hint})" if hint else ""))
                return None
            return default
        v = table[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = isinstance(v, kinds) and not (isinstance(v, bool) and bool not in kinds)
        if not ok and float in kinds and isinstance(v, int) and not isinstance(v, bool):
            v, ok = float(v), True
        if not ok:
            self.err(full, f"must be {' or '.join(_name(k) for k in kinds)}, got {_kind(v)} {v!r}")
            return default if default is not REQUIRED else None
        if check is not None:
            msg = check(v)
            if msg:
                self.err(full, f"{msg}, got {v!r}")
                return default if default is not REQUIRED else None
        return v

    def path(self, table: dict, prefix: str, key: str, default: str | None) -> Path | None:
        v = self.get(table, prefix, key, str, default, check=nonempty)
        if v is None:
            return None
        p = Path(os.path.expanduser(v))
        return p if p.is_absolute() else (self.base / p)

    def fill(
        self, obj: T, table: dict, prefix: str, spec: dict[str, tuple[type, Check | None]]
    ) -> T:
        """Set each key of ``spec`` (key: (kind, check)) on ``obj`` from ``table``: the value
        given there when it is right, else the one ``obj`` holds (its default)."""
        for key, (kind, check) in spec.items():
            setattr(obj, key, self.get(table, prefix, key, kind, getattr(obj, key), check))
        return obj


def read_alone(read: Callable[[dict, Reader], T], table: dict, base: Path) -> T:
    """``read(table, reader)`` for a table on its own (a source's or a sink's configuration,
    relative paths from ``base``); :class:`ConfigError` lists every problem found."""
    r = Reader(Path(base))
    out = read(table, r)
    if r.problems:
        raise ConfigError(r.problems)
    return out


# a TOML value's type in words: (what a key must be, what it was given)
_WORDS = {
    str: ("a string", "string"),
    int: ("an integer", "integer"),
    float: ("a number", "number"),
    bool: ("true or false", "boolean"),
    list: ("a list", "list"),
    dict: ("a table", "table"),
}


def _name(k: type) -> str:
    return _WORDS[k][0] if k in _WORDS else k.__name__


def _kind(v: Any) -> str:
    return _WORDS[type(v)][1] if type(v) in _WORDS else type(v).__name__


def _close(word: str, options: set[str]) -> str | None:
    m = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.75)
    return m[0] if m else None


def positive(v) -> str | None:
    if v != v or v in (float("inf"), float("-inf")):  # NaN or infinity: no limit at all
        return "must be a finite number greater than 0"
    return None if v > 0 else "must be greater than 0"


def nonneg(v) -> str | None:
    if v != v or v in (float("inf"), float("-inf")):
        return "must be a finite number, 0 or more"
    return None if v >= 0 else "must be 0 or more"


def nonempty(v) -> str | None:
    return None if str(v).strip() else "must not be empty"


def one_of(*options: str):
    def check(v) -> str | None:
        return None if v in options else f"must be one of {', '.join(map(repr, options))}"

    return check


def name_ok(v: str) -> str | None:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}", v):
        return "must be 1-128 letters, digits, '.', '-' or '_' (it names the station's records)"
    return None


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(value: str, key: str, r: Reader) -> str:
    """``${VAR}`` from the environment (for passwords in URLs); unset variables are errors."""

    def sub(m: re.Match) -> str:
        if m.group(1) not in os.environ:
            r.err(key, f"environment variable {m.group(1)} is not set")
            return m.group(0)
        return os.environ[m.group(1)]

    return _ENV.sub(sub, value)


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
