"""A plugin that calls sys.exit() at import or in a hook is reported by name like any failing
plugin; it cannot make every `inspect` command exit 3 (= REVIEW) without a word (issue 10)."""

from __future__ import annotations

import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

from inspect_core.plugin_api import manager as plugins

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = (
    ROOT / "plugins" / "inspect_plugins" / "industrial" / "samples" / "steel_pass_000955_crop3.png"
)

MODULES = {
    "exit_at_import_plug": "import sys\nsys.exit(3)\n",
    "exit_in_hook_plug": """
        from inspect_core.plugin_api.hookspecs import hookimpl

        @hookimpl
        def register_domains(register):
            raise SystemExit(3)

        @hookimpl
        def register_commands(cli):
            raise SystemExit(3)
    """,
}


@pytest.fixture
def exiting_plugins(tmp_path, monkeypatch):
    """Two installed plugins (entry points): one exits at import, one in its hooks."""
    for name, code in MODULES.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(code))
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    real = metadata.entry_points

    def entry_points(group=None):
        eps = list(real(group=group)) if group else []
        return eps + [
            metadata.EntryPoint(n.split("_plug")[0], n, plugins.ENTRY_POINT_GROUP) for n in MODULES
        ]

    monkeypatch.setattr(plugins.metadata, "entry_points", entry_points)
    monkeypatch.setattr(plugins, "_REGISTRY", None)
    monkeypatch.setenv("INSPECT_PLUGINS", "industrial,exit_at_import,exit_in_hook")


def main_exit(monkeypatch, capsys, *args):
    from inspect_core import cli as cli_mod

    monkeypatch.setattr(sys, "argv", ["inspect", *map(str, args)])
    with pytest.raises(SystemExit) as e:
        cli_mod.main()
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_exits_are_reported_by_name_and_the_others_load(exiting_plugins):
    reg = plugins.load_plugins()
    reasons = {f.plugin: f.reason for f in reg.failures}
    assert "exited" in reasons["exit_at_import"] and "3" in reasons["exit_at_import"]
    assert "import" in reasons["exit_at_import"]
    assert "register_domains" in reasons["exit_in_hook"] and "exited" in reasons["exit_in_hook"]
    assert "industrial" in reg.domains


def test_inspect_plugins_reports_them_with_exit_1(exiting_plugins, monkeypatch, capsys):
    code, out, err = main_exit(monkeypatch, capsys, "plugins")
    assert code == 1
    assert "plugin exit_at_import" in err and "plugin exit_in_hook" in err
    assert "register_commands" in err and "steel" in out


def test_predict_with_another_plugin_still_works(exiting_plugins, monkeypatch, capsys):
    code, out, _ = main_exit(
        monkeypatch,
        capsys,
        "predict",
        "--plugin",
        "industrial",
        "--recipe",
        "steel",
        SAMPLE,
        "--json",
        "--no-overlay",
    )
    assert code == 0 and '"verdict": "PASS"' in out


def test_keyboard_interrupt_is_not_swallowed(monkeypatch):
    import types

    from inspect_core.plugin_api.hookspecs import hookimpl

    mod = types.ModuleType("interrupting")

    @hookimpl
    def register_rules(register):
        raise KeyboardInterrupt

    mod.register_rules = register_rules
    with pytest.raises(KeyboardInterrupt):
        plugins.load_plugins(extra=[("interrupting", mod)])
