"""The lock files: every version `make test` and `make demo` install is pinned with its hash,
and a pyproject.toml that asks for something else is caught (requirements/check_lock.py)."""

from __future__ import annotations

import importlib.util
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("check_lock", ROOT / "requirements/check_lock.py")
assert _spec and _spec.loader
check_lock = importlib.util.module_from_spec(_spec)
sys.modules["check_lock"] = check_lock  # its dataclasses look their module up
_spec.loader.exec_module(check_lock)

PYPROJECT = """
[project]
name = "demo"
version = "0"
dependencies = ["numpy>=1.24", "click>=8.1"]
[project.optional-dependencies]
dev = ["pytest>=7"]
"""

MEMBER = """
[project]
name = "demo-db"
version = "0"
dependencies = ["demo", "sqlalchemy>=2"]
"""

LOCK = """\
click==8.5.1 \\
    --hash=sha256:aa
    # via demo
numpy==2.4.6 \\
    --hash=sha256:bb
    # via
    #   demo
    #   scipy
pytest==9.2.0 \\
    --hash=sha256:cc
    # via demo
sqlalchemy==2.1.9 \\
    --hash=sha256:dd
    # via demo-db
"""


def _tree(tmp_path: Path, pyproject: str, lock: str) -> Path:
    """A workspace of two members (the root, with its dev extra, and db/) and its dev lock."""
    (tmp_path / "requirements").mkdir()
    (tmp_path / "db").mkdir()
    (tmp_path / "pyproject.toml").write_text(pyproject)
    (tmp_path / "db/pyproject.toml").write_text(MEMBER)
    (tmp_path / "requirements/dev.in").write_text("# dev\n-e .[dev]\n-e ./db\n")
    (tmp_path / "requirements/dev.txt").write_text(lock)
    return tmp_path


def test_the_repository_locks_agree_with_the_workspace():
    for lock_name in check_lock.LOCKS:
        assert check_lock.problems_of(lock_name) == [], lock_name


def test_the_locks_cover_every_member_and_nothing_of_ours_is_pinned():
    members = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["inspect"]["workspace"]
    dev = check_lock.members_of(ROOT / "requirements/dev.in", ROOT)
    assert len(dev) == len(members) + 1  # the core and every member
    for lock_name in check_lock.LOCKS:
        pins = check_lock.read_lock(ROOT / lock_name).pins
        assert not [p for p in pins if p.startswith("inspect-")], lock_name


def test_an_agreeing_lock_passes(tmp_path):
    root = _tree(tmp_path, PYPROJECT, LOCK)
    assert check_lock.problems_of("requirements/dev.txt", root=root) == []


def test_a_range_the_pin_does_not_fit_is_caught(tmp_path):
    root = _tree(tmp_path, PYPROJECT.replace("numpy>=1.24", "numpy<2"), LOCK)
    problems = check_lock.problems_of("requirements/dev.txt", root=root)
    assert len(problems) == 1 and "numpy==2.4.6" in problems[0] and "numpy<2" in problems[0]


def test_a_new_requirement_without_a_pin_is_caught(tmp_path):
    root = _tree(tmp_path, PYPROJECT.replace('"click>=8.1"', '"click>=8.1", "rich>=13"'), LOCK)
    problems = check_lock.problems_of("requirements/dev.txt", root=root)
    assert problems == ["requirements/dev.txt: demo asks for rich>=13, the lock has no pin"]


def test_a_dropped_requirement_left_in_the_lock_is_caught(tmp_path):
    root = _tree(tmp_path, PYPROJECT.replace('dev = ["pytest>=7"]', "dev = []"), LOCK)
    problems = check_lock.problems_of("requirements/dev.txt", root=root)
    assert problems == ["requirements/dev.txt: pins pytest for demo, which no longer asks for it"]


def test_a_members_requirement_outside_its_pin_is_caught(tmp_path):
    root = _tree(tmp_path, PYPROJECT, LOCK)
    (root / "db/pyproject.toml").write_text(MEMBER.replace("sqlalchemy>=2", "sqlalchemy<2"))
    problems = check_lock.problems_of("requirements/dev.txt", root=root)
    assert problems == [
        "requirements/dev.txt: pins sqlalchemy==2.1.9, outside demo-db's sqlalchemy<2"
    ]


def test_the_workspace_lines_are_stripped_from_pip_compiles_output():
    raw = (
        "# header\n"
        "# WARNING: pip install will require the following package to be hashed.\n"
        "# Consider using a hashable URL like https://example.invalid/x.zip\n"
        "-e ./db\n"
        "    # via -r requirements/dev.in\n"
        "click==8.5.1 \\\n    --hash=sha256:aa\n    # via demo-db\n"
    )
    out = check_lock.strip_workspace(raw)
    assert out == "# header\nclick==8.5.1 \\\n    --hash=sha256:aa\n    # via demo-db\n"


def test_an_installed_version_other_than_the_lock_is_caught(tmp_path):
    lock = LOCK.replace("pytest==9.2.0", "pytest==0.0.1")
    root = _tree(tmp_path, PYPROJECT, lock)
    problems = check_lock.problems_of("requirements/dev.txt", installed=True, root=root)
    assert any(p.startswith("requirements/dev.txt: pytest ") and "0.0.1" in p for p in problems)


@pytest.mark.parametrize("lock_name", sorted(check_lock.LOCKS))
def test_every_pin_is_exact_and_hashed(lock_name):
    text = (ROOT / lock_name).read_text()
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 6)[-1].strip())
    for block in blocks:
        first = block.splitlines()[0]
        assert re.match(r"^[A-Za-z0-9._-]+==\S+ \\$", first), first
        assert "--hash=sha256:" in block, first


def test_torch_is_the_cpu_build():
    pins = check_lock.read_lock(ROOT / "requirements/dev.txt").pins
    assert str(pins["torch"]).endswith("+cpu")
    assert not any(name.startswith("nvidia-") for name in pins)


def test_one_package_has_one_version_in_every_lock(tmp_path):
    root = _tree(tmp_path, PYPROJECT, LOCK)
    (root / "requirements/runtime.txt").write_text(LOCK.replace("numpy==2.4.6", "numpy==2.3.0"))
    (root / "requirements/station.txt").write_text(LOCK)
    problems = check_lock.disagreeing_pins(root)
    assert problems and all("numpy" in p and "2.3.0" in p for p in problems)
    assert check_lock.disagreeing_pins() == []


@pytest.mark.parametrize("lock_name", sorted(check_lock.LOCKS))
def test_every_lock_carries_the_build_backend_its_members_need(lock_name):
    """The Makefile installs the members with --no-build-isolation: the backend comes from the
    lock, at a version every member's [build-system] admits (a venv's bundled setuptools is
    too old for their license field), or `make demo` fails on a fresh machine."""
    from packaging.requirements import Requirement

    pins = check_lock.read_lock(ROOT / lock_name).pins
    assert "setuptools" in pins, lock_name
    members = [
        ROOT,
        *(
            ROOT / m
            for m in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["inspect"][
                "workspace"
            ]
        ),
    ]
    for member in members:
        build = tomllib.loads((member / "pyproject.toml").read_text())["build-system"]
        for req in map(Requirement, build["requires"]):
            assert req.specifier.contains(pins[req.name]), (member, req, pins[req.name])
