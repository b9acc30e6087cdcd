"""The plugin system: hooks exercised, discovery, selection, isolation (the hook documentation:
test_hook_docs.py; tracing and pluggy's blocking: test_plugin_tracing.py)."""

import json
import types
from importlib import metadata

import numpy as np

from inspect_core.plugin_api import hookspecs
from inspect_core.plugin_api import manager as plugins
from inspect_core.plugin_api.hookspecs import hookimpl
from inspect_core.runtime.recipe import Domain, Recipe, SampleImage

HOOKS = [n for n, f in vars(hookspecs).items() if n.startswith("register_") and callable(f)]


def make_plugin(model, calls, sample=None):
    """A plugin module implementing every hook, recording each call."""
    mod = types.ModuleType("fake_plugin")

    @hookimpl
    def register_domains(register):
        calls.append("register_domains")
        samples = [SampleImage(sample, "FAIL")] if sample else []
        register(
            Domain(
                "fake",
                [Recipe("r1", model, rules=[{"type": "min_area", "min": 1}], samples=samples)],
            )
        )

    @hookimpl
    def register_rules(register):
        calls.append("register_rules")
        register("always_review", lambda **kw: lambda ctx: [])

    @hookimpl
    def register_sources(register):
        calls.append("register_sources")
        register("fake_source", lambda config, context=None: None)

    @hookimpl
    def register_sinks(register):
        calls.append("register_sinks")
        register("fake_sink", lambda config: None)

    @hookimpl
    def register_version_sources(register):
        calls.append("register_version_sources")
        register("fake_registry", lambda config: None)

    @hookimpl
    def register_commands(cli):
        calls.append("register_commands")

        @cli.command("fake-cmd")
        def fake_cmd():
            """A command from a plugin."""

    @hookimpl
    def register_report_formats(register):
        from inspect_db.reports.formats import ReportFormat

        calls.append("register_report_formats")
        register(ReportFormat("fake-format", "a format from a plugin", lambda report, out: None))

    for f in (
        register_domains,
        register_rules,
        register_sources,
        register_sinks,
        register_version_sources,
        register_commands,
        register_report_formats,
    ):
        setattr(mod, f.__name__, f)
    return mod


def test_every_hook_is_exercised(tiny_model, monkeypatch):
    import click

    calls = []
    reg = plugins.load_plugins(extra=[("fake", make_plugin(tiny_model, calls))])
    assert not [f for f in reg.failures if f.plugin == "fake"]
    assert "fake" in reg.domains and reg.domain_plugin["fake"] == "fake"
    assert "always_review" in reg.rules and "min_area" in reg.rules  # core rules, same hook
    assert "fake_source" in reg.sources and "fake_sink" in reg.sinks
    assert "fake_registry" in reg.version_sources
    monkeypatch.setattr(plugins, "_REGISTRY", reg)
    group = click.Group("root")
    plugins.load_cli_plugins(group)
    assert "fake-cmd" in group.commands
    from inspect_db.reports.formats import report_formats

    assert "fake-format" in report_formats(reg) and "html" in report_formats(reg)
    assert set(calls) == set(HOOKS)


def test_broken_plugins_are_reported_and_others_keep_working(tiny_model, monkeypatch, tmp_path):
    real = metadata.entry_points

    def fake_entry_points(group=None):
        eps = list(real(group=group)) if group else []
        return eps + [metadata.EntryPoint("ghost", "no_such_module_xyz", plugins.ENTRY_POINT_GROUP)]

    monkeypatch.setattr(plugins.metadata, "entry_points", fake_entry_points)
    bad = types.ModuleType("bad")

    @hookimpl
    def register_domains(register):
        register(Domain("bad", [Recipe("r", tmp_path / "missing.onnx")]))

    bad.register_domains = register_domains
    raising = types.ModuleType("raising")

    @hookimpl
    def register_rules(register):
        raise RuntimeError("boom")

    raising.register_rules = register_rules
    wrong = types.ModuleType("wrong")

    @hookimpl
    def register_sinks(register):
        register("", 42)

    wrong.register_sinks = register_sinks
    calls = []
    reg = plugins.load_plugins(
        extra=[
            ("bad", bad),
            ("raising", raising),
            ("wrong", wrong),
            ("fake", make_plugin(tiny_model, calls)),
        ]
    )
    reasons = {f.plugin: f.reason for f in reg.failures}
    assert "no_such_module_xyz" in reasons["ghost"] and "import" in reasons["ghost"]
    assert "missing.onnx" in reasons["bad"] and "not found" in reasons["bad"]
    assert "boom" in reasons["raising"]
    assert "register_sinks" in reasons["wrong"]
    assert "fake" in reg.domains and "bad" not in reg.domains


