"""`inspect plugin new NAME --data DATASET`: the survey of the true masks, the recipe sized from
it (no opening that would erase 2 px cracks), the model to start from, and a generated plugin
that passes its own tests; `inspect plugin samples` picks its samples after training."""

import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from plugin_data_kit import CLASSES, CRACK_LENGTHS, make_dataset, oracle_probabilities, write_card

from inspect_core.cli import cli
from inspect_core.plugin_api.dataset_survey import survey_dataset
from inspect_core.plugin_api.plugin_plan import choose_start_model, plan_chain
from inspect_core.runtime.postprocess import build_steps
from inspect_core.runtime.recipe import Recipe

BIN = Path(sys.executable).parent


@pytest.fixture
def cracks(tmp_path) -> Path:
    return make_dataset(tmp_path / "cracks")


@pytest.fixture(scope="module")
def colour_model(tmp_path_factory) -> Path:
    """A tiny colour model with the dataset's classes and a card (width 4, depth 2, stride 2)."""
    from conftest import make_tiny_model

    path = make_tiny_model(tmp_path_factory.mktemp("start") / "start.onnx", CLASSES, channels=3)
    write_card(path, width=4, depth=2, stem_stride=2)
    return path


def test_survey_measures_the_thin_cracks_and_the_stains(cracks):
    s = survey_dataset(cracks)
    assert (s.split, s.channels, s.classes, s.masks, s.defect_free) == ("train", 3, CLASSES, 10, 2)
    crack, stain = s.per_class
    areas = [2 * n for n in CRACK_LENGTHS]
    assert (crack.name, crack.images, crack.components) == ("crack", 8, 8)
    assert crack.min_area == min(areas) == 24
    assert crack.area_low == pytest.approx(np.percentile(areas, 5))
    assert crack.area_median == np.median(areas)
    assert crack.min_thickness == crack.thickness_low == 2.0  # a 2 px band measures 2
    disc = int((cv2.circle(np.zeros((20, 20), np.uint8), (10, 10), 6, 1, -1)).sum())
    assert (stain.components, stain.min_area) == (4, disc)
    assert 12 <= stain.min_thickness <= 14  # a disc 13 px across
    assert "crack: 8 regions in 8 images" in "\n".join(s.lines())


def test_the_chain_for_thin_cracks_has_no_opening_and_keeps_every_true_crack(cracks):
    s = survey_dataset(cracks)
    plan = plan_chain(s)
    low = np.percentile([2 * n for n in CRACK_LENGTHS], 5)  # the cracks are the smaller class
    assert plan.open_size == 0 and "no open" in plan.reasons[0]
    assert plan.remove_small_px == int(low // 2) and plan.min_area_px == int(low)
    # an opening of size 3 would erase every crack; the planned chain keeps all of them
    opened = build_steps([{"type": "open", "size": 3}])
    planned = build_steps([{"type": "remove_small", "default_px": plan.remove_small_px}])
    mask = cv2.imread(str(cracks / "train" / "masks" / "train0.png"), cv2.IMREAD_UNCHANGED)
    probs = np.zeros((3, *mask.shape), np.float32)
    assert not (opened(mask, probs) == 1).any()
    for i in range(8):
        mask = cv2.imread(str(cracks / "train" / "masks" / f"train{i}.png"), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(planned(mask, probs), mask)


def test_thick_defects_get_an_opening(tmp_path):
    plan = plan_chain(survey_dataset(make_dataset(tmp_path / "thick", stains=False, thick=True)))
    assert plan.open_size == 3 and plan.reasons[0].startswith("open size 3")


def test_the_shipped_start_models_match_the_channels():
    gray, colour = choose_start_model(1), choose_start_model(3)
    assert (gray.spec, gray.channels, gray.stem_stride) == ("industrial:steel", 1, 2)
    assert (colour.spec, colour.channels, colour.stem_stride) == ("industrial:ballscrew", 3, 1)
    assert "defects" in colour.reason


def test_plugin_new_with_data_writes_a_sized_recipe_and_the_train_command(
    cracks, colour_model, tmp_path, monkeypatch
):
    import inspect_core.plugin_api.plugin_plan as plugin_plan

    monkeypatch.setattr(plugin_plan, "resolve_model", lambda spec: colour_model)
    res = CliRunner().invoke(
        cli,
        ["plugin", "new", "cracks", "--dir", str(tmp_path), "--data", str(cracks)],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    train = re.search(r"inspect train .*", res.output).group(0)
    assert f"--data {cracks}" in train and "--init-from industrial:ballscrew" in train
    # the start model's own network, also for 2 px cracks (no --stem-stride: full resolution
    # trains 5x slower and reached less in a 30-minute fine-tune)
    assert train.endswith("--init-from industrial:ballscrew")
    assert "inspect plugin samples cracks:default" in res.output
    root = tmp_path / "inspect-cracks"
    toml = root / "inspect_cracks" / "recipes" / "default.toml"
    recipe = Recipe.from_toml(toml)
    plan = plan_chain(survey_dataset(cracks))
    assert recipe.postprocess == [{"type": "remove_small", "default_px": plan.remove_small_px}]
    assert recipe.rules[0] == {"type": "min_area", "min": plan.min_area_px, "decision": "FAIL"}
    assert recipe.region_classes is None and recipe.samples == []
    assert not recipe.problems()
    text = toml.read_text()
    assert "no open: crack regions are 2 px thick" in text and train in text
    test_file = (root / "tests" / "test_cracks.py").read_text()
    assert f"DATASET_CLASSES = {json.dumps(CLASSES)}" in test_file


def test_the_generated_plugin_passes_its_own_tests(cracks, colour_model, tmp_path, monkeypatch):
    import inspect_core.plugin_api.plugin_plan as plugin_plan
    from inspect_core.plugin_api.scaffold import scaffold_from_data

    monkeypatch.setattr(plugin_plan, "resolve_model", lambda spec: colour_model)
    made = scaffold_from_data("thincrack", tmp_path, cracks)
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*pip, "-e", str(made.root)], check=True, capture_output=True)
    try:
        test = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "tests"],
            capture_output=True,
            text=True,
            cwd=made.root,
        )
        assert test.returncode == 0, test.stdout + test.stderr
        # still the starting model and no samples: both say what to do next
        assert "1 passed, 2 skipped" in test.stdout
        assert "still the starting model industrial:ballscrew" in test.stdout
        assert "inspect plugin samples thincrack:default" in test.stdout
    finally:
        subprocess.run(
            [sys.executable, "-m", "pip", "uninstall", "-y", "-q", "inspect-thincrack"],
            capture_output=True,
        )


