"""How much an image looks like the images a model was trained on (issue 25, item 1), from the
same run as its segmentation, without retraining.

A model copy with a ``features`` output (:mod:`inspect_core.health.familiarity_graph`) gives,
for each image, the mean and standard deviation of each channel of its first encoder blocks
(:mod:`inspect_core.health.familiarity_run` averages them over tiles and test-time copies as
the runtime does). :func:`fit` describes the training images' features (their logarithms) by
their per-channel mean and a shrunk covariance (Ledoit-Wolf, on standardised values); an image's
:meth:`FamiliarityModel.distance` is its Mahalanobis distance to them. The threshold is set on
images no fitting saw (the card's held-out images): the conformal quantile that flags at most
``max_flagged`` (2%) of images from the conditions trained on, where there are enough held-out
images to say so (``1/max_flagged - 1``, 49 for 2%); with fewer, the farthest of them.
:meth:`FamiliarityModel.familiarity` is the share of those held-out images that lie farther
out: 1 = as typical as any, 0 = farther than all of them.

Stored compactly beside the model copy (:func:`save`, :func:`load`: one ``.npz``, no pickles)
with the sha256 of the copy it was fitted for, so a familiarity file never scores another
model's features. NumPy only: no torch, no onnx.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from inspect_core.cards import sha256_file
from inspect_core.errors import ModelError

MAX_FLAGGED = 0.02  # of images from the conditions trained on, at most, flagged unfamiliar
FORMAT = 1  # version of the stored file
MIN_SCALE = 1e-3  # floor of a feature's scale, relative to the median scale of all of them
# log(eps + x): the pooled activations are non-negative and skewed (a channel's mean over an
# image is a sum of ReLUs); in log space their spread is closer to a Gaussian's
LOG_EPS = 1e-2


@dataclass(frozen=True)
class Familiarity:
    """One image: its familiarity ``value`` in [0, 1] (higher = more like the training images),
    whether it is ``unfamiliar`` (too unlike them to be judged with confidence: its distance is
    past the threshold), and the distance itself (None where a check gives no distance)."""

    value: float
    unfamiliar: bool
    distance: float | None = None


@dataclass(frozen=True)
class FamiliarityModel:
    """The training images' features (``center``, ``whiten``: d(x) = |whiten (t(x) - center)|
    with t the log transform), the threshold, and the held-out distances it was set on."""

    center: np.ndarray  # (D,) float64: mean of the transformed training features
    whiten: np.ndarray  # (D, D) float32: the shrunk inverse covariance's square root
    threshold: float
    calibration: np.ndarray  # (n,) float64, sorted: distances of the held-out images
    shrinkage: float  # Ledoit-Wolf's weight of the identity, 0..1
    trained_on: int  # training images fitted on
    max_flagged: float = MAX_FLAGGED
    model_sha256: str = ""  # the model copy (with the features output) it belongs to

    @property
    def features(self) -> int:
        return int(self.center.shape[0])

    @property
    def calibrated(self) -> bool:
        """Whether the held-out images were enough for the threshold to be a quantile that
        flags at most ``max_flagged`` of new images (else it is their maximum)."""
        return conformal_rank(len(self.calibration), self.max_flagged) <= len(self.calibration)

    def distance(self, features: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of each row of ``features`` (N, D), or of one vector (D,)."""
        x = np.asarray(features, np.float64)
        if x.shape[-1] != self.features:
            raise ValueError(
                f"features have {x.shape[-1]} values, the familiarity model {self.features}: "
                "they come from another model; fit the familiarity for this one"
            )
        z = (transform(x) - self.center) @ self.whiten.T.astype(np.float64)
        out: np.ndarray = np.sqrt(np.einsum("...i,...i->...", z, z))
        return out

    def familiarity(self, distance: float) -> float:
        """The share of the held-out images farther out than ``distance``: 1 = nearer than
        every one of them, 0 = farther than all."""
        n = len(self.calibration)
        if n == 0:
            return 1.0 if distance <= self.threshold else 0.0
        nearer_or_equal = int(np.searchsorted(self.calibration, distance, side="right"))
        return (n - nearer_or_equal) / n

    def familiarity_of(self, features: np.ndarray) -> Familiarity:
        """The :class:`Familiarity` of one image from its ``features`` (D,): the output of the
        runs of that image, averaged over tiles and copies as the runtime does (a
        :class:`~inspect_core.health.gate.FamiliarityCheck`)."""
        d = float(self.distance(np.asarray(features).reshape(-1)))
        return Familiarity(self.familiarity(d), d > self.threshold, d)

    def flagged(self, features: np.ndarray) -> float:
        """The share of the images (rows of ``features``) flagged unfamiliar."""
        if len(features) == 0:
            return 0.0
        return float(np.mean(self.distance(features) > self.threshold))


