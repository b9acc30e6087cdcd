"""What a model file holds beyond its weights, read or edited without running a recipe:
:func:`read_graph` (the shapes its network really takes and gives: ``inspect model add``
and the recipe checks) and :func:`edit_meta` (rewrite the ``inspect.meta`` JSON embedded at
export: the training tools choose_tta and fit_prior).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inspect_core.errors import ModelError
from inspect_core.runtime.engines import META_KEY

__all__ = ["GraphShapes", "edit_meta", "read_graph"]


@dataclass(frozen=True)
class GraphShapes:
    """What a network really takes and gives, read from its graph (not its metadata): the
    number of inputs, the first input's and output's dimensions (None: any size), and the
    output's shape for a run on zeros shaped ``probe`` (None when that run failed:
    ``probe_error`` says why)."""

    inputs: int
    input_dims: tuple[int | None, ...]
    output_dims: tuple[int | None, ...]
    probe: tuple[int, ...]
    probe_out: tuple[int, ...] | None
    probe_error: str = ""


def read_graph(path: str | Path, channels: int, stride: int) -> GraphShapes:
    """The :class:`GraphShapes` of the fp32 network in ``path`` (ONNX Runtime, one thread),
    run once on a (1, C, 2s, 3s) zero input (C: the graph's channels, else ``channels``; s:
    ``stride``, at least 32) so that what it gives an image is known, not only declared."""
    import onnxruntime as ort  # lazy: loaded with the first model, not by --help

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise ModelError(f"{path}: ONNX Runtime cannot open the network ({e})") from e
    ins, out = session.get_inputs(), session.get_outputs()[0]
    dims, out_dims = _dims(ins[0].shape), _dims(out.shape)
    s = max(32, stride)
    want = (1, channels, 2 * s, 3 * s) + (1,) * max(0, len(dims) - 4)
    probe = tuple(d or w for d, w in zip(dims, want))
    try:
        y = session.run([out.name], {ins[0].name: np.zeros(probe, np.float32)})[0]
    except Exception as e:
        why = f"{type(e).__name__}: {e}"
        return GraphShapes(len(ins), dims, out_dims, probe, None, why)
    return GraphShapes(len(ins), dims, out_dims, probe, tuple(int(d) for d in np.shape(y)))


def _dims(shape: Any) -> tuple[int | None, ...]:
    """A graph's tensor shape: each dimension a number, or None for a named (any) size."""
    return tuple(d if isinstance(d, int) and d > 0 else None for d in shape or ())


def edit_meta(path: str | Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Rewrite the metadata embedded in the model file ``path`` in place: ``change(meta)``
    edits the dict. For the training tools (choose_tta, fit_prior); needs the ``onnx`` package."""
    import onnx  # lazy: the train extra (0.7 s to load), for the training tools only

    proto = onnx.load(str(path))
    entry = next((p for p in proto.metadata_props if p.key == META_KEY), None)
    if entry is None:
        raise ModelError(f"{path}: no '{META_KEY}' metadata to edit")
    meta = json.loads(entry.value)
    change(meta)
    entry.value = json.dumps(meta)
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    onnx.save(proto, str(tmp))
    os.replace(tmp, path)  # whole: a tool stopped midway leaves the old file, never half of one
