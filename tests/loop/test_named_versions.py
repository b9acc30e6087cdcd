"""What may stand in for a good-only recipe's model: a model of ``background`` and the classes
operators named (never ``anomaly``), as the loop trains it. The registry adds it, a backtest
takes it as a candidate, a station switches to it and back to the recipe's own model; a model
of other classes is refused by each with what a version must be, and so is a named model on a
recipe that names class anomaly (it could never judge it). Before, each of them required the
good-only model's very classes, so the loop stopped at its last step."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import make_tiny_model, write_card
from loop_kit import forget_plugins, install_plugin, recipe_text, use_plugin

from inspect_batch.commands import CandidateRefused, check_candidate
from inspect_core.anomaly.named import names_defects
from inspect_core.cards import sha256_file
from inspect_core.cli import cli
from inspect_core.plugin_api.interfaces import ModelVersion
from inspect_core.types import Decision
from inspect_stations.config.station import parse_config
from inspect_stations.pipeline.daemon import Station
from inspect_stations.pipeline.model_follow import TrialFailed, TrialImage, run_trial
from inspect_stations.testing import CapturedLogs, MemorySink, recipe_file, write_images

GOOD_ONLY = ["background", "anomaly"]
NAMED = ["background", "blob", "line"]
PLUGIN = "namedplug"
# a good-only recipe that names its class: a model naming the defects cannot run it
NAMES_ANOMALY = """name = "{recipe}"
model = "{model}"
region_classes = ["anomaly"]

