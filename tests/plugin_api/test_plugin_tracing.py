"""Plugins load through pluggy's own machinery: hooks are called through the PluginManager one
plugin at a time (so ``INSPECT_TRACE_HOOKS=1`` sees every call, its plugin and its duration),
``INSPECT_PLUGINS`` exclusions are ``pm.set_blocked`` names, and what pluggy refuses (a typo in a
hook name, an argument the hook does not have) is reported by plugin name."""

from __future__ import annotations

import re
import types
from importlib import metadata

import pytest

from inspect_core.plugin_api import manager as plugins
from inspect_core.plugin_api.hookspecs import hookimpl
from inspect_core.runtime.recipe import Domain, Recipe


def module(name: str, **hooks) -> types.ModuleType:
    mod = types.ModuleType(name)
    for hook, fn in hooks.items():
        setattr(mod, hook, hookimpl(fn))
    return mod


def domain_plugin(name: str, model) -> types.ModuleType:
    return module(
        name, register_domains=lambda register: register(Domain(name, [Recipe("r", model)]))
    )


class Weird(BaseException):
    """Neither an Exception nor SystemExit: still one plugin's failure."""


def boom(register):
    raise RuntimeError("boom")


def exits(register):
    raise SystemExit(3)


def weird(register):
    raise Weird("odd")


@pytest.fixture
def ghost_entry_point(monkeypatch):
    """An installed plugin whose import fails: reported when loaded, silent when blocked."""
    real = metadata.entry_points

    def entry_points(group=None):
        eps = list(real(group=group)) if group else []
        return eps + [metadata.EntryPoint("ghost", "no_such_module_xyz", plugins.ENTRY_POINT_GROUP)]

    monkeypatch.setattr(plugins.metadata, "entry_points", entry_points)


def test_trace_switch_prints_each_hook_call_its_plugin_and_duration(
    tiny_model, monkeypatch, capsys
):
    monkeypatch.setenv("INSPECT_TRACE_HOOKS", "1")
    monkeypatch.setenv("INSPECT_PLUGINS", "a,b")
    reg = plugins.load_plugins(
        extra=[("a", domain_plugin("a", tiny_model)), ("b", module("b", register_rules=boom))]
    )
    lines = capsys.readouterr().err.splitlines()
    hook_lines = [ln for ln in lines if ln.endswith("[hook]")]
    assert any(
        re.fullmatch(r"inspect: register_domains plugin=a [\d.]+ ms ok \[hook\]", ln)
        for ln in hook_lines
    ), lines
    assert any(
        re.fullmatch(
            r"inspect: register_rules plugin=b [\d.]+ ms failed: "
            r"RuntimeError: boom \[hook\]",
            ln,
        )
        for ln in hook_lines
    ), lines
    assert any("register_rules plugin=core " in ln for ln in hook_lines)
    # one plugin per call: a plugin's failure cannot stop another plugin's implementation
    assert all(re.search(r"plugin=\w+ ", ln) for ln in hook_lines)
    assert any(re.fullmatch(r"inspect: a \(a\) [\d.]+ ms \[load\]", ln) for ln in lines), lines
    assert "a" in reg.domains and any(f.plugin == "b" and "boom" in f.reason for f in reg.failures)


def test_no_trace_without_the_switch(tiny_model, monkeypatch, capsys):
    monkeypatch.delenv("INSPECT_TRACE_HOOKS", raising=False)
    plugins.load_plugins(extra=[("a", domain_plugin("a", tiny_model))])
    assert "[hook]" not in capsys.readouterr().err


@pytest.mark.parametrize("hook", [boom, exits, weird])
def test_a_failing_hook_is_isolated_and_reported_by_name(tiny_model, monkeypatch, hook):
    """A plugin whose register_domains raises (an error, sys.exit, any BaseException but
    KeyboardInterrupt) sits between two working ones: both of those register."""
    monkeypatch.delenv("INSPECT_PLUGINS", raising=False)
    reg = plugins.load_plugins(
        extra=[
            ("first", domain_plugin("first", tiny_model)),
            ("broken", module("broken", register_domains=hook)),
            ("last", domain_plugin("last", tiny_model)),
        ]
    )
    assert {"first", "last"} <= set(reg.domains)
    (failure,) = [f for f in reg.failures if f.plugin == "broken"]
    assert failure.reason.startswith("register_domains failed: ")
    assert {"boom": "RuntimeError: boom", "exits": "exited (SystemExit 3)", "weird": "Weird: odd"}[
        hook.__name__
    ] in failure.reason


def test_excluded_plugins_are_blocked_in_pluggy_and_never_imported(
    ghost_entry_point, tiny_model, monkeypatch
):
    monkeypatch.setenv("INSPECT_PLUGINS", "-ghost,-b")
    reg = plugins.load_plugins(
        extra=[("a", domain_plugin("a", tiny_model)), ("b", domain_plugin("b", tiny_model))]
    )
    assert reg.pm.is_blocked("ghost") and reg.pm.is_blocked("b")
    assert not [f for f in reg.failures if f.plugin == "ghost"]  # not imported: no failure
    assert "a" in reg.plugins and "b" not in reg.plugins and "b" not in reg.domains

    monkeypatch.setenv("INSPECT_PLUGINS", "a")
    reg = plugins.load_plugins(
        extra=[("a", domain_plugin("a", tiny_model)), ("b", domain_plugin("b", tiny_model))]
    )
    assert set(reg.plugins) == {"core", "a"}
    assert reg.pm.is_blocked("ghost") and reg.pm.is_blocked("b") and reg.pm.is_blocked("industrial")
    assert not reg.pm.is_blocked("core") and not reg.failures


def test_a_selected_name_that_is_not_installed_is_reported(monkeypatch):
    monkeypatch.setenv("INSPECT_PLUGINS", "industrail,-robotcs")
    reg = plugins.load_plugins()
    reasons = {f.plugin: f.reason for f in reg.failures}
    assert set(reasons) == {"industrail", "robotcs"}
    assert "no plugin of that name is installed" in reasons["industrail"]
    assert "industrial" in reasons["industrail"]  # the installed names, to spot the typo


def test_what_pluggy_refuses_is_reported_by_plugin_name(tiny_model, monkeypatch):
    monkeypatch.delenv("INSPECT_PLUGINS", raising=False)
    typo = module("typo", register_domain=lambda register: None)
    extra_arg = module("extra_arg", register_rules=lambda register, config: None)
    same = domain_plugin("same", tiny_model)
    reg = plugins.load_plugins(
        extra=[("typo", typo), ("extra_arg", extra_arg), ("same", same), ("same_again", same)]
    )
    reasons = {f.plugin: f.reason for f in reg.failures}
    assert "register_domain is not an inspect hook" in reasons["typo"]
    assert "register_domains" in reasons["typo"]  # the hooks there are
    assert (
        reasons["extra_arg"].startswith("failed to register: ") and "config" in reasons["extra_arg"]
    )
    assert "extra_arg" not in reg.plugins
    assert reasons["same_again"].startswith("failed to register: ") and "same" in reg.domains


def test_keyboard_interrupt_goes_through_the_pluggy_call(monkeypatch):
    monkeypatch.setenv("INSPECT_TRACE_HOOKS", "1")

    def interrupt(register):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        plugins.load_plugins(extra=[("ctrl_c", module("ctrl_c", register_rules=interrupt))])
