"""What test-time augmentation costs: one image through ``OnnxModel.probabilities`` with each
set of averaged transforms.

    python bench/tta.py [--model plugins/industrial/models/tile.onnx] [--size 300x500] [--runs 15] [--json]

Batch 1, one ONNX Runtime thread, the shipped model with its prior correction, median of
``--runs`` after a warm-up, the sets interleaved so a busy machine slows them alike. A
non-square image runs the transposed and quarter-turned copies in a second session run.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import numpy as np

from inspect_core.runtime import OnnxModel

SETS = ["", "h", "h,v", "h,v,hv", "h,v,hv,t,at,r90,r270"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="plugins/industrial/models/tile.onnx")
    ap.add_argument("--size", default="300x500", help="HxW of the test image")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    h, w = (int(v) for v in a.size.split("x"))
    m = OnnxModel(a.model, threads=1)
    img = np.random.default_rng(0).integers(0, 256, (h, w, m.meta.channels), np.uint8).squeeze()
    tta = {s: tuple(t for t in s.split(",") if t) for s in SETS}
    times: dict[str, list[float]] = {s: [] for s in SETS}
    for k in range(a.runs + 1):
        for s in SETS:
            m.meta = replace(m.meta, tta=tta[s])
            t = time.perf_counter()
            m.probabilities(img)
            if k:  # the first round warms up
                times[s].append(1000 * (time.perf_counter() - t))
    med = {s: float(np.median(v)) for s, v in times.items()}
    rows = [{"tta": s or "none", "ms": round(med[s], 1), "ratio": round(med[s] / med[""], 2)}
            for s in SETS]
    if a.json:
        print(json.dumps({"model": a.model, "size": a.size, "results": rows}, indent=2))
        return
    print(f"{a.model}, {a.size}, 1 thread, median of {a.runs}")
    print("| averaged transforms | ms | vs none |\n|---|---:|---:|")
    for r in rows:
        print(f"| {r['tta']} | {r['ms']} | {r['ratio']:.2f}x |")


if __name__ == "__main__":
    main()
