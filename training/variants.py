"""Make a trained model's faster variants, gate them on its validation images, time them, and
record all of it in its card; the runtime then runs the fastest that passed.

    python training/variants.py plugins/inspect_plugins/industrial/models/tile.onnx
    python training/variants.py plugins/*/models/{steel,landcover,driving}.onnx   # one go
    python training/variants.py runs/tile --data ../shared/datasets/magnetic-tile

Candidates (inspect_core/runtime/variant_export.py): an int8 copy of the network (ONNX Runtime
static QDQ, per-channel int8 weights, uint8 activations calibrated on --calib training images,
none of the gate's), run by ONNX Runtime and by OpenVINO, and the fp32 file run by OpenVINO in
bfloat16. Each runs over the images the model was validated on (its card's validation_split),
with its tiles, test-time copies and prior correction as shipped, and passes when its val mIoU
is within 0.005 of the fp32 file's and no class's IoU is more than 0.02 lower. An int8 copy that
fails is made again with more layers kept in float. Then the fp32 file and each candidate are
timed in one run (interleaved, --threads): the model step on --images validation images at
their own sizes (the speed-up that ranks them at run time), and the network alone on one input
of the model's tile size. A variant ships when it passed and is at least 1.1x faster: the int8
file is written beside the model (STEM.int8.onnx; removed when no int8 variant ships) and the
card's "variants" lists every candidate with its scores, speed, sha256 and why it ships or not
(scripts and the runtime read it; inspect_core/runtime/variants.py). Variants need the CPU
instructions they were measured with (int8: AVX512-VNNI/AVX-VNNI/AMX; bf16: AVX512-BF16/AMX);
candidates this machine cannot run are recorded as not made. Rerun after anything rewrites the
model (choose_tta.py, fit_prior.py): variants of an older file are never run.

A good-only model (its card's "kind": "anomaly", from `inspect train --kind anomaly`) is gated
on its check images instead (its card's check groups, found again as training split them; --data
must be the dataset it was trained on): a candidate passes when its check image AUROC and pixel
AUROC are each within 0.005 of the fp32 file's, it rejects at most one more good check image at
the card's threshold, and the image decisions agree on at least 99% of the check images. Its
int8 copy is calibrated on the good bank images and always keeps the outputs (score to logits)
in float (inspect_core/runtime/variant_gate_anomaly.py). The card records the same fields, with
the detection scores in place of the mIoU.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from _cli import parser, run

from inspect_core.cards import sha256_file, verify_model
from inspect_core.data.datasets import Dataset, open_dataset
from inspect_core.errors import InspectError
from inspect_core.runtime import variant_export as vx
from inspect_core.runtime import variant_timing as vt
from inspect_core.runtime.engines import Engine, EngineSpec, engine_installed, open_engine
from inspect_core.runtime.onnx_model import OnnxModel
from inspect_core.runtime.variant_gate_anomaly import (
    AnomalyCard,
    AnomalyScores,
    anomaly_gate_set,
    card_note,
    is_anomaly,
)
from inspect_core.runtime.variants import REFERENCE, REQUIRES, cpu_flags
from inspect_core.training.holdout import held_out_dataset


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument(
        "models", type=Path, nargs="+", help="model .onnx files with their cards, or run folders"
    )
    ap.add_argument(
        "--data",
        help="dataset folder (with one model); default: DATASETS/<the card's dataset name>",
    )
    ap.add_argument("--datasets", default=os.environ.get("DATASETS", "../shared/datasets"))
    ap.add_argument("--calib", type=int, default=32, help="training images to calibrate int8 on")
    ap.add_argument("--method", choices=("minmax", "percentile", "entropy"), default="minmax")
    ap.add_argument("--threads", type=int, default=1, help="threads for scoring and timing")
    ap.add_argument("--runs", type=int, default=5, help="timed rounds per candidate")
    ap.add_argument("--images", type=int, default=4, help="validation images the clock runs")
    ap.add_argument("--size", type=int, default=0, help="network timing side (0: the tile size)")
    args = ap.parse_args()
    if args.data and len(args.models) > 1:
        ap.error(
            "--data goes with one model; with several, each card's dataset is found in --datasets"
        )
    for given in args.models:
        path = given if given.suffix == ".onnx" else given / "model.onnx"
        make_variants(path, args)


def _gating(path: Path, card: dict, data: str) -> vx.GateSet:
    """What ``path``'s variants are gated and calibrated on: a good-only model's check images
    (its card's kind is anomaly), else the images its card says it was validated on."""
    if is_anomaly(card):
        return anomaly_gate_set(AnomalyCard.read(card, path.with_suffix(".json")), Path(data))
    split = card.get("validation_split") or {}
    tta = ",".join(card.get("tta") or []) or "none"
    return vx.GateSet(
        vx.SEGMENTATION,
        held_out_dataset(card, data),
        open_dataset(data, "train"),
        split.get("images") or [],
        split.get("source", "val split"),
        f"tiles, test-time copies ({tta}), prior correction",
        "the train split, none of the gate's images, tile-sized crops",
    )


def make_variants(path: Path, args) -> None:
    """Everything for one model (see the module docstring); writes its int8 file and card."""
    card_path = path.with_suffix(".json")
    verify_model(path, card_path, required=True)  # variants of the file its card vouches for
    card = json.loads(card_path.read_text())
    data = args.data or str(Path(args.datasets) / (card.get("dataset") or {}).get("name", ""))
    g = _gating(path, card, data)
    ref_engine = open_engine(path, REFERENCE, args.threads)
    meta = OnnxModel(path, verify=False, engine=ref_engine).meta
    print(f"{path}: gating on {len(g.ds)} images of {data} ({g.ds.split})", flush=True)
    ref = g.kind.score(path, ref_engine, g.ds)
    _check_card_score(card, card_path, ref)
    print(f"  fp32-onnxruntime: {ref.headline()}", flush=True)
    calib = vx.calibration_inputs(g.calib_from, meta, args.calib, 0, g.exclude)
    with tempfile.TemporaryDirectory() as tmp:
        int8_file, cands = _int8(path, Path(tmp), calib, g.ds, ref, args, g.kind)
        cands.append(_bf16(path, g.ds, ref, args.threads, g.kind))
        side = args.size or meta.tile
        images = vt.timing_images(g.ds, args.images)
        x = vt.timing_input(images[0], meta, (side, side))
        ref_ms = _time(path, ref_engine, cands, images, x, args.runs)
        staged = _stage_int8(path, int8_file, cands)
    for c in cands:
        if c.spec.precision == "bf16":
            c.sha256 = sha256_file(path) if c.result else ""
        print(f"  {c.spec.name}: {'ships' if c.shipped else 'not shipped'}: {c.to_dict()['why']}")
    try:
        card["variants"] = _record(path, ref, ref_ms, cands, g, len(calib), side, args)
        _write_pair(path, card_path, card, staged)
    finally:
        if staged is not None:
            staged.unlink(missing_ok=True)  # stopped before the rename: no stray file


def _write_pair(path: Path, card_path: Path, card: dict, staged: Path | None) -> None:
    """The card, then the int8 file right after it: a run stopped in the minutes of gating and
    timing leaves the old pair as it was (only this instant separates the two renames)."""
    tmp = card_path.with_name(card_path.name + ".tmp")
    tmp.write_text(json.dumps(card, indent=2) + "\n")
    os.replace(tmp, card_path)  # the model file is unchanged: its sha256 and scores stand
    dest = path.with_name(path.stem + vx.INT8_SUFFIX)
    if staged is not None:
        os.replace(staged, dest)
        print(f"  wrote {dest}", flush=True)
    else:
        dest.unlink(missing_ok=True)
    print(f"  wrote the card's variants: {card_path}", flush=True)


def _check_card_score(card: dict, card_path: Path, ref: vx.GateScores) -> None:
    if isinstance(ref, AnomalyScores):
        note = card_note(AnomalyCard.read(card, card_path), ref)
        if note:
            print(f"  {note}")
        return
    assert isinstance(ref, vx.Scores)
    val = (card.get("validation") or {}).get("miou")
    if isinstance(val, float) and abs(val - ref.miou) > 1e-4:
        print(
            f"  note: the fp32 file scores {ref.miou:.5f} here, its card's validation says "
            f"{val:.5f} (another dataset version, or a tool changed the model after scoring)"
        )


def _unmakeable(spec: EngineSpec) -> str:
    """Why this machine cannot make and gate ``spec`` ("" when it can)."""
    if not engine_installed(spec.engine):
        return f"{spec.engine} is not installed here"
    need = REQUIRES[spec.precision]
    if need and not cpu_flags() & set(need):
        return f"this CPU has none of {', '.join(need)}, which the variant needs"
    return ""


def _int8(
    path: Path,
    tmp: Path,
    calib: list,
    ds: Dataset,
    ref: vx.GateScores,
    args,
    kind: vx.GateKind[Any] = vx.SEGMENTATION,
) -> tuple[Path | None, list[vx.Candidate]]:
    """Quantize with fewer and fewer layers in int8 until a candidate passes; the int8 file
    that passed (or None) and the int8 candidates of the last level tried (each says why the
    levels before it failed)."""
    specs = [s for s in vx.CANDIDATES if s.precision == "int8"]
    skipped = [vx.Candidate(s, vx.INT8_SUFFIX, note=_unmakeable(s), kind=kind) for s in specs]
    makeable = [c.spec for c in skipped if not c.note]
    skipped = [c for c in skipped if c.note]
    if not makeable or not calib:
        why = "no training image to calibrate on" if not calib else ""
        unmade = [vx.Candidate(s, vx.INT8_SUFFIX, note=why, kind=kind) for s in makeable]
        return None, skipped + unmade
    prepared = tmp / "prepared.onnx"
    vx.prepare_for_quantization(path, prepared)
    tried: list[vx.Candidate] = []
    earlier: list[str] = []
    for k, (label, nodes) in enumerate(kind.float_levels(prepared)):
        q = tmp / f"int8-{k}.onnx"
        vx.quantize_int8(prepared, q, calib, nodes, args.method)
        made = f"{args.method} calibration; kept in float: {label} ({len(nodes)} nodes)"
        tried = [
            vx.Candidate(s, vx.INT8_SUFFIX, note=made, kind=kind, earlier=tuple(earlier))
            for s in makeable
        ]
        for c in tried:
            _score(c, q, path, ds, ref, args.threads, kind)
        if any(c.result and c.result.passed for c in tried):
            return q, skipped + tried
        earlier += [f"{c.spec.name}, {c.note}: {c.result.why if c.result else ''}" for c in tried]
    return None, skipped + tried


def _bf16(
    path: Path, ds: Dataset, ref: vx.GateScores, threads: int, kind: vx.GateKind[Any]
) -> vx.Candidate:
    spec = next(s for s in vx.CANDIDATES if s.precision == "bf16")
    c = vx.Candidate(spec, ".onnx", note=_unmakeable(spec), kind=kind)
    if not c.note:
        c.note = "the fp32 file, INFERENCE_PRECISION_HINT=bf16"
        _score(c, path, path, ds, ref, threads, kind)
    return c


def _score(
    c: vx.Candidate,
    file: Path,
    model: Path,
    ds: Dataset,
    ref: vx.GateScores,
    threads: int,
    kind: vx.GateKind[Any],
) -> None:
    """``c`` (its network in ``file``, run with ``model``'s metadata) scored on ``ds`` and
    judged against ``ref``."""
    try:
        c.engine = open_engine(file, c.spec, threads)
    except InspectError as e:
        c.note = f"{c.note}; does not load: {e}"
        return
    scores = kind.score(model, c.engine, ds)
    c.scores, c.result = scores, kind.judge(ref, scores)
    print(f"  {c.spec.name} ({c.note}): {scores.headline()}, {c.result.why}", flush=True)


def _time(path: Path, ref: Engine, cands: list[vx.Candidate], images, x, runs: int) -> dict:
    """Time the fp32 file and every candidate that was made (interleaved); the fp32 file's
    times ({"ms": per image, "net_ms": network alone})."""
    made = {c.spec.name: c for c in cands if c.engine is not None and c.result is not None}
    engines = {REFERENCE.name: ref, **{n: c.engine for n, c in made.items()}}
    t = vt.time_engines(path, engines, images, x, runs)
    step, net = t.step_ms[REFERENCE.name], t.net_ms[REFERENCE.name]
    for n, c in made.items():
        c.ms, c.speedup = t.step_ms[n], step / t.step_ms[n]
        c.net_ms, c.net_speedup = t.net_ms[n], net / t.net_ms[n]
    return {"ms": round(step, 2), "net_ms": round(net, 2)}


def _stage_int8(path: Path, int8_file: Path | None, cands: list[vx.Candidate]) -> Path | None:
    """When an int8 candidate ships: its file copied beside the model under a temporary name
    (renamed to STEM.int8.onnx once the card naming its sha256 is written), else None."""
    ints = [c for c in cands if c.spec.precision == "int8"]
    if int8_file is None or not any(c.shipped for c in ints):
        return None
    staged = path.with_name(path.stem + vx.INT8_SUFFIX + ".tmp")
    shutil.copyfile(int8_file, staged)
    sha = sha256_file(staged)
    for c in ints:
        c.sha256 = sha if c.result else ""
    return staged


def _record(
    path: Path, ref: vx.GateScores, ref_ms: dict, cands, g: vx.GateSet, n_calib, side, args
) -> dict:
    """The card's ``variants``: what was compared, how, and every candidate."""
    return {
        "reference": {
            "name": REFERENCE.name,
            "sha256": sha256_file(path),
            **ref_ms,
            **ref.card_fields(),
        },
        "gate": {
            **g.kind.limits(),
            "min_speedup": vx.MIN_SPEEDUP,
            "images": len(g.ds),
            "what": g.what,
            "as_shipped": g.as_shipped,
        },
        "calibration": {"method": args.method, "images": n_calib, "from": g.calib_what},
        "timing": _timing(side, args),
        "list": [c.to_dict() for c in cands],
    }


def _timing(side: int, args) -> dict:
    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in _cpuinfo() if ln.startswith("model name")),
        platform.processor(),
    )
    return {
        "size": [side, side],
        "threads": args.threads,
        "runs": args.runs,
        "images": args.images,
        "what": (
            "median of --runs rounds, every variant once a round: ms = the model step (tiles, "
            "test-time copies, prior) per image over --images val images at their own sizes; "
            "net_ms = the network alone on one size x size input, batch 1"
        ),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "onnxruntime": version("onnxruntime"),
        "openvino": version("openvino"),
    }


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace").splitlines()
    except OSError:
        return []


if __name__ == "__main__":
    run(main)