def test_duplicate_domain_is_refused(tiny_model):
    a, b = [], []
    reg = plugins.load_plugins(
        extra=[("one", make_plugin(tiny_model, a)), ("two", make_plugin(tiny_model, b))]
    )
    assert reg.domain_plugin["fake"] == "one"
    assert any(f.plugin == "two" and "already registered" in f.reason for f in reg.failures)


def test_environment_selects_and_blocks_plugins(tiny_model, monkeypatch):
    monkeypatch.setenv("INSPECT_PLUGINS", "-fake")
    reg = plugins.load_plugins(extra=[("fake", make_plugin(tiny_model, []))])
    assert "fake" not in reg.plugins and "core" in reg.plugins
    monkeypatch.setenv("INSPECT_PLUGINS", "fake")
    reg = plugins.load_plugins(extra=[("fake", make_plugin(tiny_model, []))])
    assert set(reg.plugins) == {"core", "fake"}


def test_test_kit_runs_samples(tiny_model, tmp_path):
    import cv2

    from inspect_core.plugin_api.testing import run_samples

    img = np.random.default_rng(0).integers(0, 255, (48, 64), np.uint8)
    path = tmp_path / "s.png"
    cv2.imwrite(str(path), img)
    reg = plugins.load_plugins(extra=[("fake", make_plugin(tiny_model, [], sample=path))])
    (res,) = run_samples("fake", registry=reg)
    assert res.got in ("PASS", "FAIL") and res.ok == (res.got == "FAIL")


