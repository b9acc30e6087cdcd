"""The model card (``model.json``) that training writes beside every model, and its updates
by the training tools that rewrite a model (``training/choose_tta.py``, ``fit_prior.py``,
``flush_weights.py``). The runtime's side, checking a model against its card, is
:mod:`inspect_core.cards`."""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inspect_core.cards import sha256_file

if TYPE_CHECKING:
    from inspect_core.data.datasets import Dataset
    from inspect_core.training.trainer import TrainConfig
    from inspect_core.training.unet import ModelConfig


def package_versions() -> dict[str, str]:
    """The versions of Python and of the packages that shape a model (recorded in its card)."""
    out = {"python": platform.python_version()}
    for name in (
        "torch",
        "onnxruntime",
        "onnx",
        "numpy",
        "opencv-python-headless",
        "albumentations",
    ):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def write_card(
    out: Path,
    cfg: TrainConfig,
    mcfg: ModelConfig,
    train_ds: Dataset,
    val: dict,
    history: list[dict],
    seconds: float,
    parity: dict,
    images_per_s: float,
    meta: dict,
) -> dict:
    """Write ``out/model.json`` for the ``out/model.onnx`` a run exported: its sha256, network,
    classes, normalisation, dataset, validation scores (``val``), epochs (``history``),
    training time and speed, export parity, settings and package versions. Returns it."""
    card = {
        "model": "model.onnx",
        "sha256": sha256_file(out / "model.onnx"),
        "architecture": mcfg.to_dict(),
        "classes": train_ds.classes,
        "channels": meta["channels"],
        "input_size": meta["input_size"],
        "normalization": {"mean": meta["mean"], "std": meta["std"], "scale": "x/255"},
        "dataset": {
            "name": train_ds.name,
            "path": str(cfg.data),
            "license": train_ds.license,
            "train_images": len(train_ds),
            "file_list_sha256": train_ds.fingerprint(),
        },
        "validation": dict(val),
        "epochs": len(history),
        "best_epoch": max(range(len(history)), key=lambda i: history[i].get("val_miou", -1)),
        "training_seconds": round(seconds, 1),
        "train_images_per_s": images_per_s,
        "export_parity": parity,
        "training": cfg.to_dict(),
        "versions": package_versions(),
    }
    _dump(out / "model.json", card)
    return card


def save_card(card: dict[str, Any], card_path: Path, model: Path) -> None:
    """Write ``card`` to ``card_path`` with the sha256 of ``model`` as the file is now (after a
    tool rewrote it: the runtime refuses a model whose card names another sha256)."""
    card["sha256"] = sha256_file(model)
    _dump(card_path, card)


def _dump(path: Path, card: dict[str, Any]) -> None:
    path.write_text(json.dumps(card, indent=2) + "\n")
