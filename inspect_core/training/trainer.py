"""Training: Dice + cross-entropy (or Lovász + CE to fine-tune), Adam, cosine schedule, early
stopping, resume (needs torch).

``train(TrainConfig(...))`` writes into ``out``::

    last.pt      everything needed to resume after an interruption (written every epoch)
    best.pt      the weights with the best validation mIoU
    model.pt     the best weights and network settings (what ``--init-from`` starts from)
    model.onnx   best weights exported, parity-checked, metadata embedded
    model.json   the model card
    train.log    one JSON line per epoch

CPU speed: channels_last memory format, bf16 autocast where the CPU has native bf16, and
training crops (a fully convolutional network validated at full resolution). A run's setup
(data, network, optimiser, schedule) and its checkpoints are in :mod:`.run`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from itertools import count

import cv2
import numpy as np
import torch

from inspect_core.data.datasets import Dataset, to_channels
from inspect_core.data.metrics import SegmentationScores
from inspect_core.runtime.onnx_model import normalize  # the one normalisation, as inference
from inspect_core.training.config import TrainConfig
from inspect_core.training.export import export_onnx
from inspect_core.training.losses import segmentation_loss
from inspect_core.training.model_card import write_card
from inspect_core.training.run import Run, save_last, start_run
from inspect_core.training.unet import build_model, zero_dead_weights


@torch.no_grad()
def validate(
    model,
    ds: Dataset,
    channels: int,
    mean: float,
    std: float,
    device,
    max_side: int = 0,
    autocast: Callable[[], AbstractContextManager] = nullcontext,
) -> dict:
    """The segmentation scores of ``model`` on every image of ``ds`` (:class:`SegmentationScores`
    summary: mIoU, mean Dice, per class), at native size or downscaled to ``max_side``."""
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


def train(cfg: TrainConfig, log: Callable[[str], None] = print, progress=None) -> dict:
    """Train, export and write the card; returns the card as a dict.

    ``progress(epoch, step, steps, mean loss)`` is called after every step. A run folder
    with a ``last.pt`` is resumed where it stopped."""
    run = start_run(cfg, log)
    epochs = range(run.start_epoch, run.cfg.epochs) if run.cfg.epochs else count(run.start_epoch)
    if stopped := _stopped_before(run):  # a rerun of a finished run exports, trains no more
        log(f"{run.out}: {stopped}; exporting its best weights")
        epochs = range(0)
    for epoch in epochs:
        row = _train_epoch(run, epoch, progress)
        if not _end_epoch(run, epoch, row, log):
            break
    return _export(run)


def train_step(
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    ignore_index: int,
    autocast: Callable[[], AbstractContextManager] = nullcontext,
    loss_name: str = "dice_ce",
) -> float:
    """One optimiser step on the batch ``x`` (images) / ``y`` (masks): forward (under
    ``autocast``), the loss ``loss_name`` (Dice + cross-entropy by default), backward, update.
    Returns the loss. (What ``bench/train_speed.py`` times.)"""
    with autocast():
        logits = model(x)
    loss = segmentation_loss(loss_name, logits, y, ignore_index)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


def _train_epoch(run: Run, epoch: int, progress) -> dict:
    """One epoch of ``run.steps`` optimiser steps, fewer when the time budget runs out within
    it; returns the epoch's row of the log."""
    cfg, model, steps = run.cfg, run.model, run.steps
    t0 = time.perf_counter()
    model.train()
    running, done, images = 0.0, 0, 0
    it = iter(run.loader)
    for step in range(steps):
        try:
            x, y = next(it)
        except StopIteration:
            it = iter(run.loader)
            x, y = next(it)
        x, y = x.to(run.device), y.to(run.device)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        loss = train_step(model, run.opt, x, y, run.train_ds.ignore_index, run.autocast, cfg.loss)
        if cfg.max_minutes:
            run.clock["done"] = (run.elapsed + time.perf_counter() - t0) / (60 * cfg.max_minutes)
        run.sched.step()
        running, done, images = running + loss, step + 1, images + len(x)
        if progress:
            progress(epoch, done, steps, running / done)
        if cfg.max_minutes and run.clock["done"] >= 1.0:
            break
    zero_dead_weights(model)  # weight decay makes them; they would slow every later step
    dt = time.perf_counter() - t0
    run.elapsed += dt
    return {
        "epoch": epoch,
        "loss": running / done,
        "seconds": round(dt, 1),
        "images_per_s": round(images / dt, 2),
        "lr": run.opt.param_groups[0]["lr"],
    }


