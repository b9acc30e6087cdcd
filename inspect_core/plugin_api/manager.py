"""Plugin discovery and the registry of what plugins registered.

Plugins come from one entry-point group, ``inspect.plugins``, by entry-point name (the shipped
ones: ``industrial``, ``aerial``, ``robotics``, ``records`` (the database, ``inspect_db``),
``station``, ``review`` (the review page) and ``batch`` (backtests on Dask)).
``INSPECT_PLUGINS`` selects: ``INSPECT_PLUGINS=industrial,records`` loads only those;
``INSPECT_PLUGINS=-robotics`` loads all but robotics (the others are blocked in the pluggy
PluginManager and never imported; a name that is not installed is reported). Every hook
is called through pluggy, one plugin at a time (:func:`call_hook`), so that a plugin that fails
to import, or whose hook raises (``sys.exit`` included: exit codes are verdicts) or registers
something invalid, is recorded in ``Registry.failures`` with its name and the reason, and the
others keep working. Only KeyboardInterrupt goes through. ``INSPECT_TRACE_HOOKS=1`` prints each
plugin load and hook call, its plugin and its duration to stderr (:func:`trace_hooks`).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from importlib import import_module, metadata
from typing import TYPE_CHECKING, Any

import pluggy

from inspect_core.plugin_api import hookspecs
from inspect_core.plugin_api.hookspecs import (
    PROJECT,
    RuleFactory,
    SinkFactory,
    SourceFactory,
    VersionSourceFactory,
)

if TYPE_CHECKING:
    import click

    from inspect_core.runtime.recipe import Domain

ENTRY_POINT_GROUP = "inspect.plugins"
ENV_SELECT = "INSPECT_PLUGINS"
ENV_TRACE = "INSPECT_TRACE_HOOKS"
CORE = "core"  # the core's own rules, registered through the same hooks; never blocked
BUILTIN = "inspect_core.plugin_api.builtin"
LEFT_OUT = " (recipe left out)"  # ends the failure of a recipe left out of its domain


@dataclass
class PluginFailure:
    """What went wrong with a plugin. ``domain`` and ``recipe`` name a recipe that was left out
    (a missing model, a damaged card), so that asking for it can say why it is not there."""

    plugin: str
    reason: str
    domain: str = ""
    recipe: str = ""


@dataclass
class PluginInfo:
    name: str
    version: str
    module: str


@dataclass
class Registry:
    plugins: dict[str, PluginInfo] = field(default_factory=dict)
    domains: dict[str, Domain] = field(default_factory=dict)
    domain_plugin: dict[str, str] = field(default_factory=dict)  # domain -> plugin name
    rules: dict[str, RuleFactory] = field(default_factory=dict)
    sources: dict[str, SourceFactory] = field(default_factory=dict)
    sinks: dict[str, SinkFactory] = field(default_factory=dict)
    version_sources: dict[str, VersionSourceFactory] = field(default_factory=dict)
    owners: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, name) -> plugin
    failures: list[PluginFailure] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # imported, register_* hooks not called
    pm: pluggy.PluginManager = field(default_factory=lambda: _make_pm())

    def fail(self, plugin: str, reason: str, domain: str = "", recipe: str = "") -> None:
        self.failures.append(PluginFailure(plugin, reason, domain, recipe))

    def left_out(self, domain: str, recipe: str) -> PluginFailure | None:
        """Why recipe ``recipe`` of ``domain`` was left out when its plugin loaded, if it was."""
        found = [f for f in self.failures if (f.domain, f.recipe) == (domain, recipe)]
        return found[0] if found else None

    def registered_by(self, plugin: str, kind: str) -> list[str]:
        """Names of the ``kind`` ("rules", "sources", "sinks", "version_sources", and
        "commands" once the CLI loaded them) that ``plugin`` registered."""
        return sorted(n for (k, n), p in self.owners.items() if k == kind and p == plugin)


@dataclass
class Candidate:
    """A plugin that may be loaded: its name, how to import it, its distribution's version."""

    name: str
    load: Callable[[], Any]
    version: str


