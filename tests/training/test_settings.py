"""The settings `inspect train` chooses when they are not given: from scratch, and for a
fine-tune (--init-from), and that --help states the same numbers."""

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from seg_kit import save_checkpoint

from inspect_core.cli import cli
from inspect_core.errors import InspectError
from inspect_core.training import settings
from inspect_core.training.config import TrainConfig
from inspect_core.training.init_from import open_init_source
from inspect_core.training.run import _schedule
from inspect_core.training.settings import resolve_settings


def _resolve(source=None, short_side=200, batches=8, **kw):
    return resolve_settings(TrainConfig(data="d", out="o", **kw), short_side, batches, source)


@pytest.fixture
def source(tmp_path):
    save_checkpoint(tmp_path / "src.pt", width=8, depth=3, stem_stride=2)
    return open_init_source(str(tmp_path / "src.pt"))


def test_from_scratch(tmp_path):
    cfg, auto = _resolve()
    assert (cfg.epochs, cfg.lr, cfg.patience, cfg.max_minutes, cfg.steps_per_epoch) == (
        40,
        2e-3,
        8,
        0.0,
        0,
    )
    assert (cfg.width, cfg.depth, cfg.stem_stride, cfg.arch) == (16, 4, 1, "enhanced")
    assert cfg.size == cfg.augment.crop == 192 and set(auto) == {"size"}


def test_fine_tune_by_time_with_the_sources_network(source):
    cfg, auto = _resolve(source)
    assert (cfg.width, cfg.depth, cfg.stem_stride, cfg.arch) == (8, 3, 2, "enhanced")
    assert cfg.epochs == 0 and cfg.max_minutes == settings.FINETUNE_MINUTES == 30
    assert cfg.lr == settings.FINETUNE_LR == 1e-3 and cfg.patience == 0
    assert cfg.steps_per_epoch == settings.BUDGET_MIN_STEPS  # 8 batches a pass: too short
    assert {"width", "epochs", "max_minutes", "lr", "patience", "steps_per_epoch"} <= set(auto)
    assert auto["width"].startswith("8 (from ") and "time" in auto["max_minutes"]
    big, _ = _resolve(source, batches=400)
    assert big.steps_per_epoch == 0  # a pass is long enough


def test_what_is_given_is_kept(source):
    cfg, auto = _resolve(
        source, width=16, epochs=30, lr=5e-4, patience=3, size=128, steps_per_epoch=5
    )
    assert (cfg.width, cfg.depth, cfg.epochs, cfg.lr, cfg.patience) == (16, 3, 30, 5e-4, 3)
    assert cfg.max_minutes == 0.0  # --epochs given: no time budget unless asked for
    assert cfg.size == cfg.augment.crop == 128 and cfg.steps_per_epoch == 5
    assert "width" not in auto and "epochs" not in auto


def test_no_epoch_limit_needs_a_budget():
    with pytest.raises(InspectError, match="give --max-minutes"):
        _resolve(epochs=0, max_minutes=0.0)
    assert _resolve(epochs=0)[0].max_minutes == 30


@pytest.mark.parametrize("side,crop", [(200, 192), (1200, 256), (40, 64), (300, 256), (130, 128)])
def test_crop_fits_the_images(side, crop):
    assert _resolve(short_side=side)[0].size == crop


def test_schedule_with_no_epoch_limit_follows_the_clock():
    cfg, _ = _resolve(epochs=0, max_minutes=10.0)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    clock = {"done": 0.0}
    sched = _schedule(cfg, opt, 10, clock)
    factor = sched.lr_lambdas[0]
    assert factor(0) == pytest.approx(1 / 200)  # warm-up
    clock["done"] = 0.06
    assert factor(10) == pytest.approx(
        0.5 * (1 + torch.cos(torch.tensor(0.06 * 3.14159265)).item()), rel=1e-4
    )
    clock["done"] = 1.0
    assert factor(10_000) == pytest.approx(0.0, abs=1e-9)


def test_help_states_the_defaults():
    text = " ".join(CliRunner().invoke(cli, ["train", "--help"], terminal_width=200).output.split())
    for says in (
        f"default: {settings.SCRATCH_EPOCHS};",
        f"--max-minutes {settings.FINETUNE_MINUTES:g}",
        "default: 2e-3; 1e-3 with --init-from",
        f"default: {settings.SCRATCH_PATIENCE}; 0 with --init-from",
        f"between {settings.MIN_CROP} and {settings.MAX_CROP}",
        f"multiple of {settings.CROP_STEP}",
        f"at least {settings.BUDGET_MIN_STEPS}",
        f"default: {settings.NETWORK.width}; with --init-from, that of its weights",
        f"default: {settings.NETWORK.depth}; with --init-from",
    ):
        assert says in text, says
    assert (settings.SCRATCH_LR, settings.FINETUNE_LR) == (2e-3, 1e-3)  # as the help says


def test_the_command_leaves_what_is_not_given_to_the_run(tmp_path, monkeypatch):
    seen: list[TrainConfig] = []

    def fake_train(cfg, log, progress):
        seen.append(cfg)
        return {"validation": {"miou": 0.5, "mean_dice": 0.5}}

    monkeypatch.setattr("inspect_core.training.trainer.train", fake_train)
    args = ["train", "--data", str(tmp_path), "--out", str(tmp_path / "o")]
    res = CliRunner().invoke(cli, [*args, "--init-from", "industrial:steel"])
    assert res.exit_code == 0, res.output
    c = seen[-1]
    assert c.init_from == "industrial:steel"
    assert (c.width, c.depth, c.stem_stride, c.arch, c.epochs, c.lr, c.size) == (None,) * 7
    assert (c.patience, c.max_minutes, c.steps_per_epoch) == (None,) * 3
    res = CliRunner().invoke(cli, [*args, "--width", "16", "--stem-stride", "1", "--epochs", "3"])
    c = seen[-1]
    assert (c.width, c.stem_stride, c.epochs, c.depth) == (16, 1, 3, None)
    assert Path(c.out) == tmp_path / "o"


def test_the_run_settings_import_neither_torch_nor_the_training_loop():
    """``TrainConfig`` and ``AugmentConfig`` live in a module of the standard library only
    (issue 23, item 3): naming them loads no torch, no albumentations, no trainer."""
    import subprocess
    import sys

    code = (
        "import sys; from inspect_core.training.config import TrainConfig, AugmentConfig; "
        "TrainConfig(data='d', out='o'); "
        "print(sorted(m for m in ('torch', 'albumentations', 'inspect_core.training.trainer') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr
