"""Print the README's table of shipped models from their cards (plugins/*/models/*.json).

The first score column is the card's headline: the mIoU on whole groups (sequence, tile) that
no training image came from, and which groups; the second, the mIoU on held-out images of the
groups trained on (the same distribution). A card without the first says why in a footnote.
The mean Dice and per-class IoU are of the card's validation images, marked "unseen" (the
groups held out) or "same groups" (a model trained on every group, or NEU-Seg's val split).
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    print(
        "| plugin / recipe | dataset (license) | mIoU on unseen groups | mIoU, same groups | "
        "mean Dice | per-class IoU | test-time aug. | prior correction | training |"
    )
    print("|---|---|---:|---:|---:|---|---|---|---|")
    notes = []
    for card_path in sorted(ROOT.glob("plugins/*/models/*.json")):
        c = json.loads(card_path.read_text())
        name = f"{card_path.parent.parent.name} / {card_path.stem}"
        h = c["scores"]
        unseen, same = h["unseen_groups"], h["same_distribution"]
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
        # Dice and per-class IoU are of the card's validation images: say which those are
        on = "unseen" if (c.get("validation_split") or {}).get("unseen") else "same groups"
        print(
            f"| {name} | {c['dataset']['name']} ({c['dataset']['license']}) | {first} | "
            f"{second} | {v['mean_dice']:.3f} ({on}) | {ious} ({on}) | "
            f"{','.join(c.get('tta', [])) or 'no'} | "
            f"{prior} | width {a['width']}, stem stride {a['stem_stride']}, {c['epochs']} "
            f"epochs, {c['training_seconds'] / 60:.0f} min, "
            f"{c['train_images_per_s']:.0f} img/s{start} |"
        )
    print()
    for i, note in enumerate(notes, 1):
        print(f"[{i}] {note}")


if __name__ == "__main__":
    main()
