"""`inspect train --init-from`: a run trains the network of the weights it starts from, loads
them whole or says loudly what it could not load and why."""

import json

import numpy as np
import pytest
import torch
from seg_kit import save_checkpoint, write_dataset

from inspect_core.errors import InspectError
from inspect_core.training.config import TrainConfig
from inspect_core.training.init_from import InitError, load_init, open_init_source
from inspect_core.training.run import start_run
from inspect_core.training.unet import ModelConfig, build_model


@pytest.fixture(autouse=True)
def _restore_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)  # start_run(threads=1) sets the process-wide count


def _cfg(data, out, **kw) -> TrainConfig:
    return TrainConfig(data=str(data), out=str(out), batch=2, workers=0, threads=1, **kw)


@pytest.fixture
def gray(tmp_path):
    return write_dataset(tmp_path / "gray", {"train": 6, "val": 2})


def test_a_run_takes_the_network_of_the_weights_it_starts_from(gray, tmp_path):
    save_checkpoint(tmp_path / "src.pt", width=8, depth=2, stem_stride=2, arch="plain")
    log: list[str] = []
    run = start_run(_cfg(gray, tmp_path / "run", init_from=str(tmp_path / "src.pt")), log.append)
    m = run.mcfg
    assert (m.width, m.depth, m.stem_stride, m.arch) == (8, 2, 2, "plain")
    assert run.init.loaded == run.init.tensors == len(run.model.state_dict())
    assert not run.init.reinitialised and not run.init.adapted
    assert run.auto["width"].startswith("8 (from ") and run.auto["stem_stride"].startswith("2 ")
    assert any(line.startswith("--init-from") and "its checkpoint" in line for line in log)
    assert any(f"loaded {run.init.tensors} of {run.init.tensors}" in line for line in log)


def test_a_width_given_that_does_not_fit_is_an_error_unless_partial(gray, tmp_path):
    save_checkpoint(tmp_path / "src.pt", width=8, depth=2)
    cfg = _cfg(gray, tmp_path / "run", init_from=str(tmp_path / "src.pt"), width=4)
    with pytest.raises(InitError) as e:
        start_run(cfg, print)
    text = str(e.value)
    assert "tensors do not fit" in text and "stem.0.weight: (8, 1, 3, 3) in the source" in text
    assert "width 4 given, the source's is 8" in text and "--init-partial" in text
    assert len(text.splitlines()) > 3  # one problem a line
    log: list[str] = []
    run = start_run(
        _cfg(gray, tmp_path / "run2", init_from=cfg.init_from, width=4, init_partial=True),
        log.append,
    )
    assert run.mcfg.width == 4 and run.init.reinitialised
    assert all("(--init-partial)" in why for why in run.init.reinitialised.values())
    assert run.init.loaded + len(run.init.reinitialised) == run.init.tensors
    assert any(line.startswith("  from scratch stem.0.weight:") for line in log)


def test_head_for_other_classes_and_first_layer_for_colour(tmp_path):
    """Gray weights with 4 classes into a colour network with 2: the head starts from scratch,
    the first layer sees a colour image as the source saw its gray version."""
    src = save_checkpoint(tmp_path / "steel.pt", card_classes=["bg", "a", "b", "c"], num_classes=4)
    dst = build_model(ModelConfig(in_channels=3, num_classes=2, width=4, depth=2))
    head_before = dst.head.weight.detach().clone()
    log: list[str] = []
    report = load_init(
        dst, open_init_source(str(tmp_path / "steel.pt")), ["bg", "crack"], log.append
    )
    assert torch.equal(dst.head.weight, head_before)
    assert set(report.reinitialised) == {"head.weight", "head.bias"}
    assert (
        "classes differ: the data has 2 (bg, crack), the source 4 (bg, a, b, c)"
        in (report.reinitialised["head.weight"])
    )
    assert (
        list(report.adapted) == ["stem.0.weight"]
        and "3 (colour), the source 1 (gray)" in (report.adapted["stem.0.weight"])
    )
    assert report.loaded == report.tensors - 3
    colour = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        seen = dst.stem[0](colour)
        as_gray = src.stem[0](colour.mean(1, keepdim=True))
    torch.testing.assert_close(seen, as_gray, rtol=1e-5, atol=1e-6)
    assert any("from scratch head.weight: classes differ" in line for line in log)
    assert any("adapted stem.0.weight: image channels differ" in line for line in log)