def _selection() -> tuple[set[str] | None, set[str]]:
    """(only these, or None for all; blocked) from ``INSPECT_PLUGINS``."""
    raw = os.environ.get(ENV_SELECT, "").strip()
    names = [n.strip() for n in raw.split(",") if n.strip()]
    only = {n for n in names if not n.startswith("-")}
    blocked = {n[1:] for n in names if n.startswith("-")}
    return (only or None), blocked


def _make_pm() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    if os.environ.get(ENV_TRACE, "").strip() not in ("", "0"):
        trace_hooks(pm)
    return pm


def trace_hooks(
    pm: pluggy.PluginManager, write: Callable[[str], object] | None = None
) -> Callable[[], None]:
    """Write a line per hook call to ``write`` (stderr): the hook, the plugin(s) whose
    implementations ran, the duration and the outcome, e.g.
    ``inspect: register_domains plugin=industrial 12.3 ms ok [hook]``. Plugin imports are
    traced by :func:`load_plugins` through the same writer (``[load]``). Returns an undo
    function (it stops the hook lines)."""
    pm.trace.root.setwriter(write or (lambda s: sys.stderr.write("inspect: " + s)))
    tracer = pm.trace.root.get("hook")
    started: list[float] = []

    def before(hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
        started.append(time.perf_counter())

    def after(
        outcome: pluggy.Result[Any],
        hook_name: str,
        impls: Sequence[pluggy.HookImpl],
        kwargs: Mapping[str, Any],
    ) -> None:
        ms = (time.perf_counter() - started.pop()) * 1000
        result = "ok" if outcome.exception is None else f"failed: {describe(outcome.exception)}"
        names = ",".join(i.plugin_name for i in impls) or "none"
        tracer(f"{hook_name} plugin={names} {ms:.1f} ms {result}")

    return pm.add_hookcall_monitoring(before, after)


def candidates(extra: list[tuple[str, Any]] | None = None) -> list[Candidate]:
    """The core, then every ``inspect.plugins`` entry point by name, then ``extra``."""
    found = [Candidate(CORE, partial(import_module, BUILTIN), _version("inspect-vision"))]
    for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        found.append(Candidate(ep.name, ep.load, ep.dist.version if ep.dist else "?"))
    for name, mod in extra or []:
        found.append(Candidate(name, partial(_given, mod), "local"))
    return found


def _block_unselected(reg: Registry, names: list[str]) -> None:
    """Block (``pm.set_blocked``) what ``INSPECT_PLUGINS`` leaves out; report names it gives
    that no plugin has."""
    only, blocked = _selection()
    for name in names:
        if name != CORE and ((only is not None and name not in only) or name in blocked):
            reg.pm.set_blocked(name)
    for name in sorted(((only or set()) | blocked) - set(names)):
        reg.fail(
            name,
            f"{ENV_SELECT} names {name!r}, but no plugin of that name is installed; "
            f"installed: {', '.join(n for n in names if n != CORE)}",
        )


def load_plugins(extra: list[tuple[str, Any]] | None = None) -> Registry:
    """Load every selected plugin, call its register hooks, validate what it registers.
    ``extra`` adds (name, module) pairs without an entry point (tests use it)."""
    return register_pending(import_plugins(extra))


def import_plugins(extra: list[tuple[str, Any]] | None = None) -> Registry:
    """Import every selected plugin into the PluginManager; its register hooks wait in
    ``Registry.pending`` (:func:`register_pending`): commands need no recipe read."""
    reg = Registry()
    found = candidates(extra)
    _block_unselected(reg, [c.name for c in found])
    reg.pending = [c.name for c in found if _import(reg, c)]
    return reg


def register_pending(reg: Registry) -> Registry:
    """Call the register hooks of the plugins :func:`import_plugins` left pending."""
    pending, reg.pending = reg.pending, []
    for name in pending:
        for hook, register in _registrars(reg, name).items():
            call_hook(reg, name, hook, register=register)
    return reg


def _import(reg: Registry, c: Candidate) -> bool:
    """Import plugin ``c`` unless ``INSPECT_PLUGINS`` blocks it; True when it is registered."""
    if reg.pm.is_blocked(c.name):
        reg.pm.trace.root.get("load")(f"{c.name} blocked by {ENV_SELECT}")
        return False
    module = _register(reg, c)
    if module is not None:
        reg.plugins[c.name] = PluginInfo(
            c.name, c.version, getattr(module, "__name__", str(module))
        )
    return module is not None


def _register(reg: Registry, c: Candidate) -> Any | None:
    """Import one plugin and register it with the PluginManager; None (and a failure) when
    that fails. A hook implementation that matches no hookspec (a typo) is a failure too."""
    start = time.perf_counter()
    try:
        module = c.load()
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # a broken plugin (even one calling sys.exit) must not
        reg.fail(c.name, f"failed to import: {describe(e)}")  # take the others down
        return None
    try:
        reg.pm.register(module, name=c.name)
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # pluggy refused it: a hook with unknown arguments, or the
        why = describe(e)  # same module or the same name twice
        if "already registered" in why:
            why += (
                f"; another installed plugin has the entry-point name {c.name!r}: rename one "
                '(its [project.entry-points."inspect.plugins"] key) and install it again'
            )
        reg.fail(c.name, f"failed to register: {why}")
        return None
    ms = (time.perf_counter() - start) * 1000
    reg.pm.trace.root.get("load")(f"{c.name} ({getattr(module, '__name__', module)}) {ms:.1f} ms")
    for caller in reg.pm.get_hookcallers(module) or []:
        if not caller.has_spec() and any(
            i.plugin is module and not i.optionalhook for i in caller.get_hookimpls()
        ):
            known = ", ".join(sorted(n for n, h in vars(reg.pm.hook).items() if h.has_spec()))
            reg.fail(
                c.name,
                f"{caller.name} is not an inspect hook (a typo?); it is never "
                f"called. The hooks are: {known}",
            )
    return module


def call_hook(reg: Registry, plugin: str, hook: str, **kwargs: Any) -> bool:
    """Call ``plugin``'s implementation of ``hook`` through pluggy, and only its own (a
    ``subset_hook_caller`` without every other plugin). Whatever it raises but
    KeyboardInterrupt is recorded as a failure of ``plugin``; False then."""
    pm = reg.pm
    module = pm.get_plugin(plugin)
    caller = getattr(pm.hook, hook)
    if module is None or not any(i.plugin is module for i in caller.get_hookimpls()):
        return True
    only_this = pm.subset_hook_caller(hook, remove_plugins=pm.get_plugins() - {module})
    try:
        only_this(**kwargs)
    except KeyboardInterrupt:
        raise
    except BaseException as e:
        reg.fail(plugin, f"{hook} failed: {describe(e)}")
        return False
    return True


def _given(module: Any) -> Any:
    return module


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "0+local"


def _registrars(reg: Registry, name: str) -> dict[str, Callable[..., None]]:
    """The ``register`` callable each register hook of plugin ``name`` receives."""

    def registrar(kind: str, table: dict[str, Any]) -> Callable[[object, object], None]:
        def register(key: object, factory: object) -> None:
            if not isinstance(key, str) or not key or not callable(factory):
                raise TypeError(f"register_{kind} needs a name and a callable, got {key!r}")
            if key in table:
                reg.fail(
                    name,
                    f"{kind[:-1]} {key!r} is already registered by "
                    f"{reg.owners.get((kind, key), '?')}; ignored",
                )
                return
            table[key] = factory
            reg.owners[(kind, key)] = name

        return register

    return {
        "register_domains": lambda domain: _add_domain(reg, name, domain),
        "register_rules": registrar("rules", reg.rules),
        "register_sources": registrar("sources", reg.sources),
        "register_sinks": registrar("sinks", reg.sinks),
        "register_version_sources": registrar("version_sources", reg.version_sources),
    }


def _add_domain(reg: Registry, name: str, domain: Any) -> None:
    """``register`` of register_domains: a broken recipe (missing model, bad sample, a missing or
    damaged model card) is reported and left out, the domain's other recipes keep working; a
    domain with no usable recipe is refused (raises), a duplicate name reported and ignored.
    A plugin's recipes need their model cards (``card_required``): a plugin ships each model
    with its card, so a missing one means the model folder was tampered with or damaged."""
    # lazy: recipes load pydantic, NumPy and OpenCV; `inspect --help` loads plugins without them
    from inspect_core.runtime.recipe import Domain, Recipe

    if not isinstance(domain, Domain):
        raise TypeError(f"register_domains expects a Domain, got {type(domain).__name__}")
    recipes = [
        replace(r, card_required=True) if isinstance(r, Recipe) else r for r in domain.recipes
    ]
    domain = replace(domain, recipes=recipes)
    found = {id(r): r.problems() for r in recipes if isinstance(r, Recipe)}
    broken = {key: problems for key, problems in found.items() if problems}
    if broken and len(broken) < len(recipes):
        for r in recipes:
            if id(r) in broken:
                reason = f"domain {domain.name!r}: " + "; ".join(broken[id(r)])
                reg.fail(name, reason + LEFT_OUT, domain.name, r.name)
        domain = replace(domain, recipes=[r for r in recipes if id(r) not in broken])
    problems = domain.problems()
    if problems:
        raise ValueError(f"domain {domain.name!r}: " + "; ".join(problems))
    if domain.name in reg.domains:
        reg.fail(
            name,
            f"domain {domain.name!r} is already registered by "
            f"{reg.domain_plugin[domain.name]}; ignored",
        )
        return
    reg.domains[domain.name] = domain
    reg.domain_plugin[domain.name] = name


_REGISTRY: Registry | None = None


def get_registry(refresh: bool = False) -> Registry:
    """Every selected plugin, loaded once, with everything it registered."""
    reg = _imported(refresh)
    return register_pending(reg) if reg.pending else reg


def _imported(refresh: bool = False) -> Registry:
    """The registry with its plugins imported (their register hooks may be pending)."""
    global _REGISTRY
    if _REGISTRY is None or refresh:
        _REGISTRY = import_plugins()
    return _REGISTRY


def load_cli_plugins(cli: click.Group) -> None:
    """Let every plugin add its commands (``register_commands``), one plugin at a time. A
    command whose name another already has is put back and reported as the plugin's failure,
    as for every other register hook (``click.Group.add_command`` would replace it silently).
    Only the plugins' imports are needed: their domains and recipes are not read here."""
    reg = _imported()
    for name in list(reg.plugins):
        before = dict(cli.commands)
        call_hook(reg, name, "register_commands", cli=cli)
        taken = [
            c
            for c, old in before.items()
            if cli.commands.get(c) is not old and reg.owners.get(("commands", c)) != name
        ]  # a command the plugin added on an earlier call (inspect demo calls again) is its own
        if taken:  # none of this plugin's commands: half a plugin's commands would confuse more
            cli.commands.clear()
            cli.commands.update(before)
            reg.fail(
                name,
                f"command(s) {', '.join(map(repr, taken))} already belong to inspect or another "
                "plugin; none of this plugin's commands is added: give them other names",
            )
            continue
        for c in set(cli.commands) - set(before):
            reg.owners[("commands", c)] = name


def describe(e: BaseException) -> str:
    """Why a plugin failed, in words: ``RuntimeError: boom``, or for ``sys.exit(3)`` "it exited
    (SystemExit 3)": exit codes mean verdicts here, so a plugin's exit is a plugin failure."""
    if isinstance(e, SystemExit):
        return f"it exited (SystemExit {e.code!r}); a plugin must raise an exception instead"
    return f"{type(e).__name__}: {e}"
