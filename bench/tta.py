"""What test-time augmentation costs: one image through ``OnnxModel.probabilities`` with each
set of averaged transforms.

    python bench/tta.py [--size 300x500]
        [--model plugins/inspect_plugins/industrial/models/tile.onnx]
                        [--runs 15] [--json]

Batch 1, one ONNX Runtime thread, the shipped model with its prior correction, median of
``--runs`` after a warm-up, the sets interleaved so a busy machine slows them alike. Each copy
is its own session run; the second table times the alternative the runtime used before, the
four h,v,hv copies stacked into one batch-4 run, against four batch-1 runs (logits only).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import numpy as np

from inspect_core.runtime.onnx_model import OnnxModel

SETS = ["", "h", "h,v", "h,v,hv", "h,v,hv,t,at,r90,r270"]


def stacked_vs_separate(m: OnnxModel, img: np.ndarray, runs: int) -> dict[str, float]:
    """Median ms of the network on the four h,v,hv copies: one batch-4 run vs four batch-1."""
    x = m.prepare(img)[None]
    copies = [
        np.ascontiguousarray(c) for c in (x, np.flip(x, 3), np.flip(x, 2), np.flip(x, (2, 3)))
    ]
    stacked = np.concatenate(copies)
    times: dict[str, list[float]] = {"stacked": [], "separate": []}
    for k in range(runs + 1):
        for name, run in (
            ("stacked", lambda: m.logits(stacked)),
            ("separate", lambda: [m.logits(c) for c in copies]),
        ):
            t = time.perf_counter()
            run()
            if k:
                times[name].append(1000 * (time.perf_counter() - t))
    return {k: round(float(np.median(v)), 1) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default="plugins/inspect_plugins/industrial/models/tile.onnx")
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
    batched = stacked_vs_separate(m, img, a.runs)
    rows = [
        {"tta": s or "none", "ms": round(med[s], 1), "ratio": round(med[s] / med[""], 2)}
        for s in SETS
    ]
    if a.json:
        print(
            json.dumps(
                {"model": a.model, "size": a.size, "results": rows, "four_copies_ms": batched},
                indent=2,
            )
        )
        return
    print(f"{a.model}, {a.size}, 1 thread, median of {a.runs}")
    print("| averaged transforms | ms | vs none |\n|---|---:|---:|")
    for r in rows:
        print(f"| {r['tta']} | {r['ms']} | {r['ratio']:.2f}x |")
    print("\n| 4 copies (logits) | ms |\n|---|---:|")
    print(f"| one batch-4 run | {batched['stacked']:.1f} |")
    print(f"| four batch-1 runs | {batched['separate']:.1f} |")


if __name__ == "__main__":
    main()
