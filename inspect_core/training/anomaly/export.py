"""ONNX export of an :class:`~.network.AnomalyNet` (torch): two outputs,
``logits`` (what the runtime reads: the first output) and ``anomaly_map``; dynamic batch,
height and width; the ``inspect.meta`` metadata embedded; parity of both outputs with torch
checked as for every model (:mod:`inspect_core.training.export`), except that a pixel whose
logit is within :data:`MARGIN` of the decision (a score at the threshold, which one image of
the fitting set always has) may fall either way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from inspect_core.errors import ExportError
from inspect_core.training.anomaly.network import AnomalyNet
from inspect_core.training.anomaly.synthetic import SyntheticNet
from inspect_core.training.export import MIN_ARGMAX_AGREEMENT, seal

OUTPUTS = ["logits", "anomaly_map"]
MARGIN = 1e-3  # logits closer to the decision than this may round either way
# the distance is |q|^2 - 2 q.m + |m|^2 in float32: libraries that sum in another order differ
# by ~1e-6 of the squared norms, 1e-4 of a logit on a real bank; 1e-3 of a logit changes no
# decision away from the threshold and no score a person reads
MAX_ABS_DIFF = 1e-3


def export_anomaly(
    net: AnomalyNet | SyntheticNet,
    path: Path,
    meta: dict[str, Any],
    samples: list[np.ndarray],
    opset: int = 18,
) -> dict[str, Any]:
    """Write ``net`` to ``path`` with ``meta``; parity of its logits with torch on ``samples``
    (normalised (C, H, W) arrays of differing sizes). ExportError (the file removed) when ONNX
    Runtime disagrees."""
    net = net.float().eval()
    axes = {0: "batch", 2: "height", 3: "width"}
    dummy = torch.from_numpy(samples[0][None])
    with torch.no_grad():
        torch.onnx.export(
            net,
            (dummy,),
            str(path),
            input_names=["image"],
            output_names=OUTPUTS,
            dynamic_axes={"image": axes, **dict.fromkeys(OUTPUTS, axes)},
            opset_version=opset,
            dynamo=False,
        )
    return seal(path, meta, lambda: check_parity(net, path, samples))


def check_parity(
    net: AnomalyNet | SyntheticNet, path: Path, samples: list[np.ndarray]
) -> dict[str, Any]:
    """Largest difference of either output between ONNX Runtime and torch, relative to the
    logit scale for the map, and the decision agreement away from the threshold."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    scale = float(net.scale)
    worst, agree, total = 0.0, 0, 0
    for x in samples:
        with torch.no_grad():
            ref = [t.numpy() for t in net(torch.from_numpy(x[None]))]
        got = sess.run(OUTPUTS, {"image": x[None]})
        worst = max(
            worst,
            float(np.abs(got[0] - ref[0]).max()),
            float(np.abs(got[1] - ref[1]).max()) / scale,
        )
        clear = np.abs(ref[0][:, 1]) > MARGIN
        agree += int(((got[0][:, 1] > 0) == (ref[0][:, 1] > 0))[clear].sum())
        total += int(clear.sum())
    agreement = agree / max(total, 1)
    result = {"max_abs_diff": worst, "argmax_agreement": agreement, "samples": len(samples)}
    if worst > MAX_ABS_DIFF or agreement < MIN_ARGMAX_AGREEMENT:
        raise ExportError(
            f"{path}: ONNX Runtime disagrees with torch (max |logit diff| {worst:.2e} > "
            f"{MAX_ABS_DIFF:g} or decision agreement {agreement:.4%} < "
            f"{MIN_ARGMAX_AGREEMENT:.2%} away from the threshold). Check for unsupported ops "
            "or try another opset."
        )
    return result
