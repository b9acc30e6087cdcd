"""Inference speed: torch eager vs ONNX Runtime, same trained model, batch 1.

    python bench/infer.py [--model plugins/industrial/models/steel.onnx] [--json] [--runs 20]

For each size (256, 512, 1024 px square) prints the median milliseconds over ``--runs`` runs
after warm-up for both engines and their ratio. Both use every core of the machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "plugins" / "industrial" / "models" / "steel.onnx"


def median_ms(fn, runs: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default=str(DEFAULT_MODEL), help="ONNX model with a .pt beside it")
    ap.add_argument("--sizes", default="256,512,1024")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    import torch

    from inspect_core.runtime.onnx_model import OnnxModel
    from inspect_core.training.unet import ModelConfig, build_model

    onnx_path = Path(args.model)
    ck = torch.load(onnx_path.with_suffix(".pt"), map_location="cpu", weights_only=False)
    model = build_model(ModelConfig.from_dict(ck["config"]))
    model.load_state_dict(ck["model"])
    model.eval()
    ort_model = OnnxModel(onnx_path)
    c = ort_model.meta.channels
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        x = np.random.default_rng(0).normal(size=(1, c, size, size)).astype(np.float32)
        xt = torch.from_numpy(x)

        def run_torch(xt=xt):
            with torch.inference_mode():
                model(xt)

        torch_ms = median_ms(run_torch, args.runs)
        ort_ms = median_ms(lambda x=x: ort_model.logits(x), args.runs)
        rows.append(
            {
                "size": size,
                "torch_ms": round(torch_ms, 2),
                "ort_ms": round(ort_ms, 2),
                "speedup": round(torch_ms / ort_ms, 2),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(
            f"model {onnx_path.name}, torch {torch.__version__}, threads {torch.get_num_threads()}"
        )
        print(f"{'size':>6} {'torch ms':>10} {'ORT ms':>10} {'speedup':>8}")
        for r in rows:
            print(
                f"{r['size']:>6} {r['torch_ms']:>10.2f} {r['ort_ms']:>10.2f} {r['speedup']:>7.2f}x"
            )


if __name__ == "__main__":
    main()
