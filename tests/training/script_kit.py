"""The scripts under training/ as modules, for tests of their functions."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_script(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """training/``name``.py as a module (its folder on the path, as when it runs)."""
    spec = importlib.util.spec_from_file_location(f"{name}_script", ROOT / f"training/{name}.py")
    script = importlib.util.module_from_spec(spec)
    monkeypatch.syspath_prepend(str(ROOT / "training"))
    spec.loader.exec_module(script)
    return script