def _end_epoch(run: Run, epoch: int, row: dict, log: Callable[[str], None]) -> bool:
    """Validate (every ``val_every`` epochs and after the last), keep the best weights, log
    ``row``, save ``last.pt``; False when the run stops early (patience or time budget)."""
    cfg = run.cfg
    out_of_time = bool(cfg.max_minutes) and run.elapsed / 60 >= cfg.max_minutes
    if (epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs or out_of_time:
        val = validate(
            run.model,
            run.val_ds,
            run.channels,
            run.mean,
            run.std,
            run.device,
            cfg.val_max_side,
            run.autocast,
        )
        row.update(val_miou=round(val["miou"], 4), val_mean_dice=round(val["mean_dice"], 4))
        if val["miou"] > run.best:
            run.best, run.bad_epochs = val["miou"], 0
            best = {"model": run.model.state_dict(), "config": run.mcfg.to_dict()}
            torch.save({**best, "epoch": epoch, "val": val}, run.out / "best.pt")
        else:
            run.bad_epochs += 1
    run.history.append(row)
    with open(run.out / "train.log", "a") as f:
        f.write(json.dumps(row) + "\n")
    log(json.dumps(row))
    save_last(run, epoch)
    if cfg.patience and run.bad_epochs >= cfg.patience:
        log(f"early stop: no val improvement for {cfg.patience} epochs")
        return False
    if out_of_time:
        log(f"time budget of {cfg.max_minutes} min reached")
        return False
    return True


def _stopped_before(run: Run) -> str:
    """Why a resumed run stopped already and must not train on ('' when it may): its time
    budget is spent, or its patience ran out. (More epochs than it had run on.)"""
    cfg = run.cfg
    if not run.history:
        return ""
    if cfg.max_minutes and run.elapsed / 60 >= cfg.max_minutes:
        return f"its time budget of {cfg.max_minutes:g} min was used up"
    if cfg.patience and run.bad_epochs >= cfg.patience:
        return f"it stopped early (no val improvement for {cfg.patience} epochs)"
    return ""


def _export(run: Run) -> dict:
    """Export the best weights to ``model.onnx`` (and ``model.pt``), write the card."""
    out, mcfg, train_ds, val_ds = run.out, run.mcfg, run.train_ds, run.val_ds
    best_ck = torch.load(out / "best.pt", map_location="cpu", weights_only=False)
    export_model = build_model(mcfg)
    export_model.load_state_dict(best_ck["model"])
    export_model.eval()
    torch.save({"model": export_model.state_dict(), "config": mcfg.to_dict()}, out / "model.pt")
    meta = {
        "classes": train_ds.classes,
        "mean": run.mean,
        "std": run.std,
        "channels": run.channels,
        "input_size": run.cfg.size,
        "stride": export_model.stride,
        "ignore_index": train_ds.ignore_index,
    }
    samples = [
        normalize(to_channels(val_ds.load(i)[0], run.channels), run.mean, run.std)
        for i in range(min(4, len(val_ds)))
    ]
    parity = export_onnx(export_model, out / "model.onnx", meta, samples)
    seen = None
    if run.seen_ds is not None:
        seen = validate(
            export_model,
            run.seen_ds,
            run.channels,
            run.mean,
            run.std,
            torch.device("cpu"),
            run.cfg.val_max_side,
        )
        seen["images"] = len(run.seen_ds)
    return write_card(run, best_ck["val"], parity, meta, seen)
