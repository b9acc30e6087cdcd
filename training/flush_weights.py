"""Zero the dead weights (|w| < 1e-30) of shipped models, in place, and check nothing changed.

    python training/flush_weights.py plugins/inspect_plugins/industrial/models/steel.onnx [...]

Weight decay leaves the weights of unused channels at 1e-30 and below; they and the
subnormal activations they make cost x86 CPUs many cycles each (see DEAD_WEIGHT in
inspect_core/training/unet.py). Models exported since then are flushed at export; this rewrites
older ones: the ONNX initializers (graph and metadata otherwise untouched), the .pt beside
it, and the card's sha256. The outputs before and after are compared on noise and the
script refuses to write when any logit moves by more than 1e-4.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import onnx
from _cli import parser, run
from onnx import numpy_helper

from inspect_core.runtime.onnx_model import OnnxModel
from inspect_core.training.model_card import save_card
from inspect_core.training.unet import DEAD_WEIGHT, zero_dead


def flush_onnx(proto: onnx.ModelProto) -> int:
    """Zero the dead float32 initializers of ``proto`` in place (numpy twin of
    :func:`inspect_core.training.unet.zero_dead`); returns how many values."""
    n = 0
    for init in proto.graph.initializer:
        a = numpy_helper.to_array(init)
        if a.dtype != np.float32:
            continue
        dead = (np.abs(a) < DEAD_WEIGHT) & (a != 0)
        if dead.any():
            a = np.where(dead, np.float32(0), a)
            init.CopyFrom(numpy_helper.from_array(a, init.name))
            n += int(dead.sum())
    return n


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("models", nargs="+", type=Path, help="ONNX model files (rewritten in place)")
    args = ap.parse_args()
    for path in args.models:
        if not path.is_file():
            raise SystemExit(f"error: {path}: no such model file")
        proto = onnx.load(str(path))
        n = flush_onnx(proto)
        if not n:
            print(f"{path}: nothing to flush")
            continue
        old = OnnxModel(path, threads=1)
        x = (
            np.random.default_rng(0)
            .standard_normal((1, old.meta.channels, 160, 224))
            .astype(np.float32)
        )
        with tempfile.TemporaryDirectory() as tmp:
            new = Path(tmp) / path.name
            onnx.save(proto, str(new))
            diff = float(np.abs(OnnxModel(new, threads=1).logits(x) - old.logits(x)).max())
            if diff > 1e-4:
                raise SystemExit(f"{path}: flushing moved a logit by {diff:.2e}; left as it was")
            new.replace(path)
        pt = path.with_suffix(".pt")
        if pt.is_file():
            import torch

            state = torch.load(pt, map_location="cpu", weights_only=False)
            zero_dead(state["model"].values())
            torch.save(state, pt)
        card = path.with_suffix(".json")
        if card.is_file():
            save_card(json.loads(card.read_text()), card, path)
        print(f"{path}: {n:,} dead weights set to zero; largest logit change {diff:.1e}")


if __name__ == "__main__":
    run(main)
