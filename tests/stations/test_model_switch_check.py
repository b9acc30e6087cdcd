"""Before a running station switches to a newly promoted model, it runs it on the last image it
recorded and on its recipe's shipped samples: a model that fails (its network does not fit,
it raises, a sample's verdict is not the expected one) stays unused, the running model keeps
inspecting, `model_switch_failed` is logged once per version and `station status` shows NEEDS
ACTION until a later switch succeeds. Before, such a model was switched to: every image became
an ERROR (3 input channels on a gray recipe) or passed with no region (6 output classes)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from onnx_kit import conv_model, meta_of
from station_kit import StationLogs

from inspect_core.cards import sha256_file
from inspect_core.plugin_api.interfaces import ModelVersion
from inspect_stations.config.station import parse_config
from inspect_stations.pipeline.daemon import Station
from inspect_stations.pipeline.status import format_status, read_status
from inspect_stations.testing import MemorySink, write_images

CLASSES = ["background", "defect"]
# logit(defect) = 4 x - 4 on x = (pixel/255 - 0.5) / 0.25: bright pixels (above ~190) are defects
GOOD = dict(weight=[0.0, 4.0], bias=[0.0, -4.0])


class Registry:
    """A version source whose answer the test sets (`inspect model promote`)."""

    def __init__(self, version=None):
        self.version = version

    def active(self, plugin, recipe, station):
        return self.version

    def close(self):
        pass


def _station(tmp: Path, samples: bool = True) -> tuple[Station, Registry, MemorySink]:
    """A station on a gray two-class recipe (with a FAIL and a PASS sample), run over three
    images with its own model, so that it has recorded images."""
    model = conv_model(tmp / "own" / "tiny.onnx", meta_of(CLASSES), **GOOD)
    bright = np.full((32, 48), 100, np.uint8)
    bright[10:20, 10:20] = 255
    cv2.imwrite(str(tmp / "bright.png"), bright)
    cv2.imwrite(str(tmp / "dark.png"), np.full((32, 48), 100, np.uint8))
    text = f'name = "tiny"\nmodel = "{model}"\n[[rules]]\ntype = "min_area"\nmin = 1\n'
    if samples:
        text += '[[samples]]\nimage = "bright.png"\nexpected = "FAIL"\n'
        text += '[[samples]]\nimage = "dark.png"\nexpected = "PASS"\n'
    (tmp / "tiny.toml").write_text(text)
    write_images(tmp / "inbox", 3)
    cfg = parse_config(
        {
            "station": {"name": "s1", "recipe_file": "tiny.toml", "until_empty": True},
            "source": {"type": "folder", "path": "inbox", "stable_s": 0.0, "poll_s": 0.02},
            "model": {"check_s": 0},
        },
        tmp,
    )
    sink, reg = MemorySink(), Registry(None)
    st = Station(cfg, sinks={"mem": sink}, versions=reg)
    assert st.run(install_signals=False) == 0 and len(sink.items) == 3
    return st, reg, sink


def _version(path: Path, label: str) -> ModelVersion:
    return ModelVersion(sha256_file(path), str(path), label)


def _shown(st: Station) -> str:
    st.status.write(force=True)
    return format_status(read_status(Path(st.cfg.state_dir)))


def _refused(tmp: Path, name: str, *words: str, samples: bool = True, **model) -> str:
    st, reg, _ = _station(tmp, samples)
    running = st.follower.running_sha
    bad = conv_model(tmp / name / "tiny.onnx", model.pop("meta", meta_of(CLASSES)), **model)
    reg.version = _version(bad, "v3")
    builds = []
    real = st.follower.build
    st.follower.build = lambda recipe: builds.append(recipe) or real(recipe)
    with StationLogs() as logs:
        switched: list = []
        for _ in range(3):  # polled again and again: tried once, said once
            assert st.follower.check(switched.append) is False
        failed = logs.of("model_switch_failed")
    assert switched == [] and st.follower.running_sha == running and len(builds) == 1
    assert len(failed) == 1, failed
    for w in ("v3", "keeping the model", *words):
        assert w in failed[0], failed[0]
    shown = _shown(st)
    assert "NEEDS ACTION" in shown and "v3" in shown, shown
    return failed[0]


def test_a_network_taking_three_channels_is_not_switched_to(tmp_path):
    _refused(tmp_path, "rgb", "the model failed", in_ch=3, weight=[0.0, 4.0], bias=[0.0, -4.0])


def test_a_network_giving_six_classes_is_not_switched_to(tmp_path):
    msg = _refused(tmp_path, "six", "6", out_ch=6, samples=False)
    assert "2 classes" in msg


def test_a_model_misjudging_a_shipped_sample_is_not_switched_to(tmp_path):
    """It runs and its shapes fit, but it sees no defect: the FAIL sample would pass."""
    _refused(tmp_path, "blind", "bright.png", "PASS", "expected FAIL", bias=[5.0, 0.0])


def test_a_later_version_that_passes_is_switched_to_and_clears_needs_action(tmp_path):
    st, reg, _ = _station(tmp_path)
    blind = conv_model(tmp_path / "blind" / "tiny.onnx", meta_of(CLASSES), bias=[5.0, 0.0])
    reg.version = _version(blind, "v3")
    assert st.follower.check(lambda new: None) is False
    assert "NEEDS ACTION" in _shown(st)
    good = conv_model(tmp_path / "v4" / "tiny.onnx", meta_of(CLASSES), weight=[0, 4], bias=[0, -3])
    reg.version = _version(good, "v4")
    switched: list = []
    with StationLogs() as logs:
        assert st.follower.check(switched.append) is True
        said = logs.of("model_switched")
    assert switched[0].model_sha256 == sha256_file(good)
    assert "NEEDS ACTION" not in _shown(st)
    # it was tried on what the station recorded and on the shipped samples
    assert "2 shipped sample(s)" in said[0] and "recorded image" in said[0], said[0]
    recorded = read_status(Path(st.cfg.state_dir))["last_verdicts"][0]["source"]
    assert Path(recorded).name in said[0]


def test_a_rollback_to_the_running_model_clears_needs_action(tmp_path):
    st, reg, _ = _station(tmp_path)
    rgb = conv_model(tmp_path / "rgb" / "tiny.onnx", meta_of(CLASSES), in_ch=3)
    reg.version = _version(rgb, "v3")
    assert st.follower.check(lambda new: None) is False
    assert "NEEDS ACTION" in _shown(st)
    reg.version = None  # inspect model rollback: the recipe's own model, which runs
    assert st.follower.check(lambda new: None) is False
    assert "NEEDS ACTION" not in _shown(st)
