"""A training run: its setup from a :class:`~inspect_core.training.config.TrainConfig`
(datasets and the validation split, :mod:`.holdout`; the settings left open, :mod:`.settings`;
network, started from other weights by :mod:`.init_from`; data loader, optimiser,
learning-rate schedule: :func:`start_run`) and its checkpoints (``last.pt``: :func:`save_last`
and :func:`resume`). The loop itself is :func:`inspect_core.training.trainer.train` (needs
torch).
"""

from __future__ import annotations

import hashlib
import math
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import DataLoader

from inspect_core.data.datasets import Dataset
from inspect_core.errors import InspectError
from inspect_core.training.augment import build_augment
from inspect_core.training.config import TrainConfig
from inspect_core.training.holdout import (
    Holdout,
    Splits,
    not_unseen,
    open_splits,
    seen_by_weights,
)
from inspect_core.training.init_from import InitReport, InitSource, load_init, open_init_source
from inspect_core.training.losses import LOSSES
from inspect_core.training.settings import differences, resolve_settings
from inspect_core.training.trainset import (
    SegTrainSet,
    common_classes,
    dataset_stats,
    worker_init,
)
from inspect_core.training.unet import ModelConfig, build_model, count_parameters

if TYPE_CHECKING:
    import albumentations as A


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def bf16_supported() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@dataclass
class Run:
    """One training run: its data, network, optimiser and schedule, and where it stands (the
    fields after ``clock`` are saved in ``last.pt`` every epoch and restored on resume). ``cfg``
    has every setting chosen (:func:`~inspect_core.training.settings.resolve_settings`); ``auto``
    says which were chosen for the user, and why."""

    cfg: TrainConfig
    auto: dict[str, str]
    holdout: Holdout
    init: InitReport | None
    out: Path
    device: torch.device
    train_ds: Dataset
    val_ds: Dataset  # picks the checkpoint
    seen_ds: Dataset | None  # with --val-groups: the same-distribution check, scored at the end
    mean: float
    std: float
    mcfg: ModelConfig
    model: torch.nn.Module
    use_bf16: bool
    aug: A.Compose  # the seeded augmentation (its random state is saved too)
    gen: torch.Generator
    loader: DataLoader
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    clock: dict[str, float]  # "done": the share of the time budget used (--max-minutes)
    start_epoch: int = 0  # the first epoch of this session (after a resume, not 0)
    best: float = -1.0
    bad_epochs: int = 0
    history: list[dict] = field(default_factory=list)
    elapsed: float = 0.0  # training seconds over every session of the run

    @property
    def channels(self) -> int:
        return self.train_ds.channels

    @property
    def steps(self) -> int:
        return self.cfg.steps_per_epoch or len(self.loader)

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_bf16)


