"""The documentation site's generators (``docs/gen/``), as the mkdocs hook imports them."""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GEN = ROOT / "docs" / "gen"


def generators() -> tuple[types.ModuleType, types.ModuleType]:
    """``docgen`` and ``docgen_models`` from docs/gen (on sys.path, as mkdocs puts it there
    while it loads its hook)."""
    if str(GEN) not in sys.path:
        sys.path.insert(0, str(GEN))
    return importlib.import_module("docgen"), importlib.import_module("docgen_models")


def nav_pages() -> list[str]:
    """Every page mkdocs.yml's navigation names (``line-engineer/stations.md``, ...)."""
    import yaml

    def walk(node: object) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, list):
            return [p for item in node for p in walk(item)]
        if isinstance(node, dict):
            return [p for value in node.values() for p in walk(value)]
        return []

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    return walk(config["nav"])
