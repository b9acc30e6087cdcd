"""Training: Dice + cross-entropy, Adam, cosine schedule, early stopping, resume (needs torch).

``train(TrainConfig(...))`` writes into ``out``::

    last.pt      everything needed to resume after an interruption (written every epoch)
    best.pt      the weights with the best validation mIoU
    model.onnx   best weights exported, parity-checked, metadata embedded
    model.json   the model card
    train.log    one JSON line per epoch

CPU speed: channels_last memory format, bf16 autocast where the CPU has native bf16, and
training crops (a fully convolutional network validated at full resolution).
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from inspect_core.data.datasets import Dataset, open_dataset, to_channels
from inspect_core.data.metrics import SegmentationScores
from inspect_core.errors import DataError, InspectError
from inspect_core.runtime.onnx_model import (
    normalize,
)  # the one normalisation, shared with inference
from inspect_core.training.augment import AugmentConfig, build_augment
from inspect_core.training.losses import dice_ce_loss
from inspect_core.training.unet import ModelConfig, build_model, count_parameters, zero_dead_weights


@dataclass
class TrainConfig:
    data: str
    out: str
    epochs: int = 40
    batch: int = 8
    size: int = 256  # training crop
    width: int = 16
    depth: int = 4
    stem_stride: int = 1
    arch: str = "enhanced"
    lr: float = 2e-3
    weight_decay: float = 1e-4
    patience: int = 8  # epochs without val improvement before stopping
    seed: int = 0
    workers: int = 1
    threads: int = 0  # 0 = all cores
    init_from: str | None = None
    bf16: str = "auto"  # auto | on | off
    channels_last: bool = True
    max_minutes: float = 0.0  # stop (keeping the best) after this much time; 0 = no limit
    steps_per_epoch: int = 0  # 0 = one pass over the training set
    val_every: int = 1
    val_max_side: int = 0  # validate on images downscaled to this side (0 = native)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def to_dict(self) -> dict:
        return asdict(self)


class SegTrainSet(TorchDataset):
    """Decodes each image once and keeps it in memory; augments on every access."""

    def __init__(self, ds: Dataset, channels: int, aug, mean: float, std: float):
        self.ds, self.channels, self.aug = ds, channels, aug
        self.mean, self.std = mean, std
        self.cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int):
        if i not in self.cache:
            img, mask = self.ds.load(i)
            self.cache[i] = (to_channels(img, self.channels), mask)
        img, mask = self.cache[i]
        if self.aug is not None:
            r = self.aug(image=img, mask=mask)
            img, mask = r["image"], r["mask"]
        x = normalize(img, self.mean, self.std)
        return torch.from_numpy(x), torch.from_numpy(np.ascontiguousarray(mask)).long()


def dataset_stats(ds: Dataset, channels: int, n: int = 200) -> tuple[float, float]:
    """Mean and std of the training images (one value for all channels), from a subsample."""
    idx = np.linspace(0, len(ds) - 1, min(n, len(ds))).astype(int)
    vals = [
        to_channels(ds.load(int(i))[0], channels).astype(np.float32).ravel()[::17] / 255
        for i in idx
    ]
    v = np.concatenate(vals)
    return float(v.mean()), float(max(v.std(), 1e-3))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _worker_init(worker_id: int) -> None:
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)
    # each worker holds a copy of the augmentation: give each its own stream
    info = torch.utils.data.get_worker_info()
    aug = getattr(info.dataset, "aug", None) if info is not None else None
    if aug is not None:
        aug.set_random_state(np.random.default_rng(s), random.Random(s))


def bf16_supported() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@torch.no_grad()
def validate(
    model,
    ds: Dataset,
    channels: int,
    mean: float,
    std: float,
    device,
    max_side: int = 0,
    autocast=None,
) -> dict:
    import cv2

    model.eval()
    scores = SegmentationScores(ds.classes)
    for i in range(len(ds)):
        img, mask = ds.load(i)
        img = to_channels(img, channels)
        if max_side and max(img.shape[:2]) > max_side:
            f = max_side / max(img.shape[:2])
            img = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
            mask = cv2.resize(mask, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_NEAREST)
        x = torch.from_numpy(normalize(img, mean, std))[None].to(device)
        if device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast():
            logits = model(x)
        pred = logits.float().argmax(1)[0].cpu().numpy().astype(np.uint8)
        scores.update(pred, mask, ds.ignore_index)
    model.train()
    return scores.summary()


def _load_init(model, init_from: str, log: Callable[[str], None]) -> None:
    """Load weights from a checkpoint (.pt) or a model whose .pt lies beside its .onnx.

    Layers whose shape differs (a new set of classes changes the head) keep their fresh
    initialisation.
    """
    p = Path(init_from)
    if p.suffix == ".onnx":
        p = p.with_suffix(".pt")
    if not p.is_file():
        raise InspectError(
            f"{init_from}: no weights to start from (expected a .pt checkpoint beside the .onnx)"
        )
    state = torch.load(p, map_location="cpu", weights_only=False)
    state = state.get("model", state)
    own = model.state_dict()
    keep = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    skipped = sorted(set(own) - set(keep))
    own.update(keep)
    model.load_state_dict(own)
    flushed = zero_dead_weights(model)
    if flushed:
        log(f"set {flushed:,} dead weights (|w| < 1e-30) from {p} to zero (they slow CPUs down)")
    fresh = f" ({', '.join(skipped[:4])}{'...' if len(skipped) > 4 else ''})" if skipped else ""
    log(f"initialised {len(keep)} tensors from {p}; re-initialised {len(skipped)}{fresh}")


def train(cfg: TrainConfig, log: Callable[[str], None] = print, progress=None) -> dict:
    """Train, export and write the card; returns the card as a dict."""
    from inspect_core.cards import write_card
    from inspect_core.training.export import export_onnx

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.set_flush_denormal(True)  # subnormal activations and gradients are slow on x86
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    train_ds = open_dataset(cfg.data, "train")
    try:
        val_ds = open_dataset(cfg.data, "val")
    except DataError:
        val_ds = open_dataset(cfg.data, "test")
    channels = train_ds.channels
    mean, std = dataset_stats(train_ds, channels)
    mcfg = ModelConfig(
        in_channels=channels,
        num_classes=len(train_ds.classes),
        width=cfg.width,
        depth=cfg.depth,
        stem_stride=cfg.stem_stride,
        arch=cfg.arch,
    )
    model = build_model(mcfg)
    if cfg.init_from:
        _load_init(model, cfg.init_from, log)
    model.to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    use_bf16 = cfg.bf16 == "on" or (
        cfg.bf16 == "auto" and (device.type == "cuda" or bf16_supported())
    )

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16)

    aug = build_augment(cfg.augment, train_ds.ignore_index, seed=cfg.seed)
    tset = SegTrainSet(train_ds, channels, aug, mean, std)
    g = torch.Generator().manual_seed(cfg.seed)
    loader = DataLoader(
        tset,
        batch_size=cfg.batch,
        shuffle=True,
        drop_last=True,
        generator=g,
        num_workers=cfg.workers,
        worker_init_fn=_worker_init,
        persistent_workers=cfg.workers > 0,
    )
    steps = cfg.steps_per_epoch or len(loader)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = max(1, cfg.epochs * steps)
    warm = min(200, total // 20)
    # Cosine decay over the run. With a time budget (--max-minutes) the decay follows whichever
    # runs out first, steps or minutes, so a budget-limited run still ends at a low rate.
    # (A step-only schedule, max_minutes = 0, is the deterministic one.)
    clock = {"done": 0.0}

    def lr_factor(step: int) -> float:
        done = step / total
        if cfg.max_minutes:
            done = max(done, clock["done"])
        return min(1.0, (step + 1) / max(1, warm)) * 0.5 * (1 + math.cos(math.pi * min(done, 1.0)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)

    start_epoch, best, bad_epochs, history, elapsed = 0, -1.0, 0, [], 0.0
    last = out / "last.pt"
    if last.is_file():
        ck = torch.load(last, map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        start_epoch, best, bad_epochs = ck["epoch"] + 1, ck["best"], ck["bad_epochs"]
        history, elapsed = ck["history"], ck["elapsed"]
        torch.set_rng_state(ck["rng"])
        g.set_state(ck["gen"])
        if "aug_rng" in ck:  # checkpoints from before the augmentation was seeded lack it
            aug.random_generator.bit_generator.state = ck["aug_rng"][0]
            aug.py_random.setstate(ck["aug_rng"][1])
        log(f"resumed from {last} at epoch {start_epoch}")

    log(
        f"{train_ds.name}: {len(train_ds)} train / {len(val_ds)} val images, {channels} channel(s), "
        f"{len(train_ds.classes)} classes; {count_parameters(model):,} parameters; "
        f"device {device}, bf16 {use_bf16}, threads {torch.get_num_threads()}"
    )
    images_seen, t_train = 0, 0.0
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        model.train()
        running = 0.0
        it = iter(loader)
        for step in range(steps):
            try:
                x, y = next(it)
            except StopIteration:
                it = iter(loader)
                x, y = next(it)
            x, y = x.to(device), y.to(device)
            if cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast():
                logits = model(x)
            loss = dice_ce_loss(logits, y, train_ds.ignore_index)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if cfg.max_minutes:
                clock["done"] = (elapsed + time.perf_counter() - t0) / (60 * cfg.max_minutes)
            sched.step()
            running += loss.item()
            images_seen += x.shape[0]
            if progress:
                progress(epoch, step + 1, steps, running / (step + 1))
        zero_dead_weights(model)  # weight decay makes them; they would slow every later step
        dt = time.perf_counter() - t0
        t_train += dt
        elapsed += dt
        row = {
            "epoch": epoch,
            "loss": running / steps,
            "seconds": round(dt, 1),
            "images_per_s": round(steps * cfg.batch / dt, 2),
            "lr": opt.param_groups[0]["lr"],
        }
        if (epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs:
            val = validate(model, val_ds, channels, mean, std, device, cfg.val_max_side, autocast)
            row.update(val_miou=round(val["miou"], 4), val_mean_dice=round(val["mean_dice"], 4))
            if val["miou"] > best:
                best, bad_epochs = val["miou"], 0
                torch.save(
                    {
                        "model": model.state_dict(),
                        "config": mcfg.to_dict(),
                        "epoch": epoch,
                        "val": val,
                    },
                    out / "best.pt",
                )
            else:
                bad_epochs += 1
        history.append(row)
        with open(out / "train.log", "a") as f:
            f.write(json.dumps(row) + "\n")
        log(json.dumps(row))
        torch.save(
            {
                "model": model.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "epoch": epoch,
                "best": best,
                "bad_epochs": bad_epochs,
                "history": history,
                "elapsed": elapsed,
                "rng": torch.get_rng_state(),
                "gen": g.get_state(),
                "aug_rng": (aug.random_generator.bit_generator.state, aug.py_random.getstate()),
            },
            out / "last.pt.tmp",
        )
        os.replace(out / "last.pt.tmp", last)
        if bad_epochs >= cfg.patience:
            log(f"early stop: no val improvement for {cfg.patience} epochs")
            break
        if cfg.max_minutes and elapsed / 60 >= cfg.max_minutes:
            log(f"time budget of {cfg.max_minutes} min reached")
            break

    best_ck = torch.load(out / "best.pt", map_location="cpu", weights_only=False)
    export_model = build_model(mcfg)
    export_model.load_state_dict(best_ck["model"])
    export_model.eval()
    torch.save({"model": export_model.state_dict(), "config": mcfg.to_dict()}, out / "model.pt")
    meta = {
        "classes": train_ds.classes,
        "mean": mean,
        "std": std,
        "channels": channels,
        "input_size": cfg.size,
        "stride": export_model.stride,
        "ignore_index": train_ds.ignore_index,
    }
    samples = [
        normalize(to_channels(val_ds.load(i)[0], channels), mean, std)
        for i in range(min(4, len(val_ds)))
    ]
    parity = export_onnx(export_model, out / "model.onnx", meta, samples)
    ips = [h["images_per_s"] for h in history if "images_per_s" in h]
    return write_card(
        out,
        cfg,
        mcfg,
        train_ds,
        best_ck["val"],
        history,
        elapsed,
        parity,
        float(np.median(ips)) if ips else 0.0,
        meta,
    )
