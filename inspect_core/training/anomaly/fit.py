"""``inspect train --kind anomaly``: a good-only model from a dataset folder (torch).

Split the good images (:mod:`.split`); refuse a feature source trained on this product
(:mod:`.sources`); build the memory bank from the bank images (:mod:`.memory`); score the fit
images and fit the threshold to the false-reject target (:mod:`.threshold`); export
:class:`~inspect_core.training.anomaly.network.AnomalyNet` to ONNX (:mod:`.export`); score the check
images with the exported file; write the card (:mod:`.card`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inspect_core.anomaly.card import BankInfo, CheckResult, write_anomaly_card
from inspect_core.anomaly.config import CLASSES, AnomalyConfig
from inspect_core.anomaly.sources import FeatureSource, resolve_source
from inspect_core.anomaly.split import GoodSplit, split_good
from inspect_core.anomaly.threshold import false_reject_rate, fit_threshold, refine_threshold
from inspect_core.data.datasets import Dataset, open_dataset
from inspect_core.data.detection_metrics import detection_scores
from inspect_core.training.anomaly.export import export_anomaly
from inspect_core.training.anomaly.features import FEATURE_STRIDE, STRIDE, build_features
from inspect_core.training.anomaly.memory import build_bank, prepare
from inspect_core.training.anomaly.network import AnomalyNet
from inspect_core.training.anomaly.synthetic import NetworkInfo, SyntheticNet, train_synthetic

Log = Callable[[str], None]


@torch.no_grad()
def torch_maps(net: AnomalyNet | SyntheticNet, ds: Dataset) -> list[np.ndarray]:
    """The anomaly map (H, W) of every image of ``ds``, by the torch network."""
    return [net.score(prepare(ds.load(i)[0], ds.channels))[0, 0].numpy() for i in range(len(ds))]


def onnx_maps(path: Path, ds: Dataset, threads: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The ``anomaly_map`` output of the exported file for every image of ``ds``, with the
    masks."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    maps, masks = [], []
    for i in range(len(ds)):
        img, mask = ds.load(i)
        x = prepare(img, ds.channels).numpy()
        maps.append(sess.run(["anomaly_map"], {"image": x})[0][0, 0])
        masks.append(mask)
    return maps, masks


def check_scores(path: Path, split: GoodSplit, value: float, threads: int) -> CheckResult:
    """False-reject rate of the check split's good images, and detection scores of all."""
    maps, masks = onnx_maps(path, split.check, threads)
    ignore = split.check.ignore_index
    good = [float(m.max()) for m, k in zip(maps, masks) if not ((k > 0) & (k != ignore)).any()]
    frr = false_reject_rate(np.array(good), value) if good else None
    scores = detection_scores(maps, masks, ignore).as_json()
    return CheckResult(len(good), frr, scores)


def model_meta(cfg: AnomalyConfig, ds: Dataset) -> dict[str, Any]:
    """The ``inspect.meta`` of the exported file: the runtime divides by 255 only (the graph
    standardises each image), and cuts images above ``tile_size`` into tiles."""
    sides = sorted(min(ds.load(i)[0].shape[:2]) for i in range(min(len(ds), 20)))
    return {
        "classes": CLASSES,
        "mean": 0.0,
        "std": 1.0,
        "channels": ds.channels,
        "input_size": int(sides[len(sides) // 2]) // STRIDE * STRIDE or STRIDE,
        "stride": STRIDE,
        "tile_size": cfg.tile_size,
        "kind": "anomaly",
    }


def build_net(
    cfg: AnomalyConfig, source: FeatureSource, split: GoodSplit, log: Log
) -> tuple[AnomalyNet | SyntheticNet, BankInfo | NetworkInfo]:
    """The scoring network from the bank images: a U-Net trained on synthetic defects
    (``synthetic``), or the memory bank of the source's features."""
    if source.kind == "synthetic":
        budget = (cfg.minutes, cfg.steps)
        return train_synthetic(split.bank, cfg.net_width, cfg.crop, budget, cfg.seed, log)
    features = build_features(source, cfg.seed)
    bank = build_bank(features, split.bank, cfg.bank_size, cfg.pool_size, cfg.seed, log)
    net = AnomalyNet(features, bank.patches, bank.center, bank.spread, cfg.blur_sigma, cfg.chunk)
    info = BankInfo(
        int(bank.patches.shape[0]), bank.pool, int(bank.patches.shape[1]), FEATURE_STRIDE
    )
    return net.eval(), info


def train_anomaly(cfg: AnomalyConfig, log: Log = print) -> dict[str, Any]:
    """Train, export and card a good-only model as ``cfg`` says; returns the card."""
    started = time.time()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    # the source first: a refused one says so before any image is read
    source = resolve_source(cfg.features, open_dataset(cfg.data, "train").name, cfg.data)
    split = split_good(cfg.data, cfg.groups, cfg.val_groups, cfg.seed)
    split = split.with_defects(cfg.refine_defects, cfg.seed)
    log(f"good images: {split.to_dict()}; features: {source.name}")
    net, info = build_net(cfg, source, split, log)
    log(f"{info.summary()} ({time.time() - started:.0f} s)")
    fit = torch_maps(net, split.fit)
    median = float(np.median(np.concatenate([m.ravel() for m in fit])))
    good_scores = np.array([m.max() for m in fit])
    threshold = fit_threshold(good_scores, median, cfg.target_frr)
    refinement = None
    if split.defects is not None:
        bad_scores = np.array([m.max() for m in torch_maps(net, split.defects)])
        threshold, refinement = refine_threshold(threshold, good_scores, bad_scores)
        log(
            f"refined with {refinement.defect_images} labelled defects: threshold "
            f"{refinement.before:.4g} -> {refinement.after:.4g}, defects caught "
            f"{refinement.caught_before:.0%} -> {refinement.caught_after:.0%}"
        )
    net.set_threshold(threshold.value, threshold.scale)
    log(f"threshold {threshold.value:.4g} (fit false-reject rate {threshold.fit_frr:.3f})")
    cfg.out.mkdir(parents=True, exist_ok=True)
    meta = model_meta(cfg, split.fit)
    samples = [
        prepare(split.fit.load(i)[0], split.fit.channels)[0].numpy()
        for i in range(min(2, len(split.fit)))
    ]
    parity = export_anomaly(net, cfg.out / "model.onnx", meta, samples)
    if isinstance(net, SyntheticNet):  # its U-Net starts a segmentation model (--init-from)
        weights = {"config": net.unet.cfg.to_dict(), "model": net.unet.state_dict()}
        torch.save(weights, cfg.out / "model.pt")
    check = check_scores(cfg.out / "model.onnx", split, threshold.value, cfg.threads)
    seconds = time.time() - started
    return write_anomaly_card(
        cfg, meta, split, source, info, (threshold, refinement), check, parity, seconds
    )
