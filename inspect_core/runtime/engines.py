"""The inference libraries a model file can run on: ONNX Runtime (always installed) and
OpenVINO (optional, ``pip install openvino``; imported only when a variant asks for it).

Each is an :class:`Engine`: one network file, one library, one precision, batch in, logits out
(and, from a file with a ``features`` output, the pooled encoder features of the same run: the
familiarity score's input, issue 25).
:class:`~inspect_core.runtime.onnx_model.OnnxModel` does everything around it (normalising,
tiles, test-time copies, the prior correction), so every engine is scored and timed through
the same code (:mod:`inspect_core.runtime.variants` says which one runs).
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from inspect_core.errors import ModelError
from inspect_core.runtime.machine import cores

META_KEY = "inspect.meta"
FEATURES = "features"  # the graph output with an image's pooled encoder features (issue 25)
ONNXRUNTIME = "onnxruntime"
OPENVINO = "openvino"
ENGINES = (ONNXRUNTIME, OPENVINO)
PRECISIONS = ("fp32", "bf16", "int8")  # int8: the file itself is quantized (QDQ)
INSTALL_HINT = {ONNXRUNTIME: "pip install onnxruntime", OPENVINO: "pip install openvino"}


class Engine(Protocol):
    """A network file loaded by one inference library: ``run`` maps a normalised float32
    (N, C, H, W) batch to float32 logits (N, classes, H, W) in a new array the caller owns."""

    @property
    def label(self) -> str:
        """The library and precision, e.g. ``onnxruntime fp32``, for log lines."""
        ...

    @property
    def has_features(self) -> bool:
        """Whether the file gives a ``features`` output (:data:`FEATURES`) beside the logits."""
        ...

    def run(self, batch: np.ndarray) -> np.ndarray: ...

    def run_with_features(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The logits and, from the same run, the ``features`` (N, D) float32 (None when the
        file has no such output)."""
        ...

    def metadata(self) -> str | None:
        """The ``inspect.meta`` JSON embedded in the file at export, or None."""
        ...


@dataclass(frozen=True)
class EngineSpec:
    """Which library runs a file, and at which precision (a card's variant names both)."""

    engine: str = ONNXRUNTIME
    precision: str = "fp32"

    @property
    def name(self) -> str:
        return f"{self.precision}-{self.engine}"


def engine_installed(engine: str) -> bool:
    """Whether the library ``engine`` can be imported (checked without importing it)."""
    return engine in ENGINES and importlib.util.find_spec(engine) is not None


def open_engine(
    path: Path, spec: EngineSpec, threads: int = 0, providers: list[str] | None = None
) -> Engine:
    """Load ``path`` with the library and precision of ``spec``; a :class:`ModelError` naming
    the file and the library when it cannot (not installed, or the file does not load)."""
    if spec.engine not in ENGINES or spec.precision not in PRECISIONS:
        raise ModelError(
            f"{path}: unknown engine {spec.engine!r} or precision {spec.precision!r}; known are "
            f"{', '.join(ENGINES)} and {', '.join(PRECISIONS)}. Upgrade inspect"
        )
    if not engine_installed(spec.engine):
        raise ModelError(f"{path}: {spec.engine} is not installed ({INSTALL_HINT[spec.engine]})")
    if spec.engine == OPENVINO:
        return OpenVinoEngine(path, spec.precision, threads)
    return OrtEngine(path, threads, providers, spec.precision)


def ort_session(path: Path, threads: int = 0, providers: list[str] | None = None) -> Any:
    """An ONNX Runtime session on ``path``: ``threads`` intra-op threads (0: every core), one
    inter-op thread, every graph optimisation; ModelError naming the file when it cannot load."""
    import onnxruntime as ort  # lazy: loaded with the first model, not by --help

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(
            str(path), opts, providers=providers or ["CPUExecutionProvider"]
        )
    except Exception as e:  # onnxruntime raises its own exception types
        raise ModelError(f"{path}: ONNX Runtime cannot load it ({e})") from e


class OrtEngine:
    """ONNX Runtime, all graph optimisations (constant folding, Conv+activation fusion, the
    NCHWc layout on x86: `bench/README.md`); an int8 file runs as QLinearConv & co."""

    def __init__(
        self,
        path: Path,
        threads: int = 0,
        providers: list[str] | None = None,
        precision: str = "fp32",
    ):
        self.session = ort_session(path, threads, providers)
        self.input_name = self.session.get_inputs()[0].name
        names = [o.name for o in self.session.get_outputs()]
        self._logits = names[:1]  # the first output, where every exporter puts the logits
        self.has_features = FEATURES in names[1:]
        self.label = f"{ONNXRUNTIME} {precision}"

    def run(self, batch: np.ndarray) -> np.ndarray:
        feed = {self.input_name: np.ascontiguousarray(batch, np.float32)}
        out: np.ndarray = self.session.run(self._logits, feed)[0]  # onnxruntime: no hints
        return out

    def run_with_features(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if not self.has_features:
            return self.run(batch), None
        feed = {self.input_name: np.ascontiguousarray(batch, np.float32)}
        logits, features = self.session.run([self._logits[0], FEATURES], feed)
        return logits, features

    def metadata(self) -> str | None:
        raw: str | None = self.session.get_modelmeta().custom_metadata_map.get(META_KEY)
        return raw


@lru_cache(maxsize=1)
def _openvino_core() -> Any:
    # lazy: an optional engine, installed where a card asks for it (not in the dev venv, so
    # mypy finds no module; the override list of pyproject.toml should name it)
    import openvino as ov  # type: ignore[import-not-found]

    return ov.Core()


class OpenVinoEngine:
    """OpenVINO's CPU plugin on an ONNX file. ``bf16`` asks it to compute in bfloat16
    (``INFERENCE_PRECISION_HINT``; used where the CPU has AVX512-BF16 or AMX, else OpenVINO
    quietly stays in fp32); an int8 (QDQ) file runs in int8 whatever the hint.

    Like an ONNX Runtime session it may be called from several threads at once (a station's
    model workers): each thread gets its own infer request, and with ``threads`` per call the
    CPU is split into as many streams (cores // threads) as can run side by side; one call
    alone still runs on ``threads`` threads. ``threads=0``: one stream on every core."""

    def __init__(self, path: Path, precision: str = "fp32", threads: int = 0):
        try:
            core = _openvino_core()
        except (ImportError, OSError, RuntimeError) as e:  # a broken install: fp32 runs instead
            raise ModelError(f"{path}: OpenVINO does not start ({e}); reinstall openvino") from e
        config: dict[str, Any] = {
            "PERFORMANCE_HINT": "LATENCY",
            # an int8 file with the bf16 hint does not compile (OpenVINO 2026.4): the quantized
            # layers decide its precision, the rest stays fp32
            "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
        }
        if threads:
            streams = max(1, cores() // threads)
            config.update(NUM_STREAMS=streams, INFERENCE_NUM_THREADS=streams * threads)
        try:
            self._model = core.read_model(str(path))
            self._compiled = core.compile_model(self._model, "CPU", config)
        except Exception as e:  # openvino raises RuntimeError with its own text
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ModelError(f"{path}: OpenVINO cannot load it at {precision} ({first})") from e
        self._local = threading.local()  # this thread's infer request
        ports = [i for i, o in enumerate(self._compiled.outputs) if FEATURES in o.get_names()]
        self._features: int | None = ports[0] if ports and ports[0] > 0 else None
        self.has_features = self._features is not None
        self.label = f"{OPENVINO} {precision}"

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self.run_with_features(batch)[0]

    def run_with_features(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        x = np.ascontiguousarray(batch, np.float32)
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        # share_outputs=False: a copy, so the next run cannot overwrite what the caller holds
        result = request.infer({0: x}, share_inputs=True, share_outputs=False)
        features = None if self._features is None else result[self._features]
        return result[0], features

    def metadata(self) -> str | None:
        try:
            raw = self._model.get_rt_info(["framework", META_KEY])
        except (RuntimeError, KeyError):  # no such entry
            return None
        text = raw.astype(str) if hasattr(raw, "astype") else str(raw)
        return text if text.strip().startswith("{") else None
