"""The ``features`` output of a model copy made by :mod:`inspect_core.health.familiarity_graph`,
for one whole image, fed exactly as :class:`~inspect_core.runtime.onnx_model.OnnxModel` feeds
it: the same normalisation and channels, the same tiles (a larger image is cut at multiples of
the network's stride, with the same overlap) and the same test-time copies (``meta.tta``). The
pooled features of every run of an image (each tile, each copy) are averaged
(:func:`average_features`): one vector per image, the one the familiarity model was fitted on
and is scored on.

For the fitting tool (training/fit_familiarity.py) and for measuring; a station will read the
same output from the runs it already makes (not wired yet).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from inspect_core.data.datasets import to_channels
from inspect_core.errors import ModelError
from inspect_core.runtime.engines import FEATURES, META_KEY, ort_session
from inspect_core.runtime.onnx_model import TTA_TRANSFORMS, ModelMeta, normalize, tile_starts


def average_features(per_run: Sequence[np.ndarray]) -> np.ndarray:
    """One image's features: the mean over its runs (tiles, test-time copies) of each run's
    ``features`` row, as float64 (1-D, 2C values)."""
    if not per_run:
        raise ValueError("no run's features to average")
    rows = [np.asarray(f, np.float64).reshape(-1) for f in per_run]
    if len({r.shape for r in rows}) != 1:
        raise ValueError(f"runs gave features of different sizes: {sorted({len(r) for r in rows})}")
    out: np.ndarray = np.mean(rows, axis=0)
    return out


class FeatureRun:
    """An ONNX Runtime session on a model copy with the ``features`` output: the logits and the
    features of each run, and :meth:`image_features` for a whole image."""

    def __init__(self, path: str | Path, threads: int = 0):
        self.path = Path(path)
        self.session = ort_session(self.path, threads)
        names = [o.name for o in self.session.get_outputs()]
        if FEATURES not in names:
            raise ModelError(
                f"{self.path}: has no '{FEATURES}' output (outputs: {', '.join(names)}); make "
                "the copy with training/fit_familiarity.py"
            )
        self.outputs = [names[0], FEATURES]
        self.input_name = self.session.get_inputs()[0].name
        raw = self.session.get_modelmeta().custom_metadata_map.get(META_KEY)
        if raw is None:
            raise ModelError(f"{self.path}: no '{META_KEY}' metadata; export it with inspect")
        self.meta = ModelMeta.from_json(raw, self.path)

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits (N, classes, H, W) and features (N, 2C) of a normalised float32 batch."""
        feed = {self.input_name: np.ascontiguousarray(batch, np.float32)}
        logits, features = self.session.run(self.outputs, feed)
        return logits, features

    def image_features(
        self, img: np.ndarray, tile: int | None = None, overlap: float = 0.25
    ) -> np.ndarray:
        """The features of one uint8 image (H, W[, 3]) as the runtime runs it: each tile and
        each test-time copy one run (:meth:`batches`), their features averaged
        (:func:`average_features`)."""
        return average_features([self.run(b)[1][0] for b in self.batches(img, tile, overlap)])

    def batches(
        self, img: np.ndarray, tile: int | None = None, overlap: float = 0.25
    ) -> list[np.ndarray]:
        """The inputs of every network run the runtime makes for the uint8 image ``img``: its
        normalised tiles (the whole image when it fits ``tile``, default the model's), each
        followed by its test-time copies; (1, C, h, w) float32 each."""
        m = self.meta
        x = normalize(to_channels(img, m.channels), m.mean, m.std)
        out = []
        for t in self._tiles(x, tile or m.tile, overlap):
            batch = np.ascontiguousarray(t[None])
            out.append(batch)
            out += [np.ascontiguousarray(TTA_TRANSFORMS[n][0](batch)) for n in m.tta]
        return out

    def _tiles(self, x: np.ndarray, tile: int, overlap: float) -> list[np.ndarray]:
        """The tiles :meth:`OnnxModel.probabilities` cuts ``x`` (C, H, W) into: the whole image
        when it fits ``tile``, else tiles at multiples of the stride over the image padded
        (edge) to a multiple of it."""
        h, w = x.shape[1:]
        if h <= tile and w <= tile:
            return [x]
        s = max(1, self.meta.stride)
        hp, wp = -(-h // s) * s, -(-w // s) * s
        x = np.pad(x, ((0, 0), (0, hp - h), (0, wp - w)), mode="edge")
        tile = max(s, tile // s * s)
        th, tw = min(tile, hp), min(tile, wp)
        return [
            x[:, y : y + th, xx : xx + tw]
            for y in tile_starts(hp, th, overlap, s)
            for xx in tile_starts(wp, tw, overlap, s)
        ]
