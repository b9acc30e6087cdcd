"""`inspect plugin new` writes a package that installs, lists and passes its own test."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from plugin_data_kit import carded_copy

from inspect_core.cli import cli

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def carded_model(tiny_model, tmp_path_factory):
    """The tiny model with its card: a plugin's model is refused without one."""
    return carded_copy(tiny_model, tmp_path_factory.mktemp("carded"))


def test_scaffolded_plugin_installs_lists_and_passes_its_test(carded_model, tmp_path):
    res = CliRunner().invoke(
        cli,
        ["plugin", "new", "woodgrain", "--dir", str(tmp_path), "--model", str(carded_model)],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    root = tmp_path / "inspect-woodgrain"
    assert (root / "pyproject.toml").is_file() and (root / "README.md").is_file()
    pip = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "-e",
        str(root),
    ]
    subprocess.run(pip, check=True, capture_output=True)
    try:
        out = subprocess.run(
            [str(BIN / "inspect"), "plugins", "--json"], capture_output=True, text=True
        )
        listing = {p["plugin"]: p for p in json.loads(out.stdout)}
        assert "woodgrain" in listing
        (dom,) = listing["woodgrain"]["domains"]
        assert dom["name"] == "woodgrain" and dom["recipes"][0]["name"] == "default"
        assert dom["recipes"][0]["classes"] == ["background", "scratch", "dent"]
        test = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root / "tests")],
            capture_output=True,
            text=True,
            cwd=root,
        )
        assert test.returncode == 0, test.stdout + test.stderr
        # the tiny model ships no samples: registration passes, the sample test says why it skips
        assert "1 passed, 1 skipped" in test.stdout
    finally:
        subprocess.run(
            [sys.executable, "-m", "pip", "uninstall", "-y", "-q", "inspect-woodgrain"],
            capture_output=True,
        )


def test_scaffold_refuses_bad_names_and_existing_folders(carded_model, tmp_path):
    from inspect_core.errors import InspectError
    from inspect_core.plugin_api.scaffold import scaffold

    with pytest.raises(InspectError, match="lowercase"):
        scaffold("Wood-Grain", tmp_path, carded_model)
    with pytest.raises(InspectError, match="not ending in _"):
        scaffold("oak_", tmp_path, carded_model)  # "inspect-oak-": no valid distribution name
    for taken in ("industrial", "core"):  # both would fail to load beside the other
        with pytest.raises(InspectError, match="is taken"):
            scaffold(taken, tmp_path, carded_model)
    scaffold("oak", tmp_path, carded_model)
    with pytest.raises(InspectError, match="already exists"):
        scaffold("oak", tmp_path, carded_model)


def test_scaffold_refuses_a_model_without_its_card(tiny_model, tmp_path):
    from inspect_core.errors import InspectError
    from inspect_core.plugin_api.scaffold import scaffold

    bare = tmp_path / "bare.onnx"  # a copy without the card beside it
    shutil.copy(tiny_model, bare)
    with pytest.raises(InspectError, match="no model card"):
        scaffold("ash", tmp_path, bare)
    assert not (tmp_path / "inspect-ash" / "inspect_ash" / "models").exists()