def test_plugins_command_lists_shipped_recipes():
    """`inspect plugins --json`: three plugins, six recipes, each model's sha256 matches."""
    import hashlib
    from pathlib import Path

    from click.testing import CliRunner

    from inspect_core.cli import cli

    res = CliRunner().invoke(cli, ["plugins", "--json"])
    listing = json.loads(res.stdout)  # failures go to stderr; stdout is the JSON alone
    by_name = {p["plugin"]: p for p in listing}
    recipes = {}
    for name in ("industrial", "aerial", "robotics"):
        for d in by_name[name]["domains"]:
            for r in d["recipes"]:
                recipes[r["name"]] = r
    assert set(recipes) == {"steel", "tile", "tile-anomaly", "ballscrew", "landcover", "driving"}
    for r in recipes.values():
        data = Path(r["model"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == r["sha256"]
        assert r["classes"] and len(r["classes"]) >= 2


def test_plugins_listing_names_what_each_plugin_registered_and_its_failures(
    tiny_model, monkeypatch
):
    """Each plugin lists its own rules, sources and sinks (not everyone's), and --json carries
    the reasons a plugin failed, also for one that could not be imported."""
    from click.testing import CliRunner

    from inspect_core.cli import cli

    real = metadata.entry_points

    def fake_entry_points(group=None):
        eps = list(real(group=group)) if group else []
        return eps + [metadata.EntryPoint("ghost", "no_such_module_xyz", plugins.ENTRY_POINT_GROUP)]

    monkeypatch.setattr(plugins.metadata, "entry_points", fake_entry_points)
    monkeypatch.setenv("INSPECT_PLUGINS", "fake,ghost")
    reg = plugins.load_plugins(extra=[("fake", make_plugin(tiny_model, []))])
    monkeypatch.setattr(plugins, "_REGISTRY", reg)
    res = CliRunner().invoke(cli, ["plugins", "--json"])
    assert res.exit_code == 1
    by = {p["plugin"]: p for p in json.loads(res.stdout)}
    assert by["fake"]["rules"] == ["always_review"] and by["fake"]["sinks"] == ["fake_sink"]
    assert by["fake"]["sources"] == ["fake_source"] and by["fake"]["failures"] == []
    assert by["fake"]["version_sources"] == ["fake_registry"]
    assert "min_area" in by["core"]["rules"] and by["core"]["sinks"] == []
    assert "no_such_module_xyz" in by["ghost"]["failures"][0] and by["ghost"]["domains"] == []
    assert "plugin ghost" in res.stderr


def test_a_broken_recipe_is_left_out_and_its_siblings_kept(tiny_model, tmp_path):
    mod = types.ModuleType("half")

    @hookimpl
    def register_domains(register):
        register(
            Domain(
                "half",
                [Recipe("good", tiny_model), Recipe("bad", tmp_path / "not_trained_yet.onnx")],
            )
        )

    mod.register_domains = register_domains
    reg = plugins.load_plugins(extra=[("half", mod)])
    assert [r.name for r in reg.domains["half"].recipes] == ["good"]
    (failure,) = [f for f in reg.failures if f.plugin == "half"]
    assert "not_trained_yet.onnx" in failure.reason and "left out" in failure.reason


def test_a_plugin_command_under_a_taken_name_is_refused_and_the_first_kept(monkeypatch):
    """click's add_command would replace ``inspect train`` silently with a plugin's own."""
    import click

    mod = types.ModuleType("squatter")

    @hookimpl
    def register_commands(cli):
        @cli.command("train")
        def train():
            """Not the core's."""

        @cli.command("squat-extra")
        def extra():
            """A command of its own."""

    mod.register_commands = register_commands
    reg = plugins.load_plugins(extra=[("squatter", mod)])
    monkeypatch.setattr(plugins, "_REGISTRY", reg)
    group = click.Group("root")

    @group.command("train")
    def core_train():
        """The core's."""

    plugins.load_cli_plugins(group)
    assert group.commands["train"] is core_train and "squat-extra" not in group.commands
    (why,) = [f.reason for f in reg.failures if f.plugin == "squatter"]
    assert "command(s) 'train' already belong" in why


def test_loading_plugin_commands_twice_is_no_collision(tiny_model, monkeypatch):
    """inspect demo loads them again into the root group: a plugin meets its own commands."""
    import click

    reg = plugins.load_plugins(extra=[("fake", make_plugin(tiny_model, []))])
    monkeypatch.setattr(plugins, "_REGISTRY", reg)
    group = click.Group("root")
    plugins.load_cli_plugins(group)
    plugins.load_cli_plugins(group)
    assert "fake-cmd" in group.commands
    assert not [f for f in reg.failures if f.plugin == "fake"]
    assert reg.registered_by("fake", "commands") == ["fake-cmd"]  # inspect plugins lists it


def test_a_recipe_with_preprocess_steps_and_a_python_preprocess_is_refused(tiny_model):
    """Both given, one was silently dropped: the plugin's function won over the recipe's steps."""
    import pytest

    from inspect_core.runtime.recipe import RecipeError

    raw = {"name": "r", "model": str(tiny_model), "preprocess": [{"type": "resize", "width": 32}]}
    with pytest.raises(RecipeError, match="keep one"):
        Recipe.from_dict(raw, tiny_model.parent, preprocess=lambda img: img)
    assert Recipe.from_dict(raw, tiny_model.parent).preprocess is not None


def test_check_plugin_says_when_the_environment_left_the_plugin_out(monkeypatch):
    import pytest

    from inspect_core.plugin_api.testing import check_plugin

    monkeypatch.setenv("INSPECT_PLUGINS", "records")
    with pytest.raises(AssertionError, match="left out by INSPECT_PLUGINS='records'"):
        check_plugin("industrial")
