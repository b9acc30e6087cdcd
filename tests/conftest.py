"""Shared fixtures: a tiny exported model (random weights) and synthetic images.

Nothing here trains a real model: the tiny model exists to exercise export, runtime, plugins,
stations and records quickly.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

# the database fixtures (db_url: SQLite and PostgreSQL, pg_database, sqlite_url)
pytest_plugins = ["db_support"]

CLASSES = ["background", "scratch", "dent"]


def make_tiny_model(
    path: Path, classes=CLASSES, channels: int = 1, seed: int = 0, bias_class: int | None = None
) -> Path:
    """Export a tiny random U-Net with inspect metadata. ``bias_class`` makes the head favour
    one class on bright pixels so predictions are deterministic and non-trivial."""
    import torch

    from inspect_core.training.export import export_onnx
    from inspect_core.training.unet import ModelConfig, build_model

    torch.manual_seed(seed)
    model = build_model(
        ModelConfig(in_channels=channels, num_classes=len(classes), width=4, depth=2)
    )
    model.eval()
    meta = {
        "classes": list(classes),
        "mean": 0.5,
        "std": 0.25,
        "channels": channels,
        "input_size": 64,
        "stride": model.stride,
        "ignore_index": 255,
    }
    samples = [np.random.default_rng(seed).normal(size=(channels, 37, 53)).astype(np.float32)]
    export_onnx(
        model, path, meta, samples, dynamo=False
    )  # the fast exporter; test_export covers the default
    return path


def write_card(model: Path, classes=CLASSES) -> Path:
    """The model card ``inspect train`` writes beside a model (its classes and sha256)."""
    import json

    from inspect_core.cards import sha256_file

    card = model.with_suffix(".json")
    card.write_text(json.dumps({"classes": list(classes), "sha256": sha256_file(model)}))
    return card


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """The tiny model with its card (``tiny.json``), as training leaves one: a plugin's recipe
    needs its card."""
    model = make_tiny_model(tmp_path_factory.mktemp("model") / "tiny.onnx")
    write_card(model)
    return model


@pytest.fixture
def gray_image() -> np.ndarray:
    rng = np.random.default_rng(1)
    img = (rng.normal(120, 10, (90, 130))).clip(0, 255).astype(np.uint8)
    img[30:50, 40:80] = 230
    return img


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Tiny tensors gain nothing from threads, and on a shared 2-core machine two threads per
    process make small ops up to 100x slower (spinning workers). ONNX sessions follow
    INSPECT_THREADS."""
    import os

    os.environ.setdefault("INSPECT_THREADS", "1")
    # no test measures the shipped variants on this machine unless it says so (each process
    # would time them again: seconds, and a choice that depends on the machine's load); the
    # measurements a test makes are kept in a folder of its own, never in ~/.cache
    os.environ.setdefault("INSPECT_TUNE", "off")
    if "INSPECT_CACHE_DIR" not in os.environ:
        os.environ["INSPECT_CACHE_DIR"] = tempfile.mkdtemp(prefix="inspect-cache-")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    yield


_EXIT_STATUS = {"code": 0}


def pytest_sessionfinish(session, exitstatus):
    _EXIT_STATUS["code"] = int(exitstatus)


def pytest_unconfigure(config):
    """Leave the process without interpreter teardown once pytest has reported everything.
    With ONNX Runtime, OpenVINO, torch, Dask and the station threads all loaded in one process
    (only the test suite does that), a native thread pool's destructor calls std::terminate
    during teardown ("terminate called without an active exception") after every test has
    passed; the exit status must still be pytest's."""
    import os
    import sys

    if os.environ.get("INSPECT_TESTS_NORMAL_EXIT"):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_EXIT_STATUS["code"])


def main_exit(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    """Run ``inspect ARGS`` through the real entry point, which turns errors into exit codes:
    (exit code, stdout, stderr); 0 when it returns."""
    import sys

    from inspect_core import cli as cli_mod

    monkeypatch.setattr(sys, "argv", ["inspect", *map(str, args)])
    try:
        cli_mod.main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err