def start_run(cfg: TrainConfig, log: Callable[[str], None]) -> Run:
    """Seed, open the datasets, choose the settings left open, build the network (from
    ``init_from``'s weights when given), its data loader and optimiser, and resume from
    ``last.pt`` when the run folder has one."""
    if cfg.loss not in LOSSES:
        raise InspectError(f"loss {cfg.loss!r}: unknown; the losses are {', '.join(LOSSES)}")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.set_flush_denormal(True)  # subnormal activations and gradients are slow on x86
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    source = open_init_source(cfg.init_from) if cfg.init_from else None
    splits = open_splits(cfg.data, cfg.seed, log, cfg.groups, cfg.val_group_list())
    if source is not None:
        splits = replace(splits, holdout=_unseen_by_weights(splits, source, log))
    train_ds, val_ds = splits.train, splits.val
    stats = dataset_stats(train_ds, train_ds.channels)
    batches = max(1, len(train_ds) // cfg.batch)  # in a pass over the training set
    cfg, auto = resolve_settings(cfg, stats.short_side, batches, source)
    if auto:
        log("settings chosen: " + ", ".join(f"{k} {v}" for k, v in auto.items()))
    mcfg, model, init = _build_model(cfg, train_ds, source, device, log)
    use_bf16 = cfg.bf16 == "on" or (
        cfg.bf16 == "auto" and (device.type == "cuda" or bf16_supported())
    )
    aug, gen, loader = _loader(cfg, train_ds, stats.mean, stats.std)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    clock = {"done": 0.0}
    sched = _schedule(cfg, opt, cfg.steps_per_epoch or len(loader), clock)
    run = Run(
        cfg=cfg,
        auto=auto,
        holdout=splits.holdout,
        init=init,
        out=out,
        device=device,
        train_ds=train_ds,
        val_ds=val_ds,
        seen_ds=splits.seen,
        mean=stats.mean,
        std=stats.std,
        mcfg=mcfg,
        model=model,
        use_bf16=use_bf16,
        aug=aug,
        gen=gen,
        loader=loader,
        opt=opt,
        sched=sched,
        clock=clock,
    )
    resume(run, log)
    log(
        f"{train_ds.name}: {len(train_ds)} train / {len(val_ds)} val images, "
        f"{run.channels} channel(s), {len(train_ds.classes)} classes; "
        f"{count_parameters(model):,} parameters; device {device}, bf16 {use_bf16}, "
        f"threads {torch.get_num_threads()}"
    )
    return run


def _unseen_by_weights(splits: Splits, source: InitSource, log: Callable[[str], None]) -> Holdout:
    """The run's holdout, no longer called unseen where the weights it starts from trained on
    some of its images, or have no card to say what they trained on."""
    holdout = splits.holdout
    if not holdout.unseen:
        return holdout
    if not source.card:
        log(
            f"warning: {source.name} has no model card beside it: what it trained on is "
            "unknown, so the card will not call the held-out groups unseen"
        )
        return not_unseen(holdout, [], source.name)
    seen = seen_by_weights(holdout, source.card, splits.train.name)
    if not seen:
        return holdout
    log(
        f"warning: {source.name} was trained on {len(seen)} of the {holdout.count} "
        f"held-out images ({', '.join(seen[:3])}{', ...' if len(seen) > 3 else ''}): the "
        "card will not call their score one on unseen groups; start from weights that never "
        "saw those groups (or from scratch) for that"
    )
    return not_unseen(holdout, seen, source.name)


def _build_model(
    cfg: TrainConfig,
    train_ds: Dataset,
    source: InitSource | None,
    device: torch.device,
    log: Callable[[str], None],
) -> tuple[ModelConfig, torch.nn.Module, InitReport | None]:
    """The network for ``train_ds``, initialised from ``source`` when given, on ``device``."""
    mcfg = ModelConfig(
        in_channels=train_ds.channels,
        num_classes=len(train_ds.classes),
        width=cfg.width,
        depth=cfg.depth,
        stem_stride=cfg.stem_stride,
        arch=cfg.arch,
    )
    if source is not None and source.config is not None:
        mcfg = replace(mcfg, max_width=source.config.max_width)
    model = build_model(mcfg)
    init = None
    if source is not None:
        diff = differences(cfg, source)
        init = load_init(model, source, train_ds.classes, log, cfg.init_partial, diff)
    model.to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return mcfg, model, init


def _loader(
    cfg: TrainConfig, train_ds: Dataset, mean: float, std: float
) -> tuple[A.Compose, torch.Generator, DataLoader]:
    """The seeded augmentation, the sampler's generator and the loader of training batches."""
    common = common_classes(train_ds) if cfg.augment.rare_crop_bias else None
    aug = build_augment(
        cfg.augment, train_ds.ignore_index, cfg.seed, common, channels=train_ds.channels
    )
    gen = torch.Generator().manual_seed(cfg.seed)
    loader = DataLoader(
        SegTrainSet(train_ds, train_ds.channels, aug, mean, std),
        batch_size=cfg.batch,
        shuffle=True,
        drop_last=len(train_ds) >= cfg.batch,  # a set smaller than a batch is one batch
        generator=gen,
        num_workers=cfg.workers,
        worker_init_fn=worker_init,
        persistent_workers=cfg.workers > 0,
    )
    return aug, gen, loader


def _schedule(
    cfg: TrainConfig, opt: torch.optim.Optimizer, steps: int, clock: dict[str, float]
) -> torch.optim.lr_scheduler.LambdaLR:
    """Warm-up, then cosine decay over the run. With a time budget (--max-minutes) the decay
    follows whichever runs out first, steps or minutes (``clock["done"]``, kept up to date by
    the training loop), so a budget-limited run still ends at a low rate; with no epoch limit
    (epochs = 0) it follows the minutes alone, and the warm-up also ends after 5% of them. (A
    step-only schedule, max_minutes = 0, is the deterministic one.)"""
    total = cfg.epochs * steps
    warm = min(200, total // 20) if total else 200

    def lr_factor(step: int) -> float:
        done = step / total if total else 0.0
        if cfg.max_minutes:
            done = max(done, clock["done"])
        ramp = 1.0 if not total and clock["done"] >= 0.05 else (step + 1) / max(1, warm)
        return min(1.0, ramp) * 0.5 * (1 + math.cos(math.pi * min(done, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)


def resume(run: Run, log: Callable[[str], None]) -> None:
    """Carry on from the run folder's ``last.pt``, if any: weights, optimiser, schedule, the
    random streams of torch, the sampler and the augmentation."""
    last = run.out / "last.pt"
    if not last.is_file():
        return
    ck = torch.load(last, map_location="cpu", weights_only=False)
    _check_same_run(run, ck, last, log)
    run.model.load_state_dict(ck["model"])
    run.opt.load_state_dict(ck["opt"])
    run.sched.load_state_dict(ck["sched"])
    run.start_epoch, run.best, run.bad_epochs = ck["epoch"] + 1, ck["best"], ck["bad_epochs"]
    run.history, run.elapsed = ck["history"], ck["elapsed"]
    torch.set_rng_state(ck["rng"])
    run.gen.set_state(ck["gen"])
    if "aug_rng" in ck:  # checkpoints from before the augmentation was seeded lack it
        run.aug.random_generator.bit_generator.state = ck["aug_rng"][0]
        run.aug.py_random.setstate(ck["aug_rng"][1])
    log(f"resumed from {last} at epoch {run.start_epoch}")


def split_fingerprint(run: Run) -> str:
    """sha256 of what a run trains on and validates on (the dataset folder and both file
    lists): a resumed run must see the same."""
    root = str(Path(run.cfg.data).resolve())
    return hashlib.sha256(
        f"{root} {run.train_ds.fingerprint()} {run.val_ds.fingerprint()}".encode()
    ).hexdigest()


# what a resumed run must keep (--epochs and --max-minutes may grow: that extends a run)
KEPT_SETTINGS = ("loss", "lr", "weight_decay", "batch", "size", "seed", "steps_per_epoch")


def run_settings(run: Run) -> dict:
    """The settings a resumed run must share with the run that wrote ``last.pt``."""
    cfg = run.cfg
    return {
        **{k: getattr(cfg, k) for k in KEPT_SETTINGS},
        "network": run.mcfg.to_dict(),
        "augment": cfg.augment.to_dict(),
    }


def _check_same_run(run: Run, ck: dict, last: Path, log: Callable[[str], None]) -> None:
    """InspectError when ``last.pt`` (``ck``) was written by a run on other data or with other
    settings: resuming would mix them, keep the old best and let the card say otherwise."""
    if "split" not in ck:
        log(f"{last}: written before runs recorded their data; resumed as it is")
        return
    if ck["split"] != split_fingerprint(run):
        changed = "other data or other validation images (dataset, groups or --val-groups)"
    else:
        theirs, ours = ck.get("settings", {}), run_settings(run)
        diff = sorted(k for k in ours if k in theirs and theirs[k] != ours[k])
        if not diff:
            return
        changed = (
            "other settings (" + ", ".join(f"{k} {theirs[k]} -> {ours[k]}" for k in diff) + ")"
        )
    raise InspectError(
        f"{last}: this run folder was trained on {changed} than given now; resuming would mix "
        "them and keep the old best. Give a new --out, or delete the folder to start over"
    )


def save_last(run: Run, epoch: int) -> None:
    """``last.pt``: everything :func:`resume` needs, written whole or not at all."""
    state = {
        "model": run.model.state_dict(),
        "opt": run.opt.state_dict(),
        "sched": run.sched.state_dict(),
        "epoch": epoch,
        "best": run.best,
        "bad_epochs": run.bad_epochs,
        "history": run.history,
        "elapsed": run.elapsed,
        "rng": torch.get_rng_state(),
        "gen": run.gen.get_state(),
        "aug_rng": (run.aug.random_generator.bit_generator.state, run.aug.py_random.getstate()),
        "split": split_fingerprint(run),
        "settings": run_settings(run),
    }
    torch.save(state, run.out / "last.pt.tmp")
    os.replace(run.out / "last.pt.tmp", run.out / "last.pt")
