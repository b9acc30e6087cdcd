"""Print the README's table of shipped models from their cards (plugins/*/models/*.json)."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    print(
        "| plugin / recipe | dataset (license) | val mIoU | val mean Dice | per-class IoU | "
        "test-time aug. | prior correction | training |"
    )
    print("|---|---|---:|---:|---|---|---|---|")
    for card_path in sorted(ROOT.glob("plugins/*/models/*.json")):
        c = json.loads(card_path.read_text())
        v = c["validation"]
        ious = ", ".join(f"{k} {x['iou']:.2f}" for k, x in v["per_class"].items())
        a = c["architecture"]
        cal = c.get("calibration", {})
        prior = "yes" if cal.get("applied") else "no"
        init = c.get("training", {}).get("init_from")
        start = f", from {Path(init).stem} weights" if init else ""
        print(
            f"| {card_path.parent.parent.name} / {card_path.stem} | {c['dataset']['name']} "
            f"({c['dataset']['license']}) | {v['miou']:.3f} | {v['mean_dice']:.3f} | {ious} | "
            f"{','.join(c.get('tta', [])) or 'no'} | {prior} | width {a['width']}, stem stride "
            f"{a['stem_stride']}, {c['epochs']} epochs, {c['training_seconds'] / 60:.0f} min, "
            f"{c['train_images_per_s']:.0f} img/s{start} |"
        )


if __name__ == "__main__":
    main()
