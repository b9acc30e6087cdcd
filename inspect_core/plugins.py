"""Plugin discovery and the registry of what plugins registered.

Plugins come from one entry-point group, ``inspect.plugins``. ``INSPECT_PLUGINS`` selects:
``INSPECT_PLUGINS=industrial,db`` loads only those; ``INSPECT_PLUGINS=-robotics`` loads all but
robotics. A plugin that fails to import, or whose hook raises or registers something invalid, is
recorded in ``Registry.failures`` with its name and the reason; the others keep working.
"""
from __future__ import annotations

import os
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable

import pluggy

from . import hookspecs
from .hookspecs import PROJECT

ENTRY_POINT_GROUP = "inspect.plugins"
ENV_SELECT = "INSPECT_PLUGINS"
BUILTIN = "inspect_core.builtin"  # the core's own rules, registered through the same hooks


@dataclass
class PluginFailure:
    plugin: str
    reason: str


@dataclass
class PluginInfo:
    name: str
    version: str
    module: str


@dataclass
class Registry:
    plugins: dict[str, PluginInfo] = field(default_factory=dict)
    domains: dict[str, Any] = field(default_factory=dict)  # name -> Domain
    domain_plugin: dict[str, str] = field(default_factory=dict)  # domain -> plugin name
    rules: dict[str, Callable] = field(default_factory=dict)
    sources: dict[str, Callable] = field(default_factory=dict)
    sinks: dict[str, Callable] = field(default_factory=dict)
    owners: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, name) -> plugin
    failures: list[PluginFailure] = field(default_factory=list)
    pm: pluggy.PluginManager | None = None

    def fail(self, plugin: str, reason: str) -> None:
        self.failures.append(PluginFailure(plugin, reason))

    def registered_by(self, plugin: str, kind: str) -> list[str]:
        """Names of the ``kind`` ("rules", "sources", "sinks") that ``plugin`` registered."""
        return sorted(n for (k, n), p in self.owners.items() if k == kind and p == plugin)


def _selection() -> tuple[set[str] | None, set[str]]:
    raw = os.environ.get(ENV_SELECT, "").strip()
    if not raw:
        return None, set()
    names = [n.strip() for n in raw.split(",") if n.strip()]
    only = {n for n in names if not n.startswith("-")}
    blocked = {n[1:] for n in names if n.startswith("-")}
    return (only or None), blocked


def _make_pm() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def load_plugins(extra: list[tuple[str, Any]] | None = None) -> Registry:
    """Load every selected plugin, call its register hooks, validate what it registers.

    ``extra`` adds (name, module) pairs without an entry point (tests use it).
    """
    from importlib import import_module

    reg = Registry(pm=_make_pm())
    only, blocked = _selection()
    candidates: list[tuple[str, Callable[[], Any], str]] = [
        ("core", lambda: import_module(BUILTIN), _version("inspect-vision"))]
    for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = ep.dist.version if ep.dist else "?"
        candidates.append((ep.name, ep.load, dist))
    for name, mod in extra or []:
        candidates.append((name, (lambda m=mod: m), "local"))

    for name, load, version in candidates:
        if name != "core" and ((only is not None and name not in only) or name in blocked):
            continue
        try:
            module = load()
            reg.pm.register(module, name=name)
        except Exception as e:  # a broken plugin must not take the others down
            reg.fail(name, f"failed to import: {type(e).__name__}: {e}")
            continue
        reg.plugins[name] = PluginInfo(name, version, getattr(module, "__name__", str(module)))
        _collect(reg, name, module)
    return reg


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "0+local"


def _collect(reg: Registry, name: str, module: Any) -> None:
    """Call one plugin's register_* hooks, keeping what is valid and reporting the rest."""
    from dataclasses import replace

    from .recipes import Domain, Recipe

    def registrar(kind: str, table: dict):
        def register(key, factory):
            if not isinstance(key, str) or not key or not callable(factory):
                raise TypeError(f"register_{kind} needs a name and a callable, got {key!r}")
            if key in table:
                reg.fail(name, f"{kind[:-1]} {key!r} is already registered by "
                               f"{reg.owners.get((kind, key), '?')}; ignored")
                return
            table[key] = factory
            reg.owners[(kind, key)] = name
        return register

    def register_domain(domain):
        if not isinstance(domain, Domain):
            raise TypeError(f"register_domains expects a Domain, got {type(domain).__name__}")
        # A broken recipe (missing model, bad sample) is reported and left out; the domain's
        # other recipes keep working. A domain with no usable recipe is refused.
        broken = {id(r): r.problems() for r in domain.recipes if isinstance(r, Recipe) and r.problems()}
        if broken and len(broken) < len(domain.recipes):
            for problems in broken.values():
                reg.fail(name, f"domain {domain.name!r}: " + "; ".join(problems) + " (recipe left out)")
            domain = replace(domain, recipes=[r for r in domain.recipes if id(r) not in broken])
        problems = domain.problems()
        if problems:
            raise ValueError(f"domain {domain.name!r}: " + "; ".join(problems))
        if domain.name in reg.domains:
            reg.fail(name, f"domain {domain.name!r} is already registered by "
                           f"{reg.domain_plugin[domain.name]}; ignored")
            return
        reg.domains[domain.name] = domain
        reg.domain_plugin[domain.name] = name

    hooks = {
        "register_domains": register_domain,
        "register_rules": registrar("rules", reg.rules),
        "register_sources": registrar("sources", reg.sources),
        "register_sinks": registrar("sinks", reg.sinks),
    }
    for hook, register in hooks.items():
        for impl in _impls(reg, hook, name):
            try:
                impl(register=register)
            except Exception as e:
                reg.fail(name, f"{hook} failed: {type(e).__name__}: {e}")


def _impls(reg: Registry, hook: str, plugin: str) -> list[Callable]:
    """The functions one plugin marked with @hookimpl for ``hook``."""
    caller = getattr(reg.pm.hook, hook)
    return [i.function for i in caller.get_hookimpls() if i.plugin_name == plugin]


_REGISTRY: Registry | None = None


def get_registry(refresh: bool = False) -> Registry:
    global _REGISTRY
    if _REGISTRY is None or refresh:
        _REGISTRY = load_plugins()
    return _REGISTRY


def load_cli_plugins(cli) -> None:
    """Let every plugin add its commands (``register_commands``)."""
    reg = get_registry()
    for name in list(reg.plugins):
        for impl in _impls(reg, "register_commands", name):
            try:
                impl(cli=cli)
            except Exception as e:
                reg.fail(name, f"register_commands failed: {type(e).__name__}: {e}")


def format_traceback(e: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(e), e)).strip()
