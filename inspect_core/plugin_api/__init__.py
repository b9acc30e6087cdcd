"""What plugins plug into: the hook specifications, the plugin manager, the source and sink
protocols, and the test kit and scaffold for plugin authors.

Plugins themselves import from the package top (``from inspect_core import hookimpl, Domain``);
this subpackage is where those names live. Each name here is imported on first use (PEP 562):
every plugin imports ``inspect_core.plugin_api.hookspecs``, which runs this file first, so it
must not load NumPy (``interfaces``) or the recipes (``resolve``) for ``inspect --help``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .hookspecs import hookimpl, hookspec
    from .interfaces import BaseSource, FileFacts, Sink, Source, SourceItem
    from .manager import Registry, get_registry, load_cli_plugins, load_plugins
    from .resolve import find_recipe, resolve_model

# public name -> the submodule that defines it
_EXPORTS: dict[str, str] = {
    "BaseSource": "interfaces",
    "FileFacts": "interfaces",
    "Registry": "manager",
    "Sink": "interfaces",
    "Source": "interfaces",
    "SourceItem": "interfaces",
    "find_recipe": "resolve",
    "get_registry": "manager",
    "hookimpl": "hookspecs",
    "hookspec": "hookspecs",
    "load_cli_plugins": "manager",
    "load_plugins": "manager",
    "resolve_model": "resolve",
}

__all__ = [
    "BaseSource",
    "FileFacts",
    "Registry",
    "Sink",
    "Source",
    "SourceItem",
    "find_recipe",
    "get_registry",
    "hookimpl",
    "hookspec",
    "load_cli_plugins",
    "load_plugins",
    "resolve_model",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