def test_plugin_samples_picks_agreeing_images_and_writes_them(
    cracks, colour_model, tmp_path, monkeypatch
):
    import inspect_core.plugin_api.plugin_plan as plugin_plan
    import inspect_core.plugin_api.resolve as resolve
    from inspect_core.plugin_api.scaffold import scaffold_from_data
    from inspect_core.runtime.inspector import Inspector

    monkeypatch.setattr(plugin_plan, "resolve_model", lambda spec: colour_model)
    made = scaffold_from_data("oakcrack", tmp_path, cracks)
    recipe = Recipe.from_toml(made.recipe)
    monkeypatch.setattr(resolve, "find_recipe", lambda plugin, name: recipe)
    # a model that is always right: every image's verdict agrees with its true mask's
    monkeypatch.setattr(Inspector, "probabilities", lambda self, frame: oracle_probabilities(frame))
    args = ["plugin", "samples", "oakcrack:default", "--data", str(cracks), "--n", "4"]
    dry = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert dry.exit_code == 0, dry.output
    assert "[[samples]]" in dry.output and "not written: add --write" in dry.output
    assert "none found for REVIEW" in dry.output  # probabilities of 1.0 are never uncertain
    assert not list((made.root / "inspect_oakcrack" / "samples").iterdir())
    res = CliRunner().invoke(cli, [*args, "--write"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    written = Recipe.from_toml(made.recipe)
    assert [s.expected for s in written.samples] == ["FAIL", "FAIL", "PASS"]
    assert all(s.image.parent.name == "samples" and s.image.is_file() for s in written.samples)
    assert written.postprocess == recipe.postprocess and written.rules == recipe.rules
    inspector = Inspector(written)
    for s in written.samples:  # the written files get their verdicts
        insp, _ = inspector.inspect_file(s.image)
        assert insp.verdict.decision.value == s.expected, s.image
    # a second run replaces the block instead of adding another, and keeps a table written
    # after it (`inspect health fit --write` appends [health.quality] at the end)
    with open(made.recipe, "a") as f:
        f.write("\n# image-quality limits\n[health.quality]\nfocus_min = 0.01\n")
    CliRunner().invoke(cli, [*args, "--n", "2", "--write"], catch_exceptions=False)
    again = Recipe.from_toml(made.recipe)
    assert len(again.samples) == 2 and again.health.quality.focus_min == 0.01
    assert "# image-quality limits\n[health.quality]" in made.recipe.read_text()


def test_an_mvtec_folder_is_surveyed_on_its_test_split(tmp_path):
    root = tmp_path / "bottle"
    for folder in ("train/good", "test/good", "test/crack", "ground_truth/crack"):
        (root / folder).mkdir(parents=True)
    img = np.full((32, 32, 3), 90, np.uint8)
    cv2.imwrite(str(root / "train" / "good" / "000.png"), img)
    cv2.imwrite(str(root / "test" / "good" / "000.png"), img)
    mask = np.zeros((32, 32), np.uint8)
    mask[10:12, 3:28] = 255  # a 2 px crack, 25 px long
    cv2.imwrite(str(root / "test" / "crack" / "000.png"), img)
    cv2.imwrite(str(root / "ground_truth" / "crack" / "000_mask.png"), mask)
    s = survey_dataset(root)
    assert (s.split, s.classes, s.masks, s.defect_free) == ("test", ["background", "crack"], 2, 1)
    assert (s.per_class[0].min_area, s.per_class[0].min_thickness) == (50, 2.0)
    assert plan_chain(s).open_size == 0


def test_a_dataset_without_defects_is_refused_with_what_to_do(tmp_path):
    from inspect_core.errors import InspectError

    root = make_dataset(tmp_path / "empty")
    for m in (root / "train" / "masks").iterdir():
        cv2.imwrite(str(m), np.zeros((64, 64), np.uint8))
    with pytest.raises(InspectError, match="no defect pixels in the train masks"):
        plan_chain(survey_dataset(root))


def test_a_dataset_path_with_quotes_gives_files_that_still_parse(
    cracks, colour_model, tmp_path, monkeypatch
):
    """The path lands in the generated test's strings and comments: escaped, not pasted."""
    import shutil
    import tomllib

    import inspect_core.plugin_api.plugin_plan as plugin_plan
    from inspect_core.plugin_api.scaffold import scaffold_from_data

    monkeypatch.setattr(plugin_plan, "resolve_model", lambda spec: colour_model)
    odd = tmp_path / 'line "3" \\ cracks'
    shutil.copytree(cracks, odd)
    made = scaffold_from_data("oddpath", tmp_path / "out", odd)
    test_file = made.root / "tests" / "test_oddpath.py"
    compile(test_file.read_text(), str(test_file), "exec")  # a SyntaxError fails the test
    tomllib.loads(made.recipe.read_text())
    assert "'" in made.train_command  # the path is quoted for the shell
