"""Only ``inspect_core.training`` imports torch: a station, ``inspect predict`` and ``inspect
report`` run on a machine without it (the Docker image installs none).

Each check runs in a fresh interpreter with an import hook that notes every attempt to import
torch (with the stack that asked for it), so a failure names the module to fix.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# installed first in every subprocess: reports each torch import, and whether torch is loaded
GUARD = textwrap.dedent("""
    import atexit, sys, traceback

    class _TorchWatch:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] == "torch":
                sys.stderr.write(f"TORCH IMPORTED: {name}\\n" + "".join(traceback.format_stack()))
            return None

    sys.meta_path.insert(0, _TorchWatch())
    atexit.register(lambda: sys.stderr.write("TORCH LOADED\\n" if "torch" in sys.modules else ""))
""")

# what `inspect station run`, `predict`, `report` (and `evaluate`) load on their way
RUN_PATH_MODULES = [
    "inspect_core.cli",
    "inspect_core.commands.predict",
    "inspect_core.commands.evaluate",
    "inspect_core.runtime.inspector",
    "inspect_core.runtime.overlay",
    "inspect_stations.pipeline.daemon",
    "inspect_stations.pipeline.threads",
    "inspect_stations.pipeline.work",
    "inspect_stations.sources.folder",
    "inspect_stations.sources.camera",
    "inspect_stations.commands",
    "inspect_stations.config.check",
    "inspect_stations.demo",
    "inspect_db.commands",
    "inspect_db.reports.query",
    "inspect_db.records.recorder",
]


def run_python(code: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", GUARD + code, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_no_torch(res: subprocess.CompletedProcess, what: str) -> None:
    assert "TORCH IMPORTED" not in res.stderr and "TORCH LOADED" not in res.stderr, (
        f"{what} imports torch:\n{res.stderr[-4000:]}"
    )


def test_only_the_training_package_imports_torch():
    """The source, read as text: ``import torch`` only under inspect_core/training."""
    offenders = []
    for folder in ("inspect_core", "plugins", "stations", "db"):
        for path in (ROOT / folder).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith("inspect_core/training/"):
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                words = line.split()
                if words[:1] in (["import"], ["from"]) and len(words) > 1:
                    if words[1].rstrip(",").partition(".")[0] == "torch":
                        offenders.append(f"{rel}:{n}: {line.strip()}")
    assert not offenders, offenders


def test_every_command_help_and_the_run_path_modules_import_no_torch():
    """Every command's --help (plugins' commands included), the modules of the run paths,
    and the plugin registry with every shipped domain."""
    code = textwrap.dedent(f"""
        import importlib
        from click.testing import CliRunner
        from inspect_core.cli import cli
        from inspect_core.plugin_api.manager import get_registry, load_cli_plugins

        load_cli_plugins(cli)
        for name in {RUN_PATH_MODULES!r}:
            importlib.import_module(name)
        reg = get_registry()
        assert reg.domains, "no domain plugin loaded"
        runner = CliRunner()

        def walk(cmd, path):
            res = runner.invoke(cli, path + ["--help"])
            assert res.exit_code == 0, (path, res.output)
            for sub, c in sorted(getattr(cmd, "commands", {{}}).items()):
                walk(c, path + [sub])

        walk(cli, [])
        assert {{"station", "report", "predict", "demo"}} <= set(cli.commands), sorted(cli.commands)
        print("ok")
    """)
    res = run_python(code)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr[-4000:]
    assert_no_torch(res, "the command line")


CLI = "sys.argv = ['inspect'] + sys.argv[1:]\nfrom inspect_core.cli import main\nmain()\n"


def test_station_run_predict_and_report_run_without_torch(tmp_path, tiny_model):
    """The three commands of the line, run for real: a station over a folder into SQLite,
    ``inspect predict`` with a shipped recipe and with a bare model, ``inspect report``."""
    pytest.importorskip("inspect_db")
    from inspect_stations.testing import recipe_file, write_config, write_images

    images = write_images(tmp_path / "inbox", 2, seed=3)
    spare = write_images(tmp_path / "spare", 1, seed=4)
    recipe_file(tmp_path, tiny_model)
    cfg = write_config(
        tmp_path / "station.toml",
        {
            "station": {"name": "bare", "recipe_file": "tiny.toml"},
            "source": {"type": "folder", "path": "inbox", "stable_s": 0.0, "poll_s": 0.05},
            "database": {"url": "sqlite:///records.db"},
        },
    )
    sample = sorted(
        (ROOT / "plugins" / "inspect_plugins" / "industrial" / "samples").glob("steel_*.png")
    )[0]
    runs = {
        "station run": ["station", "run", str(cfg), "--until-empty"],
        "predict --plugin": [
            "predict",
            "--plugin",
            "industrial",
            "--recipe",
            "steel",
            str(sample),
            "--out",
            str(tmp_path / "ov"),
        ],
        "predict --model": ["predict", "--model", str(tiny_model), str(spare[0]), "--json"],
        "report": ["report", "--db", "sqlite:///records.db", "--html", "report.html"],
    }
    for what, args in runs.items():
        res = run_python(CLI, *args, cwd=tmp_path)
        assert res.returncode in (0, 3, 4), f"{what}: exit {res.returncode}\n{res.stderr[-3000:]}"
        assert_no_torch(res, f"inspect {what}")
    assert not any(p.exists() for p in images)  # the station filed them
    assert (tmp_path / "report.html").is_file()
