"""ONNX inference: whole images, batches, and sliding-window tiles (no torch).

``OnnxModel`` reads the metadata embedded at export (classes, normalisation, channels, input
size), so the ``.onnx`` file alone is enough. Images larger than the tile size are cut into
overlapping tiles whose softmax probabilities are blended with a smooth weight window, so the
seams do not show. The network runs on ONNX Runtime in fp32, or on the faster variant (int8,
bf16; ONNX Runtime or OpenVINO) that the model's card ships and this machine runs:
:mod:`inspect_core.runtime.variants` picks it, :mod:`inspect_core.runtime.engines` runs it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from inspect_core.cards import ModelCheck
from inspect_core.data.datasets import to_channels
from inspect_core.errors import ModelError
from inspect_core.runtime.engines import META_KEY as META_KEY  # re-exported: export.py
from inspect_core.runtime.engines import Engine
from inspect_core.runtime.loader import LoadedModel, load_model

# Test-time augmentation: each transform of an (N, C, H, W) batch with the inverse that maps its
# probabilities back; together with the identity they are the 8 symmetries of a square.
Transform = Callable[[np.ndarray], np.ndarray]
TTA_TRANSFORMS: dict[str, tuple[Transform, Transform]] = {
    "h": (lambda x: np.flip(x, 3), lambda p: np.flip(p, 3)),  # mirror left-right
    "v": (lambda x: np.flip(x, 2), lambda p: np.flip(p, 2)),  # mirror top-bottom
    "hv": (lambda x: np.flip(x, (2, 3)), lambda p: np.flip(p, (2, 3))),  # rotate 180
    "t": (lambda x: x.swapaxes(2, 3), lambda p: p.swapaxes(2, 3)),  # transpose (main diagonal)
    "at": (
        lambda x: np.flip(x, (2, 3)).swapaxes(2, 3),  # anti-diagonal
        lambda p: np.flip(p.swapaxes(2, 3), (2, 3)),
    ),
    "r90": (lambda x: np.rot90(x, 1, (2, 3)), lambda p: np.rot90(p, -1, (2, 3))),
    "r270": (lambda x: np.rot90(x, -1, (2, 3)), lambda p: np.rot90(p, 1, (2, 3))),
}


_Sink = list[np.ndarray] | None  # where a run's features go (None: not wanted)


@dataclass(frozen=True)
class Prediction:
    """The model over one image: its probabilities (classes, H, W) and, where the network
    gives them, its features (D,) float64 for the familiarity score (else None)."""

    probs: np.ndarray
    features: np.ndarray | None = None


@dataclass(frozen=True)
class ModelMeta:
    classes: list[str]
    mean: float
    std: float
    channels: int
    input_size: int
    stride: int = 16
    tile_size: int = 0  # 0 = max(512, input_size)
    tta: tuple[str, ...] = ()  # transforms averaged at inference, names from TTA_TRANSFORMS
    # Log-probability offset per class (prior-shift correction, fitted on the validation split
    # by training/fit_prior.py): p(c) * exp(bias[c]), renormalised. Training on crops centred on
    # defects teaches a defect prior far above the line's; this puts it back.
    class_bias: tuple[float, ...] = ()

    @property
    def class_weights(self) -> np.ndarray | None:
        if not self.class_bias or not any(self.class_bias):
            return None
        return np.exp(np.asarray(self.class_bias, np.float32))[None, :, None, None]

    @property
    def tile(self) -> int:
        return self.tile_size or max(512, self.input_size)

    @classmethod
    def from_json(cls, raw: str, path: Path) -> ModelMeta:
        """The metadata embedded in the model file ``path`` (``raw``: its JSON), checked."""
        m = json.loads(raw)
        meta = cls(
            m["classes"],
            float(m["mean"]),
            float(m["std"]),
            int(m["channels"]),
            int(m["input_size"]),
            int(m.get("stride", 16)),
            int(m.get("tile_size", 0)),
            tuple(m.get("tta", ())),
            tuple(float(b) for b in m.get("class_bias", ())),
        )
        unknown = [t for t in meta.tta if t not in TTA_TRANSFORMS]
        if unknown:
            raise ModelError(
                f"{path}: metadata asks for test-time transforms {unknown}; "
                f"known are {sorted(TTA_TRANSFORMS)}. Rerun training/choose_tta.py "
                "or upgrade inspect"
            )
        if meta.class_bias and len(meta.class_bias) != len(meta.classes):
            raise ModelError(
                f"{path}: metadata has {len(meta.class_bias)} class_bias "
                f"values for {len(meta.classes)} classes; recalibrate it "
                "(training/fit_prior.py) or remove class_bias"
            )
        return meta


def _normalize(img: np.ndarray, mean: float, std: float) -> np.ndarray:
    x = img.astype(np.float32) * (1.0 / 255.0)
    x -= mean
    x *= 1.0 / std
    return x


@lru_cache(maxsize=8, typed=True)
def _normalize_table(mean: float, std: float) -> np.ndarray:
    """``_normalize`` of every uint8 value: the same float32 operations, so the same numbers."""
    table = _normalize(np.arange(256, dtype=np.uint8), mean, std)
    table.flags.writeable = False
    return table


def normalize(img: np.ndarray, mean: float, std: float) -> np.ndarray:
    """uint8 (H, W[, C]) -> float32 (C, H, W), (x/255 - mean) / std (as in training)."""
    if (
        img.dtype == np.uint8
        and img.size
        and img.ndim in (2, 3)
        and type(mean) is float
        and type(std) is float
    ):
        # a uint8 image has 256 values: look them up (one pass, bit-identical to computing them)
        table = _normalize_table(mean, std)
        if img.ndim == 2:
            return cv2.LUT(img, table)[None]
        out = np.empty((img.shape[2], *img.shape[:2]), np.float32)
        for k, channel in enumerate(cv2.split(img)):
            cv2.LUT(channel, table, dst=out[k])
        return out
    x = _normalize(img, mean, std)
    return np.ascontiguousarray(x[None] if x.ndim == 2 else x.transpose(2, 0, 1))


def softmax(logits: np.ndarray, axis: int = 1, inplace: bool = False) -> np.ndarray:
    """Softmax over ``axis``; ``inplace`` overwrites ``logits`` (an array the caller owns)
    instead of allocating another one: the same numbers either way."""
    if inplace:
        z = logits
        z -= z.max(axis=axis, keepdims=True)
    else:
        z = logits - logits.max(axis=axis, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=axis, keepdims=True)
    return z


def blend_window(h: int, w: int) -> np.ndarray:
    """Weights for one tile: highest in the middle, small but non-zero at the border."""

    def ramp(n: int) -> np.ndarray:
        r = np.minimum(np.arange(n) + 1, np.arange(n)[::-1] + 1).astype(np.float32)
        weights: np.ndarray = np.minimum(r / max(1.0, n / 4), 1.0)
        return weights

    return np.outer(ramp(h), ramp(w)).astype(np.float32) + 1e-3


def tile_starts(length: int, tile: int, overlap: float, align: int = 1) -> list[int]:
    """Start offsets covering ``length`` with tiles of ``tile`` overlapping by ``overlap``.

    With ``length`` and ``tile`` multiples of ``align``, every start is a multiple of it too.
    """
    if length <= tile:
        return [0]
    step = max(align, int(tile * (1 - overlap)) // align * align)
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


class OnnxModel:
    """A segmentation model in an ONNX file, run on the CPU (or a GPU) by ONNX Runtime, or by
    the faster variant its card ships (:mod:`inspect_core.runtime.variants`)."""

    def __init__(
        self,
        path: str | Path,
        threads: int = 0,
        providers: list[str] | None = None,
        card: str | Path | None = None,
        verify: bool = True,
        variant: str | None = None,
        engine: Engine | None = None,
        *,
        required: bool = False,
        loaded: LoadedModel | None = None,
    ):
        """Load ``path`` through :func:`inspect_core.runtime.loader.load_model`: first checked
        against its model card (``card``, default the ``.json`` beside it; ``required``: a
        missing card refuses it), a file that does not match is refused (see
        :func:`inspect_core.cards.verify_model`). ``verify=False`` is for the training tools that
        rewrite a model and then its card (no variant runs then).

        ``variant``: ``auto`` (the fastest variant the card ships that this machine runs, else
        the fp32 file), ``fp32``, or a variant's name; default ``INSPECT_VARIANT``, else
        ``auto``. ``engine``: run this instead (training/variants.py scores its candidates
        through it); ``path`` only names the model then. ``variant_name`` says what runs.
        ``loaded``: a model :func:`~inspect_core.runtime.loader.load_model` opened already."""
        if loaded is None:
            loaded = load_model(
                path,
                card,
                required=required,
                verify=verify,
                threads=threads,
                providers=providers,
                variant=variant,
                engine=engine,
            )
        self.loaded = loaded
        self.path = loaded.path
        self.check: ModelCheck | None = loaded.check
        self.variant_name = loaded.variant
        self.engine: Engine = loaded.engine
        # ONNX Runtime's session, for tools that time or wrap it; None on another engine
        self.session = getattr(self.engine, "session", None)
        raw = self.engine.metadata()
        if raw is None:
            raise ModelError(
                f"{self.path}: no '{META_KEY}' metadata; export it with inspect "
                "(inspect train writes it) so classes and normalisation are known"
            )
        self.meta = ModelMeta.from_json(raw, self.path)

    @property
    def classes(self) -> list[str]:
        return self.meta.classes

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """Raw network output for a normalised (N, C, H, W) float32 batch."""
        return self.engine.run(batch)

    @property
    def has_features(self) -> bool:
        """Whether the network gives the pooled encoder features (a ``features`` output) with
        its logits: the familiarity score's input (issue 25)."""
        return bool(getattr(self.engine, "has_features", False))

    def _softmax(self, batch: np.ndarray, sink: _Sink = None) -> np.ndarray:
        """Softmax of the network's output, computed in that output's own memory (every engine
        hands over a new buffer on every run; nothing else refers to it). ``sink``: where the
        run's features (N, D) go, when the network gives them."""
        if sink is not None and self.has_features:
            z, features = self.engine.run_with_features(batch)
            if features is not None:
                sink.append(np.asarray(features, np.float32).reshape(len(batch), -1))
        else:
            z = self.logits(batch)
        return softmax(z, inplace=z.flags.writeable and z.dtype == np.float32)

    def _probs(self, batch: np.ndarray, sink: _Sink = None) -> np.ndarray:
        """Softmax of a batch; with test-time augmentation (``meta.tta``) the probabilities
        of the flipped or turned copies are mapped back and averaged, then reweighted by the
        class prior correction (``meta.class_bias``), if any."""
        p = self._averaged(batch, sink)
        w = self.meta.class_weights
        if w is not None:
            p *= w
            p /= p.sum(1, keepdims=True)
        return p

    def _averaged(self, batch: np.ndarray, sink: _Sink = None) -> np.ndarray:
        # one run per copy: on this memory-bound network four batch-1 runs take 17-21% less
        # time than one batch-4 run (bench/tta.py), and a transposed copy of a non-square
        # image could not share a batch with the others anyway
        out = self._softmax(batch, sink)
        for t in self.meta.tta:
            fwd, inv = TTA_TRANSFORMS[t]
            out += inv(self._softmax(fwd(batch), sink))
        if self.meta.tta:
            out /= 1 + len(self.meta.tta)
        return out

    def prepare(self, img: np.ndarray) -> np.ndarray:
        return normalize(to_channels(img, self.meta.channels), self.meta.mean, self.meta.std)

    def probabilities(
        self, img: np.ndarray, tile: int | None = None, overlap: float = 0.25, batch: int = 1
    ) -> np.ndarray:
        """Softmax probabilities (classes, H, W) for one uint8 image, tiled when larger than
        ``tile`` (default: the model's tile size)."""
        x = self.prepare(img)
        tile = tile or self.meta.tile
        h, w = x.shape[1:]
        if h <= tile and w <= tile:
            probs: np.ndarray = self._probs(x[None])[0]
            return probs
        return self._tiled(x, tile, overlap, batch)

    def predict(
        self, img: np.ndarray, tile: int | None = None, overlap: float = 0.25, batch: int = 1
    ) -> Prediction:
        """:meth:`probabilities` and, where the network gives them, the image's features from
        the same runs: the mean over every run (each tile, each test-time copy) of its
        ``features`` row, as the familiarity model was fitted on them."""
        if not self.has_features:
            return Prediction(self.probabilities(img, tile, overlap, batch))
        sink: list[np.ndarray] = []
        x = self.prepare(img)
        tile = tile or self.meta.tile
        if max(x.shape[1:]) <= tile:
            probs = self._probs(x[None], sink)[0]
        else:
            probs = self._tiled(x, tile, overlap, batch, sink)
        return Prediction(probs, _mean_rows(sink))

    def _tiled(
        self, x: np.ndarray, tile: int, overlap: float, batch: int, sink: _Sink = None
    ) -> np.ndarray:
        c, h, w = x.shape
        # Tiles start at multiples of the network's stride, so each tile's pooling grid lines up
        # with the whole image's and a tile reproduces whole-image inference away from its edges.
        # For that the image is padded (edge, as the network pads itself) to a multiple of the
        # stride and the tile size is rounded down to one.
        s = max(1, self.meta.stride)
        hp, wp = -(-h // s) * s, -(-w // s) * s
        x = np.pad(x, ((0, 0), (0, hp - h), (0, wp - w)), mode="edge")
        tile = max(s, tile // s * s)
        th, tw = min(tile, hp), min(tile, wp)
        window = blend_window(th, tw)
        acc = np.zeros((len(self.classes), hp, wp), np.float32)
        norm = np.zeros((hp, wp), np.float32)
        boxes = [
            (y, xx)
            for y in tile_starts(hp, th, overlap, s)
            for xx in tile_starts(wp, tw, overlap, s)
        ]
        for i in range(0, len(boxes), batch):
            chunk = boxes[i : i + batch]
            tiles = np.stack([x[:, y : y + th, xx : xx + tw] for y, xx in chunk])
            probs = self._probs(tiles, sink)
            for (y, xx), p in zip(chunk, probs):
                acc[:, y : y + th, xx : xx + tw] += p * window
                norm[y : y + th, xx : xx + tw] += window
        acc /= norm
        return np.ascontiguousarray(acc[:, :h, :w])

    def probabilities_batch(
        self, imgs: list[np.ndarray], tile: int | None = None, overlap: float = 0.25
    ) -> list[np.ndarray]:
        """Several same-size images in one run when they fit one ``tile`` (default: the
        model's tile size); else one by one, tiled with ``tile`` and ``overlap`` as
        :meth:`probabilities` does, so a batch gives what single images give."""
        return [p.probs for p in self.predict_batch(imgs, tile, overlap)]

    def predict_batch(
        self, imgs: list[np.ndarray], tile: int | None = None, overlap: float = 0.25
    ) -> list[Prediction]:
        """:meth:`probabilities_batch`, with each image's features as :meth:`predict` gives
        them (the rows of one batched run are the images')."""
        tile = tile or self.meta.tile
        if len({im.shape for im in imgs}) == 1 and max(imgs[0].shape[:2]) <= tile:
            sink: list[np.ndarray] | None = [] if self.has_features else None
            probs = self._probs(np.stack([self.prepare(im) for im in imgs]), sink)
            if not sink:
                return [Prediction(p) for p in probs]
            return [
                Prediction(p, _mean_rows([f[i : i + 1] for f in sink])) for i, p in enumerate(probs)
            ]
        return [self.predict(im, tile=tile, overlap=overlap) for im in imgs]


def _mean_rows(parts: list[np.ndarray]) -> np.ndarray | None:
    """The mean of every row of ``parts`` ((n, D) each) as float64 (D,); None for none."""
    if not parts:
        return None
    out: np.ndarray = np.concatenate(parts, axis=0).astype(np.float64).mean(axis=0)
    return out
