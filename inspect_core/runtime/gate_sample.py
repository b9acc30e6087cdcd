"""A model's gate sample (issue 26): a few of the images its variants were gated on, with their
masks, shipped beside it (``<stem>.gate.npz``) so that a machine the model has never met can
check each variant's arithmetic on itself before trusting it (int8 kernels differ by
instruction set: a gate passed on one CPU does not vouch for another).

The images are crops (at most :data:`CROP` px a side, around each mask's defect pixels) of the
card's held-out images, stored as PNG (lossless) in one ``.npz`` with a JSON header: no pickle.
:func:`make` cuts them (training/gate_sample.py writes the file and names its sha256 in the
card); :func:`load` reads one, checked against the sha256 the card gives.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from inspect_core.cards import sha256_file
from inspect_core.errors import ModelError

FORMAT = 1
CROP = 320  # px, the largest side of a stored crop


@dataclass(frozen=True)
class GateSample:
    """The images (uint8, as a dataset gives them), their masks (class indexes), and where they
    came from; ``export_miou``: the fp32 file's mIoU on them where it was made."""

    images: tuple[np.ndarray, ...]
    masks: tuple[np.ndarray, ...]
    ignore_index: int
    what: str
    export_miou: float | None = None


def gate_sample_path(model: str | Path) -> Path:
    """Where the gate sample of the model file ``model`` is: beside it, ``.gate.npz``."""
    return Path(model).with_suffix(".gate.npz")


def crop(img: np.ndarray, mask: np.ndarray, ignore: int, side: int = CROP) -> tuple[Any, Any]:
    """``img`` and ``mask`` cut to at most ``side`` px a side, centred on the mask's labelled
    (non-background, non-ignored) pixels where it has any, else on the image's centre."""
    h, w = mask.shape[:2]
    ys, xs = np.nonzero((mask > 0) & (mask != ignore))
    cy, cx = (int(ys.mean()), int(xs.mean())) if len(ys) else (h // 2, w // 2)
    th, tw = min(side, h), min(side, w)
    y0 = min(max(0, cy - th // 2), h - th)
    x0 = min(max(0, cx - tw // 2), w - tw)
    return img[y0 : y0 + th, x0 : x0 + tw], mask[y0 : y0 + th, x0 : x0 + tw]


def save(sample: GateSample, path: str | Path) -> Path:
    """Write ``sample`` to ``path`` whole (PNG images and masks in a compressed ``.npz``)."""
    path = Path(path)
    header = {
        "format": FORMAT,
        "count": len(sample.images),
        "ignore_index": sample.ignore_index,
        "what": sample.what,
        "export_miou": sample.export_miou,
    }
    arrays = {"header": np.array(json.dumps(header))}
    for i, (img, mask) in enumerate(zip(sample.images, sample.masks)):
        arrays[f"image_{i}"] = _png(img)
        arrays[f"mask_{i}"] = _png(mask.astype(np.uint8))
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)  # type: ignore[arg-type]
    tmp.replace(path)
    return path


def load(path: str | Path, sha256: str | None = None) -> GateSample:
    """The gate sample at ``path``; with ``sha256`` (the card's), checked to be that file.
    :class:`ModelError` naming the file when it is changed, unreadable or of another format."""
    path = Path(path)
    if sha256 is not None and sha256_file(path) != sha256.lower():
        raise ModelError(
            f"{path}: does not match the sha256 its model card gives for it; restore it from "
            "the plugin's package or make it again (training/gate_sample.py)"
        )
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(str(z["header"]))
            n = int(header["count"])
            images = tuple(_unpng(z[f"image_{i}"]) for i in range(n))
            masks = tuple(_unpng(z[f"mask_{i}"]) for i in range(n))
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise ModelError(f"{path}: not a readable gate sample ({e}); make it again") from e
    if header.get("format") != FORMAT:
        raise ModelError(f"{path}: gate sample format {header.get('format')!r}, not {FORMAT}")
    miou = header.get("export_miou")
    return GateSample(
        images,
        masks,
        int(header["ignore_index"]),
        str(header["what"]),
        None if miou is None else float(miou),
    )


def _png(img: np.ndarray) -> np.ndarray:
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise ValueError(f"cannot encode an image of shape {img.shape} as PNG")
    out: np.ndarray = buf.reshape(-1)
    return out


def _unpng(buf: np.ndarray) -> np.ndarray:
    img = cv2.imdecode(np.asarray(buf, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError("a stored image is not a readable PNG")
    out: np.ndarray = img
    return out
