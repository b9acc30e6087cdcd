"""The inspector's steps (``InspectorBase``): every caller's chain is the same one."""

from __future__ import annotations

import numpy as np
import pytest

from inspect_core.runtime.inspector import Inspector, InspectorBase, ModelRun
from inspect_core.runtime.recipe import Recipe


@pytest.fixture(scope="module")
def inspector(tiny_model) -> Inspector:
    return Inspector(Recipe(name="tiny", model=tiny_model, rules=[{"type": "min_area", "min": 1}]))


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w), np.uint8)


def test_forward_batches_same_size_frames_and_keeps_a_failure_to_its_frame(inspector):
    frames = [_image(24, 32, 1), _image(24, 32, 2), np.zeros((0, 5), np.uint8), _image(17, 9, 3)]
    runs = inspector.forward(frames)
    assert [type(r) for r in runs] == [ModelRun] * 4
    bad = runs[2]
    assert bad.probs is None and bad.error.startswith("the model failed on this image")
    for frame, run in zip(frames[:2] + frames[3:], runs[:2] + runs[3:]):
        assert run.error is None
        np.testing.assert_allclose(run.probs, inspector.probabilities(frame), atol=1e-5)


def test_inspect_image_is_the_steps_in_order(inspector):
    img = _image(30, 40, 4)
    frame = inspector.preprocess(img)
    seg = inspector.post_process(inspector.probabilities(frame))
    want = inspector.judge(frame, seg)
    got = inspector.inspect_image(img)
    assert got.verdict == want.verdict
    np.testing.assert_array_equal(got.labels, seg.labels)


def test_a_record_names_the_recipe_and_the_model(inspector, tmp_path):
    import cv2

    path = tmp_path / "a.png"
    cv2.imwrite(str(path), _image(20, 20, 5))
    insp, result = inspector.inspect_file(path, station="s1", plugin="p")
    assert result is not None and insp.error is None
    assert (insp.station, insp.plugin, insp.recipe) == ("s1", "p", "tiny")
    assert insp.model_sha256 == inspector.model_sha256 and (insp.width, insp.height) == (20, 20)
    missing, none = inspector.inspect_file(tmp_path / "gone.png")
    assert none is None and missing.verdict.decision.value == "ERROR"
    assert "cannot read file" in missing.error


def test_the_station_stand_in_implements_the_same_steps():
    from inspect_stations.testing import FakeInspector

    fake = FakeInspector(fail_above=100)
    assert isinstance(fake, InspectorBase)
    assert fake.inspect_image(np.full((4, 4), 200, np.uint8)).verdict.decision.value == "FAIL"
    (run,) = fake.forward([np.zeros((4, 4), np.uint8)])
    assert run.error is None and fake.judge_probs(np.zeros((4, 4)), run.probs).verdict


def test_evaluate_with_a_recipe_runs_its_chain(inspector, tmp_path):
    """``inspect evaluate PLUGIN:RECIPE`` scores what the inspector's steps give."""
    import json

    import cv2

    from inspect_core.commands.evaluate import evaluate_inspector, evaluate_model

    root = tmp_path / "ds"
    for sub in ("images", "masks"):
        (root / "val" / sub).mkdir(parents=True)
    for i in range(3):
        cv2.imwrite(str(root / "val" / "images" / f"{i}.png"), _image(32, 40, 10 + i))
        mask = np.zeros((32, 40), np.uint8)
        mask[5:10, 5:12] = 1 + i % 2
        cv2.imwrite(str(root / "val" / "masks" / f"{i}.png"), mask)
    (root / "classes.json").write_text(json.dumps({"classes": ["background", "scratch", "dent"]}))
    assert evaluate_inspector(inspector, root, "val") == evaluate_model(
        inspector.model, root, "val"
    )
