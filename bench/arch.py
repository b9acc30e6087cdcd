"""The design under test: the enhanced U-Net against a plain U-Net of the same ONNX Runtime
latency, trained with the same budget on the same data.

    python bench/arch.py latency [--size 256] [--channels 1] [--widths 8,12,16,20,24]
    python bench/arch.py compare RUN_A RUN_B [...]      # run folders of inspect train

``latency`` exports the enhanced U-Net (width 32, depth 4, stem stride 2, as shipped) and plain
U-Nets of the given widths, randomly initialised, and prints each one's median ONNX Runtime
milliseconds at ``--size`` (one thread, batch 1, all in one run), so that the plain width of
the same latency can be picked. ``compare`` prints the validation scores, epochs and images
per second from the cards of finished runs (what bench/README.md's table holds).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def _ms(session, x, runs: int = 30) -> float:
    name = session.get_inputs()[0].name
    for _ in range(3):
        session.run(None, {name: x})
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        session.run(None, {name: x})
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def latency(args: argparse.Namespace) -> None:
    import numpy as np
    import onnxruntime as ort
    import torch

    from inspect_core.training.unet import ModelConfig, build_model

    configs = [("enhanced", 32)] + [("plain", int(w)) for w in args.widths.split(",")]
    x = np.random.default_rng(0).normal(size=(1, args.channels, args.size, args.size))
    x = x.astype(np.float32)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch, width in configs:
            cfg = ModelConfig(args.channels, args.classes, width, 4, 2, arch)
            model = build_model(cfg).eval()
            path = Path(tmp) / f"{arch}{width}.onnx"
            torch.onnx.export(model, torch.from_numpy(x), str(path), opset_version=17, dynamo=False)
            session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            params = sum(p.numel() for p in model.parameters())
            rows.append({"arch": arch, "width": width, "params": params, "ms": _ms(session, x)})
    base = rows[0]["ms"]
    for r in rows:
        r["vs_enhanced"] = round(r["ms"] / base, 2)
        print(
            json.dumps(r)
            if args.json
            else f"{r['arch']:9s} width {r['width']:3d}  {r['params']:>9,d} params  "
            f"{r['ms']:7.2f} ms  {r['vs_enhanced']:.2f}x"
        )


def compare(args: argparse.Namespace) -> None:
    for run in args.runs:
        card = json.loads((Path(run) / "model.json").read_text())
        v, a = card["validation"], card["architecture"]
        ious = ", ".join(f"{k} {x['iou']:.3f}" for k, x in v["per_class"].items())
        print(
            f"{run}: {a['arch']} width {a['width']}: val mIoU {v['miou']:.4f}, mean Dice "
            f"{v['mean_dice']:.4f} ({ious}); {card['epochs']} epochs in "
            f"{card['training_seconds'] / 60:.1f} min, {card['train_images_per_s']:.1f} img/s"
        )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    lat = sub.add_parser("latency", help="ONNX Runtime latency of each network")
    lat.add_argument("--size", type=int, default=256)
    lat.add_argument("--channels", type=int, default=1)
    lat.add_argument("--classes", type=int, default=4)
    lat.add_argument("--widths", default="8,12,16,20,24")
    lat.add_argument("--json", action="store_true")
    cmp_ = sub.add_parser("compare", help="scores of finished runs")
    cmp_.add_argument("runs", nargs="+")
    args = ap.parse_args()
    latency(args) if args.cmd == "latency" else compare(args)


if __name__ == "__main__":
    main()
