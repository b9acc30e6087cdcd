"""Graph surgery for the familiarity score (issue 25, item 1): a copy of an exported U-Net with
one more output, ``features`` (N, width): for each of a few encoder blocks (``enc.{i}``), the
mean and the standard deviation over the image of each channel of its output as max-pooled
for the next level, computed in the same run as the logits.

Which blocks: the first two (``enc.0``, ``enc.1``: :data:`POOLED_BLOCKS`). The deepest block
(``enc.{depth}``) was the first candidate, but its pooled statistics hardly tell products apart:
trained to name classes whatever the appearance, it is made blind to what changes between
products (on the steel model, 3% of driving scenes and 28% of magnetic tiles were flagged;
bench numbers in the report of issue 25). The shallow blocks still describe texture, contrast
and brightness, the signal of "another product". Their max-pooled outputs, not the outputs
themselves, are pooled: a quarter of the values, and in an int8 file the float copy the next
layer reads anyway, where pooling a block's own output made ONNX Runtime dequantize a
full-resolution tensor for it alone (+15% per int8 run on the steel model against +3%).

The blocks are found by the names torch.onnx leaves in the graph, for either exporter and for
a quantized (QDQ) copy alike: the weights of their convolutions are named ``enc.{i}.…``
(resolved through ``DequantizeLinear`` in an int8 file) and the legacy exporter names its
nodes ``/enc.{i}/…``. A block's output is the tensor its last layers give after the residual
``Add``/``Relu`` (and any quantize/dequantize pair); that it goes on to the next level
(``MaxPool``), and that the deepest block's output feeds the decoder's upsampling (``Resize``),
is checked, so a graph that is no inspect U-Net is refused with the file's name, never
silently pooled somewhere else.

Every existing output (``logits`` first, where every runtime reads it) and the metadata stay as
they were; the copy is written to a new file, never over the one it came from. Needs the
``onnx`` package (the train extra), as the other training tools that edit a model file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from inspect_core.errors import ModelError
from inspect_core.runtime.engines import FEATURES  # the new graph output's name

__all__ = [
    "FAMILIARITY_KEY",
    "FEATURES",
    "EncoderOutput",
    "FeatureLayout",
    "add_features",
    "has_features",
]
FAMILIARITY_KEY = "inspect.familiarity"  # metadata entry: what the features output holds
POOLED_BLOCKS = (0, 1)  # the encoder blocks pooled into the features
_WEIGHT = re.compile(r"^enc\.(\d+)\.")  # an initializer of encoder block i
_NODE = re.compile(r"^/enc\.(\d+)/")  # a node of encoder block i (the legacy exporter's names)
# ops a block's output passes through before it leaves the block: the residual sum, its
# activation, and the quantize/dequantize pair of an int8 (QDQ) file
_QDQ = {"QuantizeLinear", "DequantizeLinear"}
_PASS = {"Add", "Relu", "Clip", "Identity", "BatchNormalization", *_QDQ}
_SHAPE_ONLY = {"Shape", "Size"}  # consumers that read a tensor's shape, not its values


@dataclass(frozen=True)
class EncoderOutput:
    """One encoder block of a graph: its index, a tensor of it (its output, or that output
    max-pooled for the next level: what is pooled into the features), its channels."""

    block: int
    tensor: str
    channels: int


@dataclass(frozen=True)
class FeatureLayout:
    """What the ``features`` output holds: for each block pooled (in order), the mean of each
    of its channels, then their standard deviations; ``depth`` is the deepest block's index."""

    blocks: tuple[EncoderOutput, ...]
    depth: int

    @property
    def width(self) -> int:
        return sum(2 * b.channels for b in self.blocks)

    def to_json(self) -> str:
        pooled = [
            {"block": f"enc.{b.block}", "after": "MaxPool", "channels": b.channels}
            for b in self.blocks
        ]
        return json.dumps({"output": FEATURES, "pool": "mean,std", "blocks": pooled})


def add_features(
    source: str | Path, target: str | Path, blocks: tuple[int, ...] = POOLED_BLOCKS
) -> FeatureLayout:
    """Write a copy of the model ``source`` to ``target`` with the ``features`` output added
    (the encoder ``blocks`` pooled); ``target`` must be another path. :class:`ModelError`
    naming ``source`` when the graph has no inspect U-Net encoder with those blocks, or
    already has a ``features`` output."""
    import onnx  # lazy: the train extra (0.7 s to load), for the tools that edit models

    source, target = Path(source), Path(target)
    if target.resolve() == source.resolve():
        raise ModelError(
            f"{target}: would overwrite the model it is made from; write the copy with the "
            "features output to another file"
        )
    try:
        proto = onnx.load(str(source))
    except Exception as e:  # onnx raises DecodeError & co. for a damaged file
        raise ModelError(f"{source}: not a readable ONNX model ({e})") from e
    layout = find_encoder(proto, source, blocks)
    _append_pooling(proto, layout)
    entry = proto.metadata_props.add()
    entry.key, entry.value = FAMILIARITY_KEY, layout.to_json()
    tmp = target.with_name(target.name + ".tmp")
    onnx.save(proto, str(tmp))
    tmp.replace(target)  # whole: a tool stopped midway leaves no half-written file
    return layout


def has_features(path: str | Path) -> bool:
    """Whether the model file ``path`` already gives the ``features`` output (a copy made by
    :func:`add_features`: its familiarity can be fitted again as it is)."""
    import onnx  # lazy: the train extra, as add_features

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # onnx raises DecodeError & co. for a damaged file
        raise ModelError(f"{path}: not a readable ONNX model ({e})") from e
    return any(o.name == FEATURES for o in proto.graph.output)


class _Graph:
    """A graph's nodes indexed by the tensors they make and read."""

    def __init__(self, graph: Any):
        self.nodes = list(graph.node)
        self.inits = {i.name: i for i in graph.initializer}
        self.producer = {out: node for node in self.nodes for out in node.output}
        self.consumers: dict[str, list[Any]] = {}
        for node in self.nodes:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)


def find_encoder(proto: Any, path: str | Path, blocks: tuple[int, ...]) -> FeatureLayout:
    """The :class:`FeatureLayout` of the ``blocks`` of the model ``proto`` (read from ``path``,
    named in errors): each block's output, checked to go on down the encoder (``MaxPool``) or,
    for the deepest, up the decoder (``Resize``)."""
    if any(o.name == FEATURES for o in proto.graph.output):
        raise ModelError(
            f"{path}: already has a '{FEATURES}' output; fit the familiarity on it as it is, "
            "or start again from the exported model"
        )
    g = _Graph(proto.graph)
    found = _blocks(g)
    if not found:
        raise ModelError(
            f"{path}: no encoder block (convolutions with weights named 'enc.<i>.…') in the "
            "graph: it is not a U-Net exported by inspect (inspect train), so the familiarity "
            "score cannot find its features"
        )
    depth = max(found)
    if missing := [b for b in blocks if b not in found]:
        raise ModelError(
            f"{path}: no encoder block enc.{missing[0]} (the graph has enc.0 to enc.{depth})"
        )
    outputs = {i: _block_output(g, found, i, depth, path) for i in sorted({*blocks, depth})}
    return FeatureLayout(tuple(_down_sampled(g, outputs[i], path) for i in blocks), depth)


def _down_sampled(g: _Graph, block: EncoderOutput, path: str | Path) -> EncoderOutput:
    """``block`` with the tensor its output becomes once max-pooled for the next level (after
    any quantize/dequantize pair: in an int8 file the float copy the next layers read), the
    one pooled into the features: a quarter of the block's output, so it costs a quarter of
    the time to pool, and in an int8 file it is dequantized already."""
    todo, seen = [block.tensor], set()
    while todo:
        t = todo.pop()
        seen.add(t)
        for c in g.consumers.get(t, ()):
            if c.op_type == "MaxPool":
                return replace(block, tensor=_past_qdq(c.output[0], g.consumers))
            if c.op_type in _QDQ and c.output[0] not in seen:
                todo.append(c.output[0])
    raise ModelError(
        f"{path}: the output of encoder block enc.{block.block} is not down-sampled "
        "(MaxPool) for a next level; pool blocks above the deepest one"
    )


def _past_qdq(tensor: str, consumers: dict[str, list[Any]]) -> str:
    """``tensor``, or where its only reader chain of quantize/dequantize ops ends (a float
    tensor: the dequantized copy)."""
    while (readers := consumers.get(tensor, [])) and len(readers) == 1:
        if readers[0].op_type not in _QDQ:
            break
        tensor = readers[0].output[0]
    return tensor


def _block_output(
    g: _Graph, found: dict[int, list[Any]], index: int, depth: int, path: str | Path
) -> EncoderOutput:
    """The tensor encoder block ``index`` gives (where each of its layers' output goes through
    the residual sum, activation and any quantize/dequantize pair, the one no layer of the
    block reads) and its channels."""
    members = found[index]
    ids = {id(n) for n in members}
    walked = {id(n): _walk_out(n.output[0], g.consumers) for n in members}
    ends = {t for t in walked.values() if not any(id(c) in ids for c in g.consumers.get(t, ()))}
    if len(ends) != 1:
        raise ModelError(
            f"{path}: encoder block enc.{index} has {len(ends)} outputs "
            f"({', '.join(sorted(ends))}) instead of one; re-export the model with inspect"
        )
    tensor = ends.pop()
    if tensor in g.producer and g.producer[tensor].op_type == "QuantizeLinear":
        raise ModelError(f"{path}: enc.{index} ends in a quantized tensor with no dequantize")
    goes_to = "Resize" if index == depth else "MaxPool"
    if not _feeds(tensor, g.consumers, goes_to):
        where = "the decoder's upsampling" if index == depth else "the next encoder level"
        raise ModelError(
            f"{path}: the output of encoder block enc.{index} (tensor {tensor!r}) does not feed "
            f"{where} ({goes_to}): the graph is not an inspect U-Net"
        )
    channels = {
        int(g.inits[w].dims[0])
        for n in members
        if n.op_type == "Conv" and walked[id(n)] == tensor
        if (w := _weight_name(n.input[1], g.producer, set(g.inits))) and g.inits[w].dims
    }
    if len(channels) != 1:
        raise ModelError(f"{path}: cannot tell how many channels enc.{index} gives")
    return EncoderOutput(index, tensor, channels.pop())


