"""The layout's promises: every package says what it exports (``__all__``), and every name it
lists is there (imported lazily or not)."""

from __future__ import annotations

import ast
import importlib
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# the folder you see is the name you import: package folder -> import name
FOLDERS = {
    "inspect_core": "inspect_core",
    "plugins/inspect_plugins": "inspect_plugins",
    "stations/inspect_stations": "inspect_stations",
    "db/inspect_db": "inspect_db",
    "review/inspect_review": "inspect_review",
    "batch/inspect_batch": "inspect_batch",
}


def _packages() -> list[tuple[Path, str]]:
    out = []
    for folder, name in FOLDERS.items():
        for init in sorted((ROOT / folder).rglob("__init__.py")):
            rel = init.parent.relative_to(ROOT / folder).parts
            out.append((init, ".".join((name, *rel))))
    return out


@pytest.mark.parametrize("init,package", _packages(), ids=lambda v: str(v))
def test_every_package_lists_what_it_exports(init, package):
    tree = ast.parse(init.read_text())
    names = [
        t.id
        for node in tree.body
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(t, ast.Name)
    ]
    assert "__all__" in names, f"{init.relative_to(ROOT)}: no __all__"
    mod = importlib.import_module(package)
    missing = [n for n in mod.__all__ if not hasattr(mod, n)]
    assert not missing, f"{package}.__all__ names what it does not have: {missing}"


def test_the_walk_finds_the_packages():
    found = {p for _, p in _packages()}
    assert {"inspect_core", "inspect_plugins.industrial", "inspect_stations", "inspect_db"} <= found


# every module of the product and of its tools: at most ~400 lines (the house rule)
MAX_LINES = 400
CODE_FOLDERS = (*FOLDERS, "bench", "training", "requirements")
TOP = {f.split("/")[0] for f in FOLDERS}


def _modules() -> list[Path]:
    return sorted(
        p
        for folder in CODE_FOLDERS
        for p in (ROOT / folder).rglob("*.py")
        if "migrations" not in p.parts and "__pycache__" not in p.parts
    )


def test_no_module_is_over_the_line_limit():
    long = {
        str(p.relative_to(ROOT)): n
        for p in _modules()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines (split them by concern): {long}"


def test_the_line_limit_walk_covers_bench_and_training():
    names = {p.relative_to(ROOT).parts[0] for p in _modules()}
    assert {"bench", "training", "stations", "db"} <= names


def test_each_workspace_folder_is_a_distribution_of_its_import_name():
    """Each top-level folder but the core's is a distribution: its pyproject.toml, and its one
    package inside under the name it is imported by; no folder mapping, no setup.py."""
    members = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["inspect"]["workspace"]
    assert sorted(members) == sorted(TOP - {"inspect_core"})
    assert not (ROOT / "setup.py").exists()
    for folder in members:
        project = tomllib.loads((ROOT / folder / "pyproject.toml").read_text())
        include = project["tool"]["setuptools"]["packages"]["find"]["include"]
        package = FOLDERS[next(f for f in FOLDERS if f.startswith(folder + "/"))]
        assert include == [package + "*"], folder
        assert (ROOT / folder / package / "__init__.py").is_file()
        assert "package-dir" not in project["tool"]["setuptools"]
        assert [p.name for p in (ROOT / folder).glob("*.py")] == [], folder


def test_no_symlinks_in_the_tree():
    tracked = subprocess.run(
        ["git", "ls-files", "-s"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    links = [line.split("\t", 1)[1] for line in tracked if line.startswith("120000")]
    assert links == []