def transform(x: np.ndarray) -> np.ndarray:
    """The features as fitted: log(eps + x), the pooled activations being non-negative."""
    out: np.ndarray = np.log(LOG_EPS + np.maximum(np.asarray(x, np.float64), 0.0))
    return out


def conformal_rank(n: int, max_flagged: float) -> int:
    """The rank (1-based, among ``n`` sorted held-out distances) of the threshold that flags at
    most ``max_flagged`` of new images from the same conditions: ceil((n + 1)(1 - share))."""
    return math.ceil((n + 1) * (1.0 - max_flagged) - 1e-9)


def threshold_for(distances: np.ndarray, max_flagged: float = MAX_FLAGGED) -> float:
    """The distance that flags at most ``max_flagged`` of images like ``distances`` (held-out
    images): their conformal quantile; with too few of them, the largest."""
    d = np.sort(np.asarray(distances, np.float64))
    if len(d) == 0:
        raise ValueError("no held-out image to set the threshold on")
    k = conformal_rank(len(d), max_flagged)
    return float(d[min(k, len(d)) - 1])


def fit(
    features_train: np.ndarray,
    features_heldout: np.ndarray,
    max_flagged: float = MAX_FLAGGED,
    model_sha256: str = "",
) -> FamiliarityModel:
    """Fit on the training images' features (N, D), set the threshold on the held-out images'
    (M, D): those no fitting saw. ValueError for too few images or mismatched sizes."""
    train = transform(_rows(features_train, "training"))
    held = _rows(features_heldout, "held-out")
    if train.shape[1] != held.shape[1]:
        raise ValueError(
            f"training features have {train.shape[1]} values, held-out {held.shape[1]}"
        )
    if len(train) < 2:
        raise ValueError(f"{len(train)} training image(s): fitting needs at least 2")
    center = train.mean(axis=0)
    scale = train.std(axis=0)
    scale = np.maximum(scale, MIN_SCALE * max(float(np.median(scale)), 1e-12))
    cov, shrinkage = ledoit_wolf((train - center) / scale)
    values, vectors = np.linalg.eigh(cov)
    whiten = (vectors / np.sqrt(np.maximum(values, 1e-12))).T / scale  # (D, D)
    partial = FamiliarityModel(
        center, whiten.astype(np.float32), math.inf, np.empty(0), shrinkage, len(train)
    )
    calibration = np.sort(partial.distance(held))
    return FamiliarityModel(
        center=center,
        whiten=whiten.astype(np.float32),
        threshold=threshold_for(calibration, max_flagged),
        calibration=calibration,
        shrinkage=shrinkage,
        trained_on=len(train),
        max_flagged=max_flagged,
        model_sha256=model_sha256,
    )


def recalibrate(
    fam: FamiliarityModel, features_heldout: np.ndarray, model_sha256: str
) -> FamiliarityModel:
    """``fam``'s description of the training images with the threshold set again on the
    held-out images' features from another file of the same network (the int8 variant, whose
    features differ a little from the fp32 network's), for that file (``model_sha256``)."""
    calibration = np.sort(fam.distance(_rows(features_heldout, "held-out")))
    return replace(
        fam,
        calibration=calibration,
        threshold=threshold_for(calibration, fam.max_flagged),
        model_sha256=model_sha256,
    )


def held_out_estimate(
    fam: FamiliarityModel, features_heldout: np.ndarray, folds: np.ndarray
) -> float | None:
    """The share of held-out images flagged by a threshold set on the other fold (``folds``:
    0 or 1 per image; by group where the images have groups): what the threshold does on
    images it was not set on, where ``fam.flagged`` of its own held-out images is low by
    construction. None when a fold is empty."""
    d = fam.distance(_rows(features_heldout, "held-out"))
    folds = np.asarray(folds)
    if len(folds) != len(d) or not all(np.any(folds == f) for f in (0, 1)):
        return None
    flagged = sum(
        int(np.sum(d[folds == f] > threshold_for(d[folds != f], fam.max_flagged))) for f in (0, 1)
    )
    return flagged / len(d)


