"""Check that the lock files and pyproject.toml agree, and that this environment is the lock.

Run by `make test` (and `make lock-check`). It fails, with one line per problem, when:

- a requirement of pyproject.toml (its dependencies, or an extra the lock covers) has no pin
  in the lock, or a pin that its version range does not admit;
- the lock pins a package as asked for by pyproject.toml that pyproject.toml no longer names;
- a package the lock pins is installed here at another version (``--installed``).

The fix is `make lock` (then review the diff), or a pyproject.toml range that admits the pin.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
# lock file -> the extras of pyproject.toml it covers (the Makefile's LOCK_EXTRAS for dev)
LOCKS: dict[str, tuple[str, ...]] = {
    "requirements/runtime.txt": (),
    "requirements/station.txt": ("postgres", "mqtt"),  # the Dockerfile's
    "requirements/dev.txt": ("train", "dev", "review", "batch", "postgres", "mqtt"),
}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")
SELF_VIA = "(pyproject.toml)"


@dataclass
class Lock:
    """A lock file read back: its pins, and the names pip-compile says pyproject.toml asked for."""

    pins: dict[str, Version] = field(default_factory=dict)
    direct: set[str] = field(default_factory=set)


def read_lock(path: Path) -> Lock:
    lock = Lock()
    current = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        match = PIN.match(raw)
        if match:
            current = canonicalize_name(match.group(1))
            lock.pins[current] = Version(match.group(2))
        elif current and raw.lstrip().startswith("#") and SELF_VIA in raw:
            lock.direct.add(current)
    return lock


def wanted(pyproject: dict[str, object], extras: tuple[str, ...]) -> list[Requirement]:
    project = pyproject["project"]
    assert isinstance(project, dict)
    reqs = [Requirement(r) for r in project.get("dependencies", [])]
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        if extra not in optional:
            raise SystemExit(f"pyproject.toml has no extra {extra!r} (requirements/check_lock.py)")
        reqs.extend(Requirement(r) for r in optional[extra])
    return reqs


def problems_of(
    lock_name: str, extras: tuple[str, ...], installed: bool = False, root: Path = ROOT
) -> list[str]:
    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    lock = read_lock(root / lock_name)
    out: list[str] = []
    names = set()
    for req in wanted(pyproject, extras):
        name = canonicalize_name(req.name)
        names.add(name)
        pin = lock.pins.get(name)
        if pin is None:
            out.append(f"{lock_name}: pyproject.toml asks for {req} but the lock has no pin")
        elif not req.specifier.contains(pin, prereleases=True):
            out.append(f"{lock_name}: pins {name}=={pin}, outside pyproject.toml's {req}")
    for name in sorted(lock.direct - names):
        out.append(f"{lock_name}: pins {name} for pyproject.toml, which no longer asks for it")
    if installed:
        for name, pin in sorted(lock.pins.items()):
            try:
                have = Version(metadata.version(name))
            except metadata.PackageNotFoundError:
                out.append(f"{lock_name}: {name}=={pin} is not installed in {sys.prefix}")
                continue
            if have != pin:
                out.append(f"{lock_name}: {name} {have} is installed, the lock says {pin}")
    return out


def disagreeing_pins(root: Path = ROOT) -> list[str]:
    """A package pinned at one version in one lock and another in the next: the locks were not
    refreshed together (`make lock` writes them all)."""
    seen: dict[str, tuple[str, Version]] = {}
    out = []
    for lock_name in LOCKS:
        for name, pin in read_lock(root / lock_name).pins.items():
            first = seen.setdefault(name, (lock_name, pin))
            if first[1] != pin:
                out.append(f"{lock_name}: pins {name}=={pin}, {first[0]} pins {first[1]}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--installed", metavar="LOCK", help="also check this environment against LOCK"
    )
    args = parser.parse_args(argv)
    problems = disagreeing_pins()
    for lock_name, extras in LOCKS.items():
        problems += problems_of(lock_name, extras, installed=args.installed == lock_name)
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        print(
            "the lock and pyproject.toml disagree: run `make lock` and review the diff",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
