"""What dead weights (|w| < 1e-30, left by weight decay) cost ONNX Runtime on this CPU.

    python bench/dead_weights.py MODEL.onnx [--size 256] [--runs 20] [--json]

Times the model as given and a copy with its dead weights set to zero
(training/flush_weights.py), each with and without ONNX Runtime's denormals-are-zero session
option, batch 1, one thread, interleaved, median of ``--runs`` after warm-up. Outputs are
compared too: the largest logit difference between the two copies.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from flush_weights import flush_onnx


def session(path: Path, daz: bool) -> ort.InferenceSession:
    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    o.add_session_config_entry("session.set_denormal_as_zero", "1" if daz else "0")
    return ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("model", type=Path)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    proto = onnx.load(str(a.model))
    dead = flush_onnx(proto)
    total = sum(int(np.prod(i.dims)) for i in proto.graph.initializer)
    with tempfile.TemporaryDirectory() as tmp:
        flushed = Path(tmp) / "flushed.onnx"
        onnx.save(proto, str(flushed))
        sessions = {
            (name, daz): session(p, daz)
            for name, p in (("as given", a.model), ("flushed", flushed))
            for daz in (False, True)
        }
        c = sessions[("as given", False)].get_inputs()[0].shape[1]
        x = np.random.default_rng(0).standard_normal((1, c, a.size, a.size)).astype(np.float32)
        outs = {k: s.run(None, {"image": x})[0] for k, s in sessions.items()}
        times: dict = {k: [] for k in sessions}
        for _ in range(a.runs):
            for k, s in sessions.items():
                t = time.perf_counter()
                s.run(None, {"image": x})
                times[k].append(1000 * (time.perf_counter() - t))
    med = {f"{n}, daz={'on' if d else 'off'}": float(np.median(v)) for (n, d), v in times.items()}
    diff = float(np.abs(outs[("as given", False)] - outs[("flushed", False)]).max())
    result = {
        "model": str(a.model),
        "size": a.size,
        "dead_weights": dead,
        "weights": total,
        "median_ms": med,
        "max_logit_diff": diff,
    }
    if a.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{a.model}: {dead:,} of {total:,} weights dead; largest logit change {diff:.1e}")
    base = med["as given, daz=off"]
    for k, v in med.items():
        print(f"  {k:22} {v:8.2f} ms  {base / v:5.2f}x")


if __name__ == "__main__":
    main()
