"""The hooks are documented where a plugin author looks, and the documentation is true: the
documentation site's hook reference (``reference/hooks.md``, made by ``docs/gen/docgen.py`` as the
site builds) and ``inspect_core/plugin_api/hookspecs.py`` name the same hooks with the same
arguments (as datasette's tests/test_docs.py checks its plugin hooks), every argument and return
value is described and typed, the docstring examples run, and the public plugin API imports
lazily."""

from __future__ import annotations

import importlib
import inspect as pyinspect
import re
import subprocess
import sys
import textwrap
import types
import typing
from pathlib import Path

import pluggy
import pytest

import inspect_core
from inspect_core.plugin_api import hookspecs
from inspect_core.plugin_api import manager as plugins

ROOT = Path(__file__).resolve().parents[2]
GEN = ROOT / "docs" / "gen"  # the site's generators, as mkdocs loads its hook from there
CALL = re.compile(r"`(\w+)\(([^)]*)\)`")  # `register_domains(register)` in a table's first cell


def hook_page() -> str:
    """The site's hook reference page, as ``make docs`` makes it."""
    if str(GEN) not in sys.path:
        sys.path.insert(0, str(GEN))
    return importlib.import_module("docgen").hooks_page()


def readme_hooks(readme: str) -> dict[str, str]:
    """hook name -> its signature as the hook page's "## Hooks" table writes it, from rows like
    ``| [`register_domains(register)`](#register_domains) | ... |`` (a cell may name several)."""
    if "\n## Hooks" not in readme:
        return {}
    section = readme.split("\n## Hooks", 1)[1].split("\n## ", 1)[0]
    found = {}
    for line in section.splitlines():
        cells = line.split("|")
        if line.startswith("|") and len(cells) > 2:
            for name, args in CALL.findall(cells[1]):
                found[name] = (
                    f"{name}({', '.join(a.strip() for a in args.split(',') if a.strip())})"
                )
    return found


def spec_functions() -> dict[str, typing.Callable]:
    """Every hookspec in the hookspecs module, as pluggy itself finds them."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    return {
        n: getattr(hookspecs, n)
        for n in dir(hookspecs)
        if pm.parse_hookspec_opts(hookspecs, n) is not None
    }


def spec_hooks() -> dict[str, str]:
    return {
        n: f"{n}({', '.join(pyinspect.signature(f).parameters)})"
        for n, f in spec_functions().items()
    }


def mismatches(readme: dict[str, str], specs: dict[str, str]) -> list[str]:
    out = [f"the hook page's table lacks {specs[n]}" for n in specs if n not in readme]
    out += [
        f"the hook page names {readme[n]}, which hookspecs.py does not declare"
        for n in readme
        if n not in specs
    ]
    out += [
        f"the hook page writes {readme[n]}, hookspecs.py declares {specs[n]}"
        for n in readme
        if n in specs and readme[n] != specs[n]
    ]
    return out


def test_hook_page_and_hookspecs_name_the_same_hooks_and_arguments():
    specs = spec_hooks()
    assert set(specs) == {
        "register_domains",
        "register_rules",
        "register_sources",
        "register_sinks",
        "register_version_sources",
        "register_commands",
        "register_report_formats",
    }
    assert mismatches(readme_hooks(hook_page()), specs) == []


def test_the_comparison_catches_a_missing_renamed_or_extra_hook():
    readme = hook_page()
    specs = spec_hooks()
    drifted = readme.replace("`register_commands(cli)`", "`register_commands(group)`")
    assert mismatches(readme_hooks(drifted), specs) == [
        "the hook page writes register_commands(group), hookspecs.py declares "
        "register_commands(cli)"
    ]
    assert "the hook page's table lacks register_rules(register)" in mismatches(
        {k: v for k, v in readme_hooks(readme).items() if k != "register_rules"}, specs
    )
    assert mismatches({**specs, "register_models": "register_models(register)"}, specs) == [
        "the hook page names register_models(register), which hookspecs.py does not declare"
    ]


@pytest.mark.parametrize("name", sorted(spec_functions()))
def test_every_hook_documents_and_types_its_arguments_and_return(name):
    fn = spec_functions()[name]
    doc = pyinspect.getdoc(fn) or ""
    for param in pyinspect.signature(fn).parameters:
        assert f":param {param}:" in doc, f"{name}: document {param} with ':param {param}:'"
    assert ":returns:" in doc, f"{name}: say what the hook may return (':returns:')"
    import click

    from inspect_core.plugin_api.interfaces import Sink, Source, SourceContext
    from inspect_core.rules.engine import RuleContext
    from inspect_core.runtime.recipe import Domain
    from inspect_core.types import RuleHit

    names = {
        **vars(hookspecs),
        "click": click,
        "Sink": Sink,
        "Source": Source,
        "SourceContext": SourceContext,
        "Domain": Domain,
        "RuleContext": RuleContext,
        "RuleHit": RuleHit,
    }
    hints = typing.get_type_hints(fn, globalns=names)
    for param in pyinspect.signature(fn).parameters:
        assert hints.get(param) not in (None, typing.Any), f"{name}: type {param}"
    for proto in (hookspecs.Rule, hookspecs.SourceFactory, hookspecs.SinkFactory):
        assert typing.get_type_hints(proto.__call__, globalns=names)["return"]


def example(doc: str) -> str:
    """The first ``::`` code block of a docstring."""
    block = []
    for line in doc.split("::\n", 1)[1].splitlines():
        if line.strip() and not line.startswith(" "):
            break
        block.append(line)
    return textwrap.dedent("\n".join(block))


def test_the_hookspecs_docstring_example_runs_as_a_plugin(monkeypatch):
    monkeypatch.delenv("INSPECT_PLUGINS", raising=False)
    mod = types.ModuleType("wood_example")
    exec(compile(example(hookspecs.__doc__), "hookspecs.__doc__", "exec"), vars(mod))
    got = []
    mod.register_domains(register=got.append)
    (domain,) = got
    assert isinstance(domain, inspect_core.Domain) and domain.name == "wood"
    assert [r.name for r in domain.recipes] == ["knots"]
    # through the loader: it registers, and is refused only because knots.onnx is not trained
    reg = plugins.load_plugins(extra=[("wood", mod)])
    (failure,) = [f for f in reg.failures if f.plugin == "wood"]
    assert "register_domains" in failure.reason and "knots.onnx" in failure.reason


def test_the_package_docstring_example_runs():
    namespace: dict = {}
    exec(example(inspect_core.__doc__), namespace)
    assert namespace["hookimpl"] is hookspecs.hookimpl


def test_public_api_is_exported_lazily():
    """``import inspect_core.types`` imports neither torch, OpenCV, pluggy nor the recipes;
    ``from inspect_core import *`` gives every name of ``__all__`` and still no torch."""
    code = textwrap.dedent("""
        import sys
        import inspect_core.types
        heavy = {"torch", "cv2", "pluggy", "numpy", "inspect_core.runtime.recipe"}
        heavy &= set(sys.modules)
        assert not heavy, heavy
        from inspect_core import *
        import inspect_core
        star = dir()
        missing = [n for n in inspect_core.__all__ if n not in star]
        assert not missing, missing
        assert "torch" not in sys.modules
        print("ok")
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert res.stdout.strip() == "ok", res.stderr
    assert {"hookimpl", "Domain", "Recipe", "RuleFactory", "SourceItem"} <= set(
        inspect_core.__all__
    )
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        inspect_core.Nope  # noqa: B018
    from inspect_core import cli  # submodules still import as before

    assert cli.__name__ == "inspect_core.cli"
