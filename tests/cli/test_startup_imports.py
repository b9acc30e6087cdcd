"""Start-up (issue 27, item 7): `import inspect_core.cli` loads no heavy library, a core
command's --help loads no plugin, `inspect --help` no heavy core command module and no heavy
library (the plugins' modules included), and the plugins' recipes are read only when something
needs them. Modules are counted in a fresh interpreter (sys.modules), never timed:
bench/startup.py measures the seconds."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import types
import typing
from importlib import import_module
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from inspect_core.plugin_api import manager
from inspect_core.plugin_api.hookspecs import hookimpl

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("numpy", "cv2", "onnxruntime", "sqlalchemy", "pydantic", "starlette", "dask", "torch")
HEAVY_CORE = (
    "inspect_core.commands.evaluate",
    "inspect_core.commands.predict",
    "inspect_core.commands.train",
)
MARK = "MODULES:"


def _modules_after(code: str) -> tuple[set[str], str]:
    """The modules a fresh interpreter holds after ``code`` (which may exit), and its stdout."""
    wrapped = "\n".join(
        [
            "import json, sys",
            "try:",
            textwrap.indent(textwrap.dedent(code), "    "),
            "except SystemExit as e:",
            "    assert e.code in (0, None), e.code",
            f"print({MARK!r} + json.dumps(sorted(sys.modules)))",
        ]
    )
    res = subprocess.run(
        [sys.executable, "-c", wrapped], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr[-3000:]
    out, _, modules = res.stdout.rpartition(MARK)
    return set(json.loads(modules)), out


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.partition(".")[0] in HEAVY)


def _run_main(*args: str) -> str:
    argv = ["inspect", *args]
    return f"import sys\nsys.argv = {argv!r}\nfrom inspect_core.cli import main\nmain()"


def test_importing_the_cli_loads_no_heavy_library():
    modules, _ = _modules_after("import inspect_core.cli")
    assert not _heavy(modules), _heavy(modules)
    assert not [m for m in HEAVY_CORE if m in modules]


def test_a_core_commands_help_imports_no_plugin():
    """`inspect predict --help` needs predict and nothing of the plugins (nor SQLAlchemy)."""
    modules, out = _modules_after(_run_main("predict", "--help"))
    assert "Usage: inspect predict" in out
    top = {m.partition(".")[0] for m in modules}
    plugins = sorted(m for m in top if m.startswith("inspect_") and m != "inspect_core")
    assert plugins == [], plugins
    assert "sqlalchemy" not in modules and "inspect_core.commands.evaluate" not in modules


def test_the_command_list_names_every_command_without_importing_heavy_core_ones():
    modules, out = _modules_after(_run_main("--help"))
    listed = {line.split()[0] for line in out.split("Commands:")[1].splitlines() if line.strip()}
    assert {"evaluate", "predict", "train", "plugins", "health"} <= listed, out
    assert {"station", "demo", "report"} <= listed, out  # plugins' commands
    assert not [m for m in HEAVY_CORE if m in modules]


def test_the_command_list_loads_no_heavy_library():
    """`inspect --help` imports every plugin and its command modules, and none of them loads
    NumPy, OpenCV, ONNX Runtime, SQLAlchemy, pydantic, Starlette, Dask or torch: the domain
    plugins import the recipe module in register_domains, the commands their work when run."""
    modules, out = _modules_after(_run_main("--help"))
    listed = {line.split()[0] for line in out.split("Commands:")[1].splitlines() if line.strip()}
    assert {"backtest", "db", "model", "report", "review", "station"} <= listed, out
    plugins = {f"inspect_plugins.{d}" for d in ("industrial", "aerial", "robotics")}
    commands = {f"inspect_{p}.commands" for p in ("db", "batch", "review", "stations")}
    assert plugins | commands <= modules, sorted((plugins | commands) - modules)
    assert not _heavy(modules), _heavy(modules)
    assert "inspect_core.runtime.recipe" not in modules


def test_texts_written_out_for_start_up_match_their_sources():
    """The command modules write out, or take from a light module, what the heavy modules
    they no longer import define."""
    from inspect_batch import commands as batch_commands
    from inspect_db.commands import DB_HELP
    from inspect_db.engine import ENV_URL
    from inspect_stations.config.types import Limits, SixteenBit

    assert f"${ENV_URL} " in DB_HELP
    reads = set(typing.get_args(SixteenBit)) - {"refuse"}
    assert set(batch_commands.SIXTEEN_BIT_READS) == reads
    assert (batch_commands.MAX_BYTES, batch_commands.MAX_PIXELS) == (
        Limits().max_bytes,
        Limits().max_pixels,
    )


def test_a_runtime_submodule_loads_without_the_inspector():
    """`inspect_core.runtime` exports lazily: a plugin's hook that imports the recipe module
    does not load the inspector, ONNX Runtime or the overlays."""
    modules, _ = _modules_after("import inspect_core.runtime.recipe")
    assert "inspect_core.runtime.recipe" in modules
    loaded = [
        m for m in ("inspector", "onnx_model", "overlay") if f"inspect_core.runtime.{m}" in modules
    ]
    assert loaded == [] and "onnxruntime" not in modules, loaded


RUNTIME_NAMES = (
    "Domain Inspector InspectorBase META_KEY ModelMeta ModelRun OnnxModel Recipe RecipeError "
    "Result SampleImage Segmentation TTA_TRANSFORMS argmax_labels build_preprocess build_steps "
    "extract_regions render_overlay render_result save_overlay"
)


@pytest.mark.parametrize(
    ("package", "names"),
    [
        ("inspect_core.runtime", RUNTIME_NAMES),
        ("inspect_batch", "BacktestItem ItemResult RecipeSettings Tally"),
    ],
)
def test_lazy_packages_still_export_their_names(package, names):
    """What the packages exported when they imported it all: `from PACKAGE import NAME` for
    each, in a fresh interpreter, and the same ``__all__``."""
    _, out = _modules_after(
        f"from {package} import {', '.join(names.split())}\n"
        f"import {package} as p\nprint(sorted(p.__all__))"
    )
    assert out.strip() == str(sorted(names.split()))
    with pytest.raises(AttributeError):
        import_module(package).no_such_name  # noqa: B018


def test_a_lazy_package_still_imports_its_submodules_by_name():
    from inspect_batch import safe_read
    from inspect_core.runtime import variant_export

    assert variant_export.__name__ == "inspect_core.runtime.variant_export"
    assert safe_read.__name__ == "inspect_batch.safe_read"


def test_lazy_commands_show_the_help_of_the_commands_they_stand_for():
    """Each lazy entry's help is its command's first docstring paragraph: the list shows the
    same text, whatever the width, before and after the command is imported."""
    from inspect_core.cli import LAZY_COMMANDS

    for lazy in LAZY_COMMANDS:
        real = lazy.resolve()
        assert real.name == lazy.name
        for limit in (30, 45, 60, 80, 200):
            assert lazy.get_short_help_str(limit) == real.get_short_help_str(limit), lazy.name


def test_a_lazy_command_runs_as_itself():
    from inspect_core.cli import cli

    res = CliRunner().invoke(cli, ["predict", "--help"])
    assert res.exit_code == 0, res.output
    assert "--plugin" in res.output and "IMAGES" in res.output


def test_plugins_json_still_lists_each_plugins_commands():
    """`inspect plugins` runs before any plugin command is asked for: it loads them itself."""
    res = subprocess.run(
        [sys.executable, "-c", _run_main("plugins", "--json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    listing = {p["plugin"]: p for p in json.loads(res.stdout)}
    assert {"demo", "station"} <= set(listing["station"]["commands"]), listing["station"]
    assert "report" in listing["records"]["commands"]


def test_an_unknown_command_is_refused_after_the_plugins_are_asked():
    from inspect_core.cli import cli

    res = CliRunner().invoke(cli, ["no-such-command"])
    assert res.exit_code == 2 and "No such command" in res.output


def _probe(calls: list[str]) -> types.ModuleType:
    mod = types.ModuleType("probe_plugin")

    @hookimpl
    def register_domains(register: object) -> None:
        calls.append("domains")

    @hookimpl
    def register_commands(cli: click.Group) -> None:
        calls.append("commands")
        cli.add_command(click.Command("probe-cmd", callback=lambda: None))

    mod.register_domains = register_domains  # type: ignore[attr-defined]
    mod.register_commands = register_commands  # type: ignore[attr-defined]
    return mod


def test_commands_load_without_reading_recipes_which_wait_for_the_registry(monkeypatch):
    monkeypatch.setenv(manager.ENV_SELECT, "probe")
    calls: list[str] = []
    reg = manager.import_plugins(extra=[("probe", _probe(calls))])
    assert reg.pending == ["core", "probe"] and calls == []
    monkeypatch.setattr(manager, "_REGISTRY", reg)
    group = click.Group()
    manager.load_cli_plugins(group)
    assert "probe-cmd" in group.commands and calls == ["commands"]
    assert manager.get_registry() is reg
    assert calls == ["commands", "domains"] and reg.pending == []
    manager.get_registry()
    assert calls == ["commands", "domains"]  # once


@pytest.mark.parametrize("name", ["hookimpl", "get_registry", "BaseSource", "find_recipe"])
def test_the_plugin_api_package_still_exports_its_names(name):
    import inspect_core.plugin_api as api

    assert getattr(api, name) is not None and name in api.__all__
    with pytest.raises(AttributeError):
        api.no_such_name  # noqa: B018


def test_each_run_of_main_asks_the_plugins_for_their_commands_again(monkeypatch, capsys):
    """The registry may have been refreshed since the last run in this process (tests do)."""
    from inspect_core import cli as cli_mod

    cli_mod.cli.load_plugin_commands()
    asked: list[click.Group] = []
    monkeypatch.setattr(manager, "load_cli_plugins", asked.append)
    monkeypatch.setattr(sys, "argv", ["inspect", "--help"])
    try:
        cli_mod.main()
    except SystemExit as e:
        assert e.code in (0, None)
    assert "Commands:" in capsys.readouterr().out
    assert asked == [cli_mod.cli]
