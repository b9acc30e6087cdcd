"""What plugins plug into: the hook specifications, the plugin manager, the source and sink
protocols, and the test kit and scaffold for plugin authors.

Plugins themselves import from the package top (``from inspect_core import hookimpl, Domain``);
this subpackage is where those names live.
"""

from .hookspecs import hookimpl, hookspec
from .interfaces import BaseSource, FileFacts, Sink, Source, SourceItem
from .manager import Registry, get_registry, load_cli_plugins, load_plugins
from .resolve import find_recipe, resolve_model

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
