"""`inspect model add` refuses a model that does not fit its recipe: its network (the input
channels and output classes its graph really has, what it gives for an image) and its
metadata (classes, channels, normalisation, tile rules), not only what the metadata declares.
A station that switched to such a model stopped inspecting (every image ERROR) or passed every
defect."""

from __future__ import annotations

import json
from pathlib import Path

import onnxruntime as ort
import pytest
from click.testing import CliRunner
from onnx_kit import conv_model

from inspect_core.cli import cli
from inspect_core.plugin_api.manager import load_cli_plugins
from inspect_db.registry.versions import RegistryError

ROOT = Path(__file__).resolve().parents[2]
STEEL = ROOT / "plugins" / "inspect_plugins" / "industrial" / "models" / "steel.onnx"


def _steel_meta(**changes):
    raw = ort.InferenceSession(str(STEEL), providers=["CPUExecutionProvider"])
    meta = json.loads(raw.get_modelmeta().custom_metadata_map["inspect.meta"])
    return {**meta, "tta": [], **changes}


def _add(path: Path, url: str, store: Path):
    load_cli_plugins(cli)
    common = ["--plugin", "industrial", "--recipe", "steel", "--db", url, "--store", str(store)]
    return CliRunner().invoke(cli, ["model", "add", str(path), *common])


def _refused(res, *words: str) -> str:
    assert res.exit_code != 0, res.output
    assert isinstance(res.exception, RegistryError), res.exception
    assert res.exception.exit_code == 2
    msg = str(res.exception)
    for w in words:
        assert w in msg, msg
    return msg


def test_a_network_that_fits_steel_is_added(sqlite_url, tmp_path):
    ok = conv_model(tmp_path / "ok.onnx", _steel_meta())
    res = _add(ok, sqlite_url, tmp_path / "store")
    assert res.exit_code == 0, res.output
    assert "added industrial:steel v1" in res.output


def test_a_network_taking_three_channels_is_refused(sqlite_url, tmp_path):
    """Steel's metadata and a correct card, but the graph takes colour: every image would be
    an ERROR."""
    rgb = conv_model(tmp_path / "rgb.onnx", _steel_meta(), in_ch=3)
    msg = _refused(
        _add(rgb, sqlite_url, tmp_path / "store"),
        "rgb.onnx",
        "network takes 3 channels, recipe steel is gray (1)",
    )
    assert "add it again" in msg  # what to do
    assert not (tmp_path / "store").exists()  # nothing copied, nothing registered


def test_a_network_giving_six_classes_is_refused(sqlite_url, tmp_path):
    """Steel's metadata (4 classes) on a network with 6 outputs: defects would pass."""
    six = conv_model(tmp_path / "six.onnx", _steel_meta(), out_ch=6)
    _refused(
        _add(six, sqlite_url, tmp_path / "store"),
        "six.onnx",
        "network gives 6 classes",
        "recipe steel has 4",
    )


def test_a_network_whose_output_is_not_image_sized_is_refused(sqlite_url, tmp_path):
    half = conv_model(tmp_path / "half.onnx", _steel_meta(), stride=2)
    _refused(_add(half, sqlite_url, tmp_path / "store"), "half.onnx", "for a 64x96 input")


@pytest.mark.parametrize(
    "changes, in_ch, words",
    [
        ({"channels": 3}, 3, ["its metadata says 3 channels, recipe steel is gray (1)"]),
        ({"mean": 114.6, "std": 52.1}, 1, ["normalisation", "0..1"]),
        ({"std": 0.0}, 1, ["normalisation"]),
        ({"stride": 0}, 1, ["stride 0"]),
        ({"tile_size": -5}, 1, ["tile_size -5"]),
        ({"input_size": 0}, 1, ["input_size 0"]),
    ],
)
def test_metadata_that_does_not_fit_the_recipe_is_refused(
    sqlite_url, tmp_path, changes, in_ch, words
):
    bad = conv_model(tmp_path / "bad.onnx", _steel_meta(**changes), in_ch=in_ch)
    _refused(_add(bad, sqlite_url, tmp_path / "store"), "bad.onnx", *words)


def test_classes_in_another_order_are_refused(sqlite_url, tmp_path):
    classes = ["background", "patches", "inclusion", "scratches"]
    swapped = conv_model(tmp_path / "swapped.onnx", _steel_meta(classes=classes))
    _refused(_add(swapped, sqlite_url, tmp_path / "store"), "are not those of industrial:steel")
