"""The model card (``model.json``) that training writes beside every model, and its updates
by the training tools that rewrite a model (``training/choose_tta.py``, ``fit_prior.py``,
``flush_weights.py``). The runtime's side, checking a model against its card, is
:mod:`inspect_core.cards`."""

from __future__ import annotations

import json
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from inspect_core.cards import sha256_file

if TYPE_CHECKING:
    from inspect_core.training.run import Run


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


def write_card(run: Run, val: dict, parity: dict, meta: dict, seen: dict | None = None) -> dict:
    """Write ``model.json`` for the ``model.onnx`` that ``run`` exported: its sha256, network,
    classes, normalisation, dataset, validation scores (``val``) and where the validation images
    came from, the weights it started from and what of them loaded, epochs, training time and
    speed, export parity, settings (and which were chosen for the user) and package versions.
    ``seen``: with --val-groups, the scores on the val split's images of the groups trained on
    (``validation_seen_groups``, the same-distribution score beside the unseen one). Returns
    it."""
    out, history = run.out, run.history
    ips = [h["images_per_s"] for h in history if "images_per_s" in h]
    card = {
        "model": "model.onnx",
        "sha256": sha256_file(out / "model.onnx"),
        "architecture": run.mcfg.to_dict(),
        "classes": run.train_ds.classes,
        "channels": meta["channels"],
        "input_size": meta["input_size"],
        "normalization": {"mean": meta["mean"], "std": meta["std"], "scale": "x/255"},
        "dataset": {
            "name": run.train_ds.name,
            "path": str(run.cfg.data),
            "license": run.train_ds.license,
            "train_images": len(run.train_ds),
            "file_list_sha256": run.train_ds.fingerprint(),
        },
        "validation": dict(val),
        "validation_split": run.holdout.to_dict(),
        "validation_seen_groups": seen,
        "init_from": run.init.to_dict() if run.init else None,
        "epochs": len(history),
        "best_epoch": max(range(len(history)), key=lambda i: history[i].get("val_miou", -1)),
        "training_seconds": round(run.elapsed, 1),
        "train_images_per_s": float(np.median(ips)) if ips else 0.0,
        "export_parity": parity,
        "training": run.cfg.to_dict(),
        "settings_chosen": dict(run.auto),
        "versions": package_versions(),
    }
    card["scores"] = headline(card)
    _dump(out / "model.json", card)
    return card


def save_card(card: dict[str, Any], card_path: Path, model: Path) -> None:
    """Write ``card`` to ``card_path`` with the sha256 of ``model`` as the file is now (after a
    tool rewrote it: the runtime refuses a model whose card names another sha256), and its
    headline scores brought up to date."""
    card["sha256"] = sha256_file(model)
    card["scores"] = headline(card)
    _dump(card_path, card)


def _brief(scores: dict, what: str, groups: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "miou": round(float(scores["miou"]), 4),
        "mean_dice": round(float(scores["mean_dice"]), 4),
        "images": scores.get("images"),
        "what": what,
    }
    if groups is not None:
        out["groups"] = groups
    return out


def headline(card: dict[str, Any]) -> dict[str, Any]:
    """The card's two headline numbers, each saying what it was computed on: ``unseen_groups``,
    the score on whole groups (sequence, tile, lot) no image of which was trained on (what a
    new lot or camera should expect), and ``same_distribution``, the score on held-out images
    of the groups trained on. A model trained on every group has no unseen group left: its
    ``unseen_groups`` is the estimate of its settings run (``unseen_groups_estimate``: the same
    settings trained without some groups, scored on them), saying so; without one it is None,
    with ``why_no_unseen`` saying why."""
    split = card.get("validation_split") or {}
    val = card["validation"]
    if split.get("unseen"):
        out = {
            "unseen_groups": _brief(
                val, f"held-out groups: {split.get('rule', '')}", list(split.get("groups") or [])
            )
        }
        seen = card.get("validation_seen_groups")
        out["same_distribution"] = (
            _brief(seen, "val-split images of the groups trained on") if seen else None
        )
        return out
    estimate = card.get("unseen_groups_estimate")
    if estimate:  # the same settings trained without some groups, scored on them
        return {
            "unseen_groups": dict(estimate),
            "same_distribution": _brief(val, split.get("rule") or "the val split"),
        }
    why = card.get("groups_note") or (
        "validated on images of the groups it was trained on "
        f"({split.get('rule', 'the val split')}); retrain with --val-groups for a score on "
        "unseen groups"
    )
    return {
        "unseen_groups": None,
        "why_no_unseen": why,
        "same_distribution": _brief(val, split.get("rule") or "the val split"),
    }


def _dump(path: Path, card: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(card, indent=2) + "\n")
    os.replace(tmp, path)  # whole or not at all
