"""ONNX export with a parity check against torch (needs torch).

The exported graph has dynamic batch, height and width, and carries its own metadata
(``inspect.meta``: classes, normalisation, channels, input size, stride) so the ``.onnx`` file
alone is enough to run it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inspect_core.errors import ExportError
from inspect_core.runtime.onnx_model import META_KEY
from inspect_core.training.unet import zero_dead_weights

MAX_ABS_DIFF = 1e-4
MIN_ARGMAX_AGREEMENT = 0.9999


def export_onnx(
    model: torch.nn.Module,
    path: str | Path,
    meta: dict,
    samples: list[np.ndarray],
    opset: int = 18,
    dynamo: bool = True,
) -> dict:
    """Export ``model`` to ``path``, embed ``meta`` and check parity on ``samples``.

    ``samples`` are normalised (C, H, W) float32 arrays; real images of differing sizes
    exercise the dynamic axes. Raises :class:`ExportError` (and removes the file) when ONNX
    Runtime disagrees with torch beyond the tolerances.
    """
    path = Path(path)
    model = model.float().eval().to("cpu", memory_format=torch.contiguous_format)
    zero_dead_weights(model)  # they make every CPU runtime slow (see zero_dead_weights)
    c = meta["channels"]
    if not samples:  # no real images: check parity on noise rather than on nothing
        samples = [np.random.default_rng(0).standard_normal((c, 64, 64)).astype(np.float32)]
    _export(model, torch.from_numpy(samples[0][None]), path, opset, dynamo)
    return seal(path, meta, lambda: check_parity(model, path, samples))


def seal(path: Path, meta: dict[str, Any], parity: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Embed ``meta`` in the exported file at ``path``, then check it with ``parity``: a file
    that fails the check is removed (ExportError says so), never left for a plugin to ship."""
    import onnx  # lazy: 0.7 s to load, only when a model is exported

    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(meta)
    onnx.save(proto, str(path))
    try:
        return parity()
    except ExportError as e:
        path.unlink(missing_ok=True)
        raise ExportError(f"{e} The file was removed.") from e


def _export(
    model: torch.nn.Module, dummy: torch.Tensor, path: Path, opset: int, dynamo: bool
) -> None:
    """``torch.onnx.export`` with dynamic batch, height and width: by torch's default exporter
    (``dynamo``: torch.export + onnxscript), or the legacy TorchScript one (~10x faster to
    export, deprecated)."""
    common = dict(input_names=["image"], output_names=["logits"], opset_version=opset)
    with torch.no_grad():
        if dynamo:
            dyn = torch.export.Dim.DYNAMIC
            torch.onnx.export(
                model,
                (dummy,),
                str(path),
                dynamic_shapes={"x": {0: dyn, 2: dyn, 3: dyn}},
                dynamo=True,
                external_data=False,
                verbose=False,
                **common,
            )
        else:
            axes = {0: "batch", 2: "height", 3: "width"}
            torch.onnx.export(
                model,
                (dummy,),
                str(path),
                dynamic_axes={"image": axes, "logits": axes},
                dynamo=False,
                **common,
            )


def check_parity(model: torch.nn.Module, path: str | Path, samples: list[np.ndarray]) -> dict:
    import onnxruntime as ort  # lazy: only for the parity check after an export

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst, agree, total = 0.0, 0, 0
    for x in samples:
        with torch.no_grad():
            ref = model(torch.from_numpy(x[None])).numpy()
        got = sess.run(None, {"image": x[None]})[0]
        if got.shape != ref.shape:
            raise ExportError(f"{path}: ONNX output shape {got.shape} != torch {ref.shape}")
        worst = max(worst, float(np.abs(got - ref).max()))
        agree += int((got.argmax(1) == ref.argmax(1)).sum())
        total += ref.shape[0] * ref.shape[2] * ref.shape[3]
    agreement = agree / max(total, 1)
    result = {"max_abs_diff": worst, "argmax_agreement": agreement, "samples": len(samples)}
    if worst > MAX_ABS_DIFF or agreement < MIN_ARGMAX_AGREEMENT:
        raise ExportError(
            f"{path}: ONNX Runtime disagrees with torch (max |logit diff| {worst:.2e} > "
            f"{MAX_ABS_DIFF:g} or argmax agreement {agreement:.4%} < {MIN_ARGMAX_AGREEMENT:.2%}). "
            "Check for unsupported ops or try another opset."
        )
    return result