[[rules]]
type = "min_area"
classes = ["anomaly"]
min = 12
"""


@pytest.mark.parametrize(
    "own,classes,ok",
    [
        (GOOD_ONLY, NAMED, True),
        (GOOD_ONLY, ["background", "crack"], True),
        (GOOD_ONLY, GOOD_ONLY, False),  # the same classes: no naming (and fine anyway)
        (GOOD_ONLY, ["background", "anomaly", "blob"], False),  # anomaly names nothing
        (GOOD_ONLY, ["background"], False),
        (GOOD_ONLY, ["blob", "background"], False),
        (GOOD_ONLY, ["background", "blob", "blob"], False),
        (["background", "scratch"], ["background", "blob"], False),  # not a good-only recipe
    ],
)
def test_what_names_the_defects_of_a_good_only_model(own, classes, ok):
    assert names_defects(own, classes) is ok


def _model(folder: Path, name: str, classes: list[str], seed: int = 0) -> Path:
    path = make_tiny_model(folder / f"{name}.onnx", classes=classes, seed=seed)
    write_card(path, classes)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    return {
        "good_only": _model(folder, "good_only", GOOD_ONLY),
        "named": _model(folder, "named", NAMED, seed=1),
        "unnamed": _model(folder, "unnamed", ["background", "anomaly", "blob"], seed=2),
    }


@pytest.fixture
def plugin(tmp_path, monkeypatch, models):
    """An installed plugin with two good-only recipes: ``plain`` names no class (as the
    shipped tile-anomaly), ``strict`` names class anomaly."""
    site = tmp_path / "site"
    own = models["good_only"]
    recipes = {
        "plain": recipe_text("plain", own),
        "strict": recipe_text("strict", own, NAMES_ANOMALY),
    }
    install_plugin(site, PLUGIN, recipes)
    use_plugin(monkeypatch, site)
    yield
    forget_plugins(monkeypatch, PLUGIN)


def _add(model: Path, recipe: str, url: str, store: Path):
    args = ["model", "add", str(model), "--plugin", PLUGIN, "--recipe", recipe]
    return CliRunner().invoke(cli, [*args, "--db", url, "--store", str(store)])


def test_the_registry_adds_a_named_model_to_a_good_only_recipe(plugin, models, tmp_path):
    url, store = f"sqlite:///{tmp_path / 'r.db'}", tmp_path / "store"
    res = _add(models["named"], "plain", url, store)
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "added namedplug:plain v1" in res.output
    res = _add(models["unnamed"], "plain", url, store)
    assert res.exit_code != 0
    assert "are not those of namedplug:plain" in str(res.exception)
    assert "never anomaly" in str(res.exception)  # what a good-only recipe's version is
    res = _add(models["named"], "strict", url, store)
    assert res.exit_code != 0
    assert "does not fit recipe namedplug:strict" in str(res.exception)
    assert "region_classes ['anomaly'] are not classes of the model" in str(res.exception)


def test_a_backtest_takes_a_named_model_as_the_candidate(plugin, models):
    sha, classes = check_candidate(PLUGIN, "plain", models["named"])
    assert sha == sha256_file(models["named"]) and classes == NAMED
    with pytest.raises(CandidateRefused, match="never anomaly"):
        check_candidate(PLUGIN, "plain", models["unnamed"])
    with pytest.raises(CandidateRefused, match=r"cannot judge its classes .*region_classes"):
        check_candidate(PLUGIN, "strict", models["named"])


class Versions:
    """A registry whose active version the test sets (`inspect model promote` / rollback)."""

    def __init__(self) -> None:
        self.version: ModelVersion | None = None

    def active(self, plugin, recipe, station):
        return self.version

    def close(self):
        pass


def _version(path: Path, label: str) -> ModelVersion:
    return ModelVersion(sha256_file(path), str(path), label)


def test_a_station_switches_to_the_named_model_and_rolls_back(tmp_path, models):
    recipe_file(tmp_path, models["good_only"])
    write_images(tmp_path / "inbox", 2)
    cfg = parse_config(
        {
            "station": {"name": "s1", "recipe_file": "tiny.toml", "until_empty": True},
            "source": {"type": "folder", "path": "inbox", "stable_s": 0.0, "poll_s": 0.02},
            "model": {"check_s": 0},
        },
        tmp_path,
    )
    reg = Versions()
    with CapturedLogs() as logs:
        st = Station(cfg, sinks={"mem": MemorySink()}, versions=reg)
        assert st.run(install_signals=False) == 0
        switched: list = []
        reg.version = _version(models["named"], "v2")  # promote the named model
        assert st.follower.check(switched.append) is True
        assert switched[-1].classes == NAMED
        reg.version = None  # roll back to the recipe's good-only model
        assert st.follower.check(switched.append) is True
        assert switched[-1].classes == GOOD_ONLY
        reg.version = _version(models["unnamed"], "v3")
        assert st.follower.check(switched.append) is False
        failed = logs.of("model_switch_failed")
    assert len(failed) == 1 and "version v3" in failed[0]
    assert "are not those of the recipe's model ['background', 'anomaly']" in failed[0]
    assert "never anomaly" in failed[0]


class _Judge:
    """An inspector as a trial sees it: one verdict for every frame."""

    def __init__(self, verdict: str):
        self.classes = NAMED
        self.verdict = verdict

    def preprocess(self, image):
        return image

    def forward(self, frames):
        h, w = frames[0].shape[:2]
        probs = np.full((len(NAMED), h, w), 1 / len(NAMED), np.float32)
        return [SimpleNamespace(error=None, probs=probs)]

    def judge_probs(self, frame, probs):
        return SimpleNamespace(verdict=SimpleNamespace(decision=Decision(self.verdict)))


def test_a_good_only_recipes_review_sample_takes_fail_from_a_model_naming_defects():
    image = np.full((8, 8), 100, np.uint8)
    sample = TrialImage("sample.png", image, "REVIEW")
    with pytest.raises(TrialFailed, match="judged FAIL, expected REVIEW"):
        run_trial(_Judge("FAIL"), sample)
    named = TrialImage("sample.png", image, "REVIEW", fail_for_review=True)
    assert run_trial(_Judge("FAIL"), named) == "FAIL"  # the same finding, named
    with pytest.raises(TrialFailed, match="judged PASS, expected REVIEW"):
        run_trial(_Judge("PASS"), named)  # a missed defect is still a failed trial
    passed = TrialImage("good.png", image, "PASS", fail_for_review=True)
    with pytest.raises(TrialFailed, match="judged FAIL, expected PASS"):
        run_trial(_Judge("FAIL"), passed)
