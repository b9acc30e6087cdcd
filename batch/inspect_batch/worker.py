"""What runs on a Dask worker: the candidate model, loaded once per worker by a worker plugin
(an ONNX Runtime session cannot be pickled, and loading it per task would cost more than the
task), and :func:`judge_chunk`, which judges a chunk of recorded images with it.

Images are read where the worker can reach them (a local or shared path, or any fsspec URL),
only as the station reads a file (a regular file, no more than its limits.max_bytes:
:mod:`inspect_batch.safe_read`), decoded the way the station decoded them
(:mod:`inspect_stations.inputs.image_check`), and judged under the recipe settings recorded with
each
(:class:`~inspect_batch.items.RecipeSettings`), so that the active model reproduces the
recorded verdicts exactly.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import cv2
from distributed import WorkerPlugin, get_worker

from inspect_batch.items import BacktestItem, Chunk, Fired, ItemResult, RegionBox
from inspect_batch.safe_read import STATION, backtest_limits, read_bytes
from inspect_core.plugin_api.manager import get_registry
from inspect_core.plugin_api.resolve import find_recipe
from inspect_core.runtime.inspector import Inspector
from inspect_core.runtime.onnx_model import OnnxModel
from inspect_core.runtime.overlay import render_result
from inspect_stations.inputs.image_check import check_bytes, decode

PLUGIN_NAME = "inspect-backtest-candidate"


@dataclass(frozen=True)
class CandidateSpec:
    """Everything a worker needs to load the candidate: picklable, small."""

    plugin: str
    recipe: str
    model: str  # path of the candidate .onnx (its card beside it), as the worker sees it
    threads: int = 1
    overlays: bool = False  # render the candidate's overlay of images whose verdict changes
    sixteen_bit: str = "scale"  # how 16-bit images are read, as the station's limits say
    max_bytes: int = STATION.max_bytes  # the station's limits.max_bytes: nothing larger is read
    max_pixels: int = STATION.max_pixels  # its limits.max_pixels: refused before decoding


class CandidateOnWorker(WorkerPlugin):
    """Loads the candidate once when the worker starts (or joins); builds one Inspector per
    recipe settings, all sharing the one ONNX Runtime session."""

    name = PLUGIN_NAME

    def __init__(self, spec: CandidateSpec):
        self.spec = spec
        self.inspectors: dict[str, Any] = {}
        self.settings: dict[str, dict[str, Any]] = {}
        # why the candidate did not load here: a worker that joins later keeps the plugin even
        # when its setup fails (Dask only logs it), so every image sent to it says this
        self.failed: str | None = "the candidate was not loaded on this worker"

    def setup(self, worker: Any = None) -> None:
        s = self.spec
        model = Path(s.model)
        try:
            base = find_recipe(s.plugin, s.recipe)
            self.recipe = replace(base, model=model, card=model.with_suffix(".json"))
            self.model = OnnxModel(model, threads=s.threads, card=model.with_suffix(".json"))
            self.rules = get_registry().rules
        except Exception as e:
            where = getattr(worker, "address", "this worker")
            self.failed = f"the candidate {model} did not load on {where}: {e}"
            raise
        self.failed = None

    def inspector(self, key: str) -> Any:
        """The Inspector for the recipe settings ``key`` (built on first use)."""
        if key not in self.inspectors:
            recipe = self.recipe.with_overrides(self.settings.get(key) or None)
            self.inspectors[key] = Inspector(recipe, self.rules, model=self.model)
        return self.inspectors[key]


class NotTheRecordedImage(Exception):
    """The file at a record's path is not the image that was recorded."""


def read_image(
    url: str,
    sha256: str = "",
    sixteen_bit: str = "scale",
    max_bytes: int = STATION.max_bytes,
    max_pixels: int = STATION.max_pixels,
) -> Any:
    """The image at ``url`` (a path or an fsspec URL), read and decoded as the station reads
    and decodes (:mod:`inspect_batch.safe_read`: a regular file, at most ``max_bytes``; then
    :mod:`inspect_stations.inputs.image_check`); with ``sha256``, only if it is still the recorded
    image (a name reused by a later image, or a --path-map that leads to another line's
    archive, would compare verdicts of two images)."""
    limits = backtest_limits(sixteen_bit, max_bytes, max_pixels)
    data = read_bytes(url, limits.max_bytes)
    if sha256 and hashlib.sha256(data).hexdigest() != sha256:
        raise NotTheRecordedImage(
            "the file there is not the recorded image (its sha256 differs): a name reused "
            "by a later image, or a --path-map leading to another archive"
        )
    ext = "." + url.rsplit(".", 1)[-1].lower() if "." in url.rsplit("/", 1)[-1] else ""
    header = check_bytes(data, ext, limits)
    return decode(data, header, limits)


def judge_chunk(chunks: list[Chunk]) -> list[ItemResult]:
    """Judge the chunks' items with the worker's candidate; a file that cannot be read or
    judged is an :class:`ItemResult` with its error, and the others still run."""
    plugin = cast(CandidateOnWorker, get_worker().plugins[PLUGIN_NAME])
    out: list[ItemResult] = []
    for chunk in chunks:
        if plugin.failed is not None:
            out += [ItemResult(i.inspection_id, None, error=plugin.failed) for i in chunk.items]
            continue
        plugin.settings.update(chunk.settings)
        out += [judge_one(plugin, item, chunk.overlays) for item in chunk.items]
    return out


def judge_one(plugin: CandidateOnWorker, item: BacktestItem, overlays: bool = True) -> ItemResult:
    """One image: read, decode, the recipe's chain; the candidate's verdict, regions and rules
    fired, and the milliseconds of its model step (``inspect_image``, timed alone: reading and
    decoding the file are not the model's time)."""
    try:
        s = plugin.spec
        image = read_image(item.url, item.image_sha256, s.sixteen_bit, s.max_bytes, s.max_pixels)
        inspector = plugin.inspector(item.settings_key)
        t = time.perf_counter()
        result = inspector.inspect_image(image)
        ms = (time.perf_counter() - t) * 1000
    except Exception as e:  # a missing archive file, a damaged one: this image only
        return ItemResult(item.inspection_id, None, error=f"{type(e).__name__}: {e}")
    v = result.verdict
    verdict = v.decision.value
    regions = tuple(_box(r) for r in v.regions)
    fired = tuple(Fired(h.rule, h.decision.value) for h in v.hits)
    png = None
    if plugin.spec.overlays and overlays and verdict != item.recorded:
        png = _overlay_png(result, inspector)
    return ItemResult(item.inspection_id, verdict, ms, regions, None, png, fired)


def _box(region: Any) -> RegionBox:
    """A region of the candidate's verdict as a ``region`` row records it."""
    x, y, w, h = (int(c) for c in region.bbox)
    return RegionBox(region.class_name, int(region.area_px), (x, y, w, h))


def _overlay_png(result: Any, inspector: Any) -> bytes | None:
    ok, buf = cv2.imencode(".png", render_result(result, result.verdict, inspector))
    return bytes(buf) if ok else None