def _blocks(g: _Graph) -> dict[int, list[Any]]:
    """Encoder block index -> its nodes (by node name, or by the names of their weights)."""
    out: dict[int, list[Any]] = {}
    inits = set(g.inits)
    for node in g.nodes:
        if node.op_type in _QDQ:
            continue  # a weight's dequantize is not a layer of the block
        index = _block_of(node, g.producer, inits)
        if index is not None:
            out.setdefault(index, []).append(node)
    return out


def _block_of(node: Any, producer: dict[str, Any], inits: set[str]) -> int | None:
    """The encoder block ``node`` is a layer of (None: not of the encoder)."""
    m = _NODE.match(node.name)
    if m:
        return int(m.group(1))
    for name in node.input[1:]:  # a layer's weights come after its data input
        weight = _weight_name(name, producer, inits)
        if weight and (m := _WEIGHT.match(weight)):
            return int(m.group(1))
    return None


def _weight_name(name: str, producer: dict[str, Any], inits: set[str]) -> str | None:
    """The initializer a node input is: itself, or (int8) what its ``DequantizeLinear`` reads."""
    if name in inits:
        return name
    node = producer.get(name)
    if node is not None and node.op_type == "DequantizeLinear" and node.input[0] in inits:
        return str(node.input[0])
    return None


def _walk_out(tensor: str, consumers: dict[str, list[Any]]) -> str:
    """Follow ``tensor`` through the ops a block's output passes (:data:`_PASS`) while each is
    its only reader; the tensor reached is what leaves the block."""
    seen = set()
    while tensor not in seen:
        seen.add(tensor)
        readers = [c for c in consumers.get(tensor, ()) if c.op_type not in _SHAPE_ONLY]
        if len(readers) != 1 or readers[0].op_type not in _PASS:
            return tensor
        tensor = readers[0].output[0]
    return tensor


def _feeds(tensor: str, consumers: dict[str, list[Any]], op: str) -> bool:
    """Whether ``tensor`` (or its quantize/dequantize copy) is read by an ``op`` node."""
    todo, seen = [tensor], set()
    while todo:
        t = todo.pop()
        seen.add(t)
        for c in consumers.get(t, ()):
            if c.op_type == op:
                return True
            if c.op_type in _QDQ and c.output[0] not in seen:
                todo.append(c.output[0])
    return False


def _append_pooling(proto: Any, layout: FeatureLayout) -> None:
    """Append, for each pooled block, the mean and standard deviation over H and W of each of
    its channels, all concatenated to (N, width) as the graph output ``features`` (after every
    existing output)."""
    from onnx import TensorProto, helper

    parts = []
    for b in layout.blocks:
        x, p = b.tensor, f"familiarity_enc{b.block}_"
        parts += [p + "mean", p + "std"]
        proto.graph.node.extend(
            [
                helper.make_node("GlobalAveragePool", [x], [p + "mean"], name=p + "mean"),
                helper.make_node("Mul", [x, x], [p + "sq"], name=p + "sq"),
                helper.make_node("GlobalAveragePool", [p + "sq"], [p + "msq"], name=p + "msq"),
                helper.make_node("Mul", [p + "mean", p + "mean"], [p + "m2"], name=p + "m2"),
                helper.make_node("Sub", [p + "msq", p + "m2"], [p + "var"], name=p + "var"),
                helper.make_node("Relu", [p + "var"], [p + "var0"], name=p + "var0"),
                helper.make_node("Sqrt", [p + "var0"], [p + "std"], name=p + "std"),
            ]
        )
    proto.graph.node.extend(
        [
            helper.make_node("Concat", parts, ["familiarity_all"], name="familiarity_all", axis=1),
            helper.make_node("Flatten", ["familiarity_all"], [FEATURES], name=FEATURES, axis=1),
        ]
    )
    out = helper.make_tensor_value_info(FEATURES, TensorProto.FLOAT, ["batch", layout.width])
    proto.graph.output.append(out)
