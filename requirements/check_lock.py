"""The lock files of the workspace: check them against the pyproject.toml files, check this
environment against them, and strip the workspace's own editable lines after pip-compile.

    python requirements/check_lock.py                      # locks vs pyproject.toml files
    python requirements/check_lock.py --installed requirements/dev.txt   # and this venv
    python requirements/check_lock.py --strip requirements/dev.txt       # (make lock)

Each ``requirements/NAME.in`` names the workspace members a lock covers and their extras
(``-e ./db[postgres]``); ``NAME.txt`` is pip-compile's output with hashes. The check fails, with
one line per problem, when:

- a member's requirement (its dependencies, or an extra the lock covers) has no pin in the
  lock, or a pin that its version range does not admit;
- the lock pins a package as asked for by a member that no member asks for any more;
- two locks pin one package at different versions (they were not refreshed together);
- a package the lock pins is installed here at another version (``--installed``).

The fix is `make lock` (then review the diff), or a range that admits the pin.
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
LOCKS = ("requirements/runtime.txt", "requirements/station.txt", "requirements/dev.txt")
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")
EDITABLE = re.compile(r"^-e\s+(\S+?)(?:\[([^\]]*)\])?\s*$")
VIA = re.compile(r"^\s+#\s+(?:via\s+)?([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\(|$)")


@dataclass(frozen=True)
class Member:
    """A workspace member a lock covers: its folder's pyproject.toml and the extras asked."""

    name: str  # canonical distribution name
    requirements: tuple[Requirement, ...]


@dataclass
class Lock:
    """A lock file read back: its pins, and the names the workspace's members asked for."""

    pins: dict[str, Version] = field(default_factory=dict)
    via: dict[str, set[str]] = field(default_factory=dict)  # pin -> who asked for it


def read_lock(path: Path) -> Lock:
    lock = Lock()
    current = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        match = PIN.match(raw)
        if match:
            current = canonicalize_name(match.group(1))
            lock.pins[current] = Version(match.group(2))
            lock.via[current] = set()
        elif current and (who := VIA.match(raw)):
            lock.via[current].add(canonicalize_name(who.group(1)))
    return lock


def members_of(in_file: Path, root: Path) -> list[Member]:
    """The members ``in_file`` installs (``-e FOLDER[EXTRAS]``), each with what it asks for."""
    out = []
    for raw in in_file.read_text(encoding="utf-8").splitlines():
        match = EDITABLE.match(raw.strip())
        if not match:
            continue
        folder = root / match.group(1)
        extras = [e.strip() for e in (match.group(2) or "").split(",") if e.strip()]
        project = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))["project"]
        reqs = [Requirement(r) for r in project.get("dependencies", [])]
        optional = project.get("optional-dependencies", {})
        for extra in extras:
            if extra not in optional:
                raise SystemExit(f"{in_file}: {folder.name}/pyproject.toml has no extra {extra!r}")
            reqs.extend(Requirement(r) for r in optional[extra])
        out.append(Member(canonicalize_name(project["name"]), tuple(reqs)))
    return out


def problems_of(lock_name: str, installed: bool = False, root: Path = ROOT) -> list[str]:
    members = members_of((root / lock_name).with_suffix(".in"), root)
    ours = {m.name for m in members}
    lock = read_lock(root / lock_name)
    out: list[str] = []
    for member in members:
        for req in member.requirements:
            name = canonicalize_name(req.name)
            pin = lock.pins.get(name)
            if name in ours:
                continue  # another member: installed from its folder
            if pin is None:
                out.append(f"{lock_name}: {member.name} asks for {req}, the lock has no pin")
            elif not req.specifier.contains(pin, prereleases=True):
                out.append(f"{lock_name}: pins {name}=={pin}, outside {member.name}'s {req}")
    asked = {canonicalize_name(r.name) for m in members for r in m.requirements}
    for name, via in sorted(lock.via.items()):
        if via & ours and name not in asked:
            out.append(
                f"{lock_name}: pins {name} for {', '.join(sorted(via & ours))}, "
                "which no longer asks for it"
            )
    if installed:
        out += _installed_problems(lock_name, lock)
    return out


def _installed_problems(lock_name: str, lock: Lock) -> list[str]:
    out = []
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


def strip_workspace(text: str) -> str:
    """pip-compile's output without the workspace's own editable lines (and the warnings that
    they have no hash): the Makefile installs the members from their folders, the rest with
    ``--require-hashes``."""
    out: list[str] = []
    skipping = False
    for line in text.splitlines():
        if line.startswith(("# WARNING: pip install will require", "# Consider using a hash")):
            continue
        if line.startswith("-e "):
            skipping = True
            continue
        if skipping and line.startswith("    "):
            continue
        skipping = False
        out.append(line)
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--installed", metavar="LOCK", help="also check this venv against LOCK")
    parser.add_argument("--strip", metavar="LOCK", help="strip the workspace's -e lines of LOCK")
    args = parser.parse_args(argv)
    if args.strip:
        path = Path(args.strip)
        path.write_text(strip_workspace(path.read_text(encoding="utf-8")), encoding="utf-8")
        return 0
    problems = disagreeing_pins()
    for lock_name in LOCKS:
        problems += problems_of(lock_name, installed=args.installed == lock_name)
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        print(
            "the locks and the pyproject.toml files disagree: run `make lock`, review the diff",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
