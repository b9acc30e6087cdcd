"""Tiny ONNX networks built by hand (one 1x1 convolution, no training, no torch): whatever input
channels, output classes and metadata a test needs, a network that fits its metadata or one
that does not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from inspect_core.cards import sha256_file


def conv_model(
    path: Path,
    meta: dict[str, Any],
    in_ch: int = 1,
    out_ch: int | None = None,
    weight: list[float] | None = None,
    bias: list[float] | None = None,
    stride: int = 1,
    card: bool = True,
) -> Path:
    """A 1x1 convolution from ``in_ch`` channels to ``out_ch`` (default: one per class of
    ``meta``), logit k = weight[k] * (sum of the input channels) + bias[k]; its metadata is
    ``meta`` (the "inspect.meta" entry), its card (``.json`` beside it: classes and sha256)
    written unless ``card`` is False. ``stride`` 2 makes an output half the input's size."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    out_ch = out_ch if out_ch is not None else len(meta["classes"])
    w = np.zeros((out_ch, in_ch, 1, 1), np.float32)
    w[:, :, 0, 0] = np.asarray(weight if weight is not None else [0.0] * out_ch)[:, None]
    b = np.asarray(bias if bias is not None else [0.0] * out_ch, np.float32)
    node = helper.make_node("Conv", ["image", "W", "B"], ["logits"], strides=[stride, stride])
    graph = helper.make_graph(
        [node],
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", in_ch, "h", "w"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", out_ch, "oh", "ow"])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    entry = model.metadata_props.add()
    entry.key, entry.value = "inspect.meta", json.dumps(meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    if card:
        card_path = path.with_suffix(".json")
        card_path.write_text(
            json.dumps({"classes": meta["classes"], "sha256": sha256_file(path)}, indent=1)
        )
    return path


def meta_of(classes: list[str], **changes: Any) -> dict[str, Any]:
    """Metadata as inspect writes it for a gray model of ``classes``, with ``changes``."""
    return {
        "classes": list(classes),
        "mean": 0.5,
        "std": 0.25,
        "channels": 1,
        "input_size": 64,
        "stride": 1,
        **changes,
    }
