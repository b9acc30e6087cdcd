"""The model card (``model.json``) written beside every trained model."""
from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("torch", "onnxruntime", "onnx", "numpy", "opencv-python-headless", "albumentations"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_card(out: Path, cfg, mcfg, train_ds, val: dict, history: list, seconds: float,
               parity: dict, images_per_s: float, meta: dict) -> dict:
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
        "validation": {k: v for k, v in val.items()},
        "epochs": len(history),
        "best_epoch": max(range(len(history)), key=lambda i: history[i].get("val_miou", -1)),
        "training_seconds": round(seconds, 1),
        "train_images_per_s": images_per_s,
        "export_parity": parity,
        "training": cfg.to_dict(),
        "versions": package_versions(),
    }
    (out / "model.json").write_text(json.dumps(card, indent=2) + "\n")
    return card