def _rows(features: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(features, np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"{what} features must be a non-empty (images, values) array")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what} features hold NaN or infinite values")
    return x


def ledoit_wolf(z: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit & Wolf's (2004) shrunk covariance of the centred rows ``z`` (N, D): the sample
    covariance pulled towards a multiple of the identity by the weight that minimises the
    expected squared error; returns it and that weight."""
    n, p = z.shape
    s = z.T @ z / n
    mu = float(np.trace(s)) / p
    delta = float(np.sum((s - mu * np.eye(p)) ** 2)) / p
    if delta <= 0.0:
        return s, 0.0
    norms = np.einsum("ij,ij->i", z, z)
    beta_sum = float(np.sum(norms**2)) - n * float(np.sum(s**2))
    beta = min(max(beta_sum, 0.0) / (n * n * p), delta)
    shrinkage = beta / delta
    return shrinkage * mu * np.eye(p) + (1.0 - shrinkage) * s, shrinkage


def familiarity_path(model: str | Path) -> Path:
    """Where the familiarity of the model copy ``model`` is stored: beside it, ``.npz``."""
    return Path(model).with_suffix(".familiarity.npz")


def for_model_file(model: str | Path, features: int | None = None) -> FamiliarityModel | None:
    """The familiarity stored beside the model file ``model`` (the file that runs: a variant
    file has its own), checked to be fitted for that very file; None when there is none.
    ``features``: how many values the file's ``features`` output gives, checked too.
    :class:`ModelError` naming the file when one is there but unusable: a station must not
    quietly run without the check it was given."""
    path = familiarity_path(model)
    if not path.is_file():
        return None
    fam = load(path, model=model)
    if features is not None and features != fam.features:
        raise ModelError(
            f"{path}: fitted on {fam.features} feature values, but {model} gives {features}; "
            "fit the familiarity again for this model (training/fit_familiarity.py)"
        )
    return fam


def save(fam: FamiliarityModel, path: str | Path) -> Path:
    """Write ``fam`` to ``path`` (compressed ``.npz``: arrays and one JSON header, no pickle),
    whole or not at all."""
    path = Path(path)
    header = {
        "format": FORMAT,
        "threshold": fam.threshold,
        "shrinkage": fam.shrinkage,
        "trained_on": fam.trained_on,
        "max_flagged": fam.max_flagged,
        "model_sha256": fam.model_sha256,
        "log_eps": LOG_EPS,
    }
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez_compressed(
            f,
            header=np.array(json.dumps(header)),
            center=fam.center,
            whiten=fam.whiten,
            calibration=fam.calibration,
        )
    tmp.replace(path)
    return path


def load(path: str | Path, model: str | Path | None = None) -> FamiliarityModel:
    """The familiarity stored at ``path``; with ``model``, checked to belong to that file (its
    sha256). :class:`ModelError` naming the file when it is unreadable, of another format, or
    fitted for another model."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(str(z["header"]))
            arrays = {k: np.array(z[k]) for k in ("center", "whiten", "calibration")}
    except (OSError, KeyError, ValueError) as e:
        raise ModelError(
            f"{path}: not a readable familiarity file ({e}); fit it again with "
            "training/fit_familiarity.py"
        ) from e
    if header.get("format") != FORMAT or header.get("log_eps") != LOG_EPS:
        raise ModelError(
            f"{path}: familiarity file format {header.get('format')!r}, this inspect reads "
            f"{FORMAT}; fit it again with training/fit_familiarity.py"
        )
    d = arrays["center"].shape[0]
    if arrays["center"].ndim != 1 or arrays["whiten"].shape != (d, d):
        raise ModelError(f"{path}: damaged familiarity file (array shapes do not agree)")
    fam = FamiliarityModel(
        center=arrays["center"].astype(np.float64),
        whiten=arrays["whiten"].astype(np.float32),
        threshold=float(header["threshold"]),
        calibration=np.sort(arrays["calibration"].astype(np.float64)),
        shrinkage=float(header["shrinkage"]),
        trained_on=int(header["trained_on"]),
        max_flagged=float(header["max_flagged"]),
        model_sha256=str(header["model_sha256"]),
    )
    if model is not None and fam.model_sha256 != (actual := sha256_file(model)):
        raise ModelError(
            f"{path}: fitted for the model with sha256 {fam.model_sha256[:12]}…, but {model} "
            f"is {actual[:12]}…; fit the familiarity again for this model "
            "(training/fit_familiarity.py)"
        )
    return fam
