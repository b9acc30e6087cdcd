"""The site's table of shipped models, made from their cards (``plugins/*/models/*.json``) when
the site is built: the same table as ``python training/cards_table.py``, and the good-only
models (``"kind": "anomaly"``) in a table of their own, with the scores such a card has.

The first score of a segmentation model is its card's headline: the mIoU on whole groups
(sequence, tile) that no training image came from, and which groups; the second, the mIoU on
held-out images of the groups trained on. A card without the first says why in a footnote.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

Card = dict[str, Any]


def cards(root: Path) -> dict[str, Card]:
    """``"industrial / steel"`` -> its card, for every card of every shipped plugin."""
    out = {}
    for path in sorted(root.glob("plugins/inspect_plugins/*/models/*.json")):
        out[f"{path.parent.parent.name} / {path.stem}"] = json.loads(path.read_text("utf-8"))
    return out


def segmentation_row(name: str, c: Card, notes: list[str]) -> str:
    h = c["scores"]
    unseen, same = h.get("unseen_groups"), h.get("same_distribution")
    v = c["validation"]
    ious = ", ".join(f"{k} {x['iou']:.2f}" for k, x in v["per_class"].items())
    a = c["architecture"]
    prior = "yes" if c.get("calibration", {}).get("applied") else "no"
    init = c.get("training", {}).get("init_from")
    start = f", from {Path(init).stem} weights" if init else ""
    if unseen and unseen["what"].startswith("estimate"):
        notes.append(f"{name}: {unseen['what']}")
        first = f"{unseen['miou']:.3f} ({', '.join(unseen['groups'])}) [{len(notes)}]"
    elif unseen:
        first = f"**{unseen['miou']:.3f}** ({', '.join(unseen['groups'])})"
    else:
        notes.append(f"{name}: {h['why_no_unseen']}")
        first = f"n/a [{len(notes)}]"
    second = f"{same['miou']:.3f} ({same['images']} images)" if same else "n/a"
    on = "unseen" if (c.get("validation_split") or {}).get("unseen") else "same groups"
    return (
        f"| {name} | {c['dataset']['name']} ({c['dataset']['license']}) | {first} | "
        f"{second} | {v['mean_dice']:.3f} ({on}) | {ious} ({on}) | "
        f"{','.join(c.get('tta', [])) or 'no'} | {prior} | width {a['width']}, stem stride "
        f"{a['stem_stride']}, {c['epochs']} epochs, {c['training_seconds'] / 60:.0f} min, "
        f"{c['train_images_per_s']:.0f} img/s{start} |"
    )


def anomaly_row(name: str, c: Card) -> str:
    check = c["scores"]["check"]
    groups = ", ".join(check.get("groups", [])) or "held-out images"
    a = c["architecture"]
    return (
        f"| {name} | {c['dataset']['name']} ({c['dataset']['license']}) | "
        f"{check['image_auroc']:.2f} | {check['pixel_auroc']:.2f} | {check['aupro']:.2f} | "
        f"{check['f1_max']:.2f} | {check['false_reject_rate']:.2f} | "
        f"{check['images']} images of {groups} ({check['defective_images']} defective) | "
        f"{a['kind']}, {c['dataset']['train_images']} good images, "
        f"{c['training_seconds'] / 60:.0f} min |"
    )


MARKER = "<!-- generated: model tables -->"


def model_tables(root: Path, level: str = "##") -> str:
    """The segmentation and the good-only tables, under headings of ``level``."""
    found = cards(root)
    seg = {n: c for n, c in found.items() if c.get("kind", "segmentation") != "anomaly"}
    good = {n: c for n, c in found.items() if c.get("kind") == "anomaly"}
    notes: list[str] = []
    out = [
        f"{level} Segmentation models",
        "",
        "| plugin / recipe | dataset (license) | mIoU on unseen groups | mIoU, same groups | "
        "mean Dice | per-class IoU | test-time aug. | prior correction | training |",
        "|---|---|---:|---:|---:|---|---|---|---|",
    ]
    out += [segmentation_row(name, card, notes) for name, card in seg.items()]
    out.append("")
    out += [f"[{i}] {note}" + "\n" for i, note in enumerate(notes, 1)]
    out += [
        f"{level} Good-only models",
        "",
        "Trained from defect-free images alone; scored on images no fitting saw.",
        "",
        "| plugin / recipe | dataset (license) | image AUROC | pixel AUROC | AUPRO | F1 max | "
        "false-reject rate | scored on | training |",
        "|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    out += [anomaly_row(name, card) for name, card in good.items()]
    return "\n".join(out) + "\n"


def models_page(root: Path) -> str:
    header = (
        "# Shipped models\n\n"
        "Generated from the model cards (`plugins/inspect_plugins/*/models/*.json`) when the "
        "site is built. What the numbers mean and how each model was trained: "
        "[Shipped models](../model-author/models.md); good-only models: "
        "[Good-only models](../model-author/good-only.md).\n\n"
    )
    return header + model_tables(root)


def recipe_names(root: Path) -> list[str]:
    """Every shipped model as the table names it (``plugin / recipe``)."""
    return list(cards(root))