def test_same_number_of_classes_under_other_names_is_a_new_head(tmp_path):
    save_checkpoint(tmp_path / "m.pt", card_classes=["bg", "scratch"])
    dst = build_model(ModelConfig(width=4, depth=2))
    report = load_init(dst, open_init_source(str(tmp_path / "m.pt")), ["bg", "crack"], print)
    assert set(report.reinitialised) == {"head.weight", "head.bias"}
    same = load_init(dst, open_init_source(str(tmp_path / "m.pt")), ["bg", "scratch"], print)
    assert not same.reinitialised and same.loaded == same.tensors


def test_network_read_from_the_weights_when_the_checkpoint_has_no_config(tmp_path):
    save_checkpoint(tmp_path / "last.pt", with_config=False, width=6, depth=3, num_classes=3)
    src = open_init_source(str(tmp_path / "last.pt"))
    c = src.config
    assert (c.width, c.depth, c.num_classes, c.arch, c.stem_stride) == (6, 3, 3, "enhanced", 1)
    assert "stem stride not recorded: 1 assumed" in src.config_from
    dst = build_model(c)
    assert load_init(dst, src, ["a", "b", "c"], print).loaded == len(dst.state_dict())


def test_stem_stride_from_the_onnx_beside_it(tmp_path):
    import onnx
    from onnx import helper

    save_checkpoint(tmp_path / "m.pt", with_config=False, depth=2)
    meta = {"classes": ["bg", "x"], "stride": 8, "channels": 1}
    graph = helper.make_graph([], "g", [], [])
    proto = helper.make_model(graph)
    proto.metadata_props.add(key="inspect.meta", value=json.dumps(meta))
    onnx.save(proto, str(tmp_path / "m.onnx"))
    src = open_init_source(str(tmp_path / "m.onnx"))  # the .pt beside it
    assert src.weights == tmp_path / "m.pt" and src.config.stem_stride == 2
    assert src.classes == ["bg", "x"] and "stride in its .onnx" in src.config_from


def test_a_shipped_recipe_by_name(tmp_path):
    src = open_init_source("industrial:steel")
    assert src.weights.name == "steel.pt" and src.config_from == "its checkpoint"
    c = src.config
    assert (c.width, c.stem_stride, c.in_channels) == (32, 2, 1)
    assert src.classes[0] == "background" and len(src.classes) == 4


def test_missing_or_foreign_weights_are_clear(tmp_path):
    with pytest.raises(InspectError, match="no weights to start from"):
        open_init_source(str(tmp_path / "nothing.onnx"))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InspectError, match="not a torch checkpoint"):
        open_init_source(str(tmp_path / "junk.pt"))
    torch.save({"model": {"fc.weight": torch.zeros(2, 2)}}, tmp_path / "other.pt")
    src = open_init_source(str(tmp_path / "other.pt"))
    assert src.config is None
    with pytest.raises(InitError, match="not a network of this architecture"):
        load_init(build_model(ModelConfig(width=4, depth=2)), src, ["a", "b"], print)


def test_dead_weights_in_the_source_are_zeroed(tmp_path):
    src = save_checkpoint(tmp_path / "m.pt")
    state = src.state_dict()
    state["enc.0.body.0.0.weight"].view(-1)[:5] = 1e-35
    torch.save({"model": state, "config": src.cfg.to_dict()}, tmp_path / "m.pt")
    dst = build_model(ModelConfig(width=4, depth=2))
    report = load_init(dst, open_init_source(str(tmp_path / "m.pt")), ["a", "b"], print)
    assert report.dead_weights_zeroed == 5
    w = dst.state_dict()["enc.0.body.0.0.weight"]
    assert not ((w.abs() < 1e-30) & (w != 0)).any() and np.isfinite(w.numpy()).all()


def test_a_stem_stride_given_that_differs_loads_and_says_so(gray, tmp_path):
    save_checkpoint(tmp_path / "src.pt", stem_stride=2)
    log: list[str] = []
    cfg = _cfg(gray, tmp_path / "run", init_from=str(tmp_path / "src.pt"), stem_stride=1)
    run = start_run(cfg, log.append)
    assert run.mcfg.stem_stride == 1 and run.init.loaded == run.init.tensors
    assert run.init.differences == ["stem_stride 1 given, the source's is 2"]
    assert any("network differs from the source's: stem_stride 1 given" in line for line in log)
