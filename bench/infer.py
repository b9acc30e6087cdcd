"""Inference speed: torch eager vs ONNX Runtime at square sizes, and each shipped recipe at its
native image sizes, fp32 against what ships (the model's fastest variant this machine runs).

    python bench/infer.py [--json] [--runs 20]
        [--model plugins/inspect_plugins/industrial/models/steel.onnx]
                          [--threads 0] [--rows square,native] [--native-runs 5]
                          [--recipes tile,ballscrew]

Square rows: for each size (256, 512, 1024 px square) the median milliseconds over ``--runs``
runs after warm-up for torch eager and ONNX Runtime (the fp32 file) on ``--model`` (its ``.pt``
beside it), and their ratio (``torch_ms``, ``ort_ms``, ``speedup``); beside them what ships
(``variant``, ``fast_ms``, ``fast_speedup`` over ``ort_ms``, the two interleaved).

Native rows: for each recipe of the shipped plugins and each distinct size of its sample images,
the recipe's model step on that sample (its preprocessing first; then tiles, test-time copies and
prior correction, as a station runs it) with the fp32 file (``fp32_ms``) and with what ships
(``fast_ms``: the variant ``variant``; see inspect_core/runtime/variants.py), interleaved, median
of ``--native-runs``; ``miou_fp32`` and ``miou_fast`` are the val mIoU the accuracy gate measured
for them at export (the card's ``variants``; the card's validation score where it has none).
Both engines use ``--threads`` (0: every core). With ``--json`` every row also names the CPU
(``cpu``) and the instruction-set flags that decide its kernels (``cpu_flags``: avx2, avx512*,
vnni, amx...), since the same recipe runs at other speeds on other CPUs. Which variant ships is
measured on this machine when the model's card ships a gate sample (issue 26); INSPECT_TUNE=off
leaves it to the CPU flags.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "plugins" / "inspect_plugins" / "industrial" / "models" / "steel.onnx"


def median_ms(fn, runs: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def interleaved_ms(fns: list, runs: int, warmup: int = 1) -> list[float]:
    """Median ms of each of ``fns``, one of each per round (a busy machine slows all alike)."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for t_list, fn in zip(times, fns):
            t = time.perf_counter()
            fn()
            t_list.append((time.perf_counter() - t) * 1000)
    return [statistics.median(t) for t in times]


def square_rows(model_path: Path, sizes: list[int], runs: int, threads: int) -> list[dict]:
    import torch

    from inspect_core.runtime.onnx_model import OnnxModel
    from inspect_core.training.unet import ModelConfig, build_model

    ck = torch.load(model_path.with_suffix(".pt"), map_location="cpu", weights_only=False)
    model = build_model(ModelConfig.from_dict(ck["config"]))
    model.load_state_dict(ck["model"])
    model.eval()
    if threads:
        torch.set_num_threads(threads)
    ort_model = OnnxModel(model_path, threads=threads, variant="fp32")
    fast = OnnxModel(model_path, threads=threads)  # what ships: the fastest variant here
    c = ort_model.meta.channels
    rows = []
    for size in sizes:
        x = np.random.default_rng(0).normal(size=(1, c, size, size)).astype(np.float32)
        xt = torch.from_numpy(x)

        def run_torch(xt=xt):
            with torch.inference_mode():
                model(xt)

        torch_ms = median_ms(run_torch, runs)
        ort_ms, fast_ms = interleaved_ms(
            [lambda x=x: ort_model.logits(x), lambda x=x: fast.logits(x)], runs
        )
        rows.append(
            {
                "size": size,
                "torch_ms": round(torch_ms, 2),
                "ort_ms": round(ort_ms, 2),
                "speedup": round(torch_ms / ort_ms, 2),
                "variant": fast.variant_name,
                "fast_ms": round(fast_ms, 2),
                "fast_speedup": round(ort_ms / fast_ms, 2),
            }
        )
    return rows


def shipped_recipes() -> list[tuple[str, object]]:
    """(``PLUGIN:RECIPE``, recipe) of every recipe of the plugins this repository ships."""
    from inspect_core.plugin_api.manager import get_registry

    reg = get_registry()
    out = []
    for dname, domain in reg.domains.items():
        plugin = reg.domain_plugin[dname]
        if reg.plugins[plugin].module.startswith("inspect_plugins"):
            out += [(f"{plugin}:{r.name}", r) for r in domain.recipes]
    return out


def gate_mious(card_path: Path, variant: str) -> tuple[float | None, float | None]:
    """(fp32, ``variant``) val mIoU from the card: what the gate measured, or, for a model
    without variants (fp32 runs), its validation score twice; None where the card has no
    mIoU (a good-only model's gate scores detection, not segmentation)."""
    card = json.loads(card_path.read_text())
    v = card.get("variants")
    if not v:
        miou = (card.get("validation") or {}).get("miou")
        return miou, miou
    ref = v["reference"].get("miou")
    chosen = next((e.get("miou") for e in v["list"] if e["name"] == variant), ref)
    return ref, chosen


def native_rows(runs: int, threads: int, only: set[str] | None = None) -> list[dict]:
    from inspect_core.data.datasets import read_image
    from inspect_core.plugin_api.manager import get_registry
    from inspect_core.runtime.inspector import Inspector
    from inspect_core.runtime.onnx_model import OnnxModel

    rules = get_registry().rules
    rows = []
    for spec, r in shipped_recipes():
        if only and spec not in only and spec.split(":")[1] not in only:
            continue
        fast = Inspector(r, rules, threads=threads)
        fp32 = OnnxModel(r.model, threads=threads, card=r.card_path, variant="fp32")
        ref = Inspector(r, rules, model=fp32)
        miou_fp32, miou_fast = gate_mious(r.card_path, fast.model.variant_name)
        by_size: dict[tuple[int, int], Path] = {}
        for s in r.samples:
            img = read_image(s.image)
            by_size.setdefault(img.shape[:2], s.image)
        for (h, w), path in sorted(by_size.items(), key=lambda kv: kv[0][0] * kv[0][1]):
            frame = fast.preprocess(read_image(path))
            fp32_ms, fast_ms = interleaved_ms(
                [partial(ref.probabilities, frame), partial(fast.probabilities, frame)], runs
            )
            rows.append(
                {
                    "recipe": spec,
                    "size": f"{w}x{h}",
                    "image": path.name,
                    "variant": fast.model.variant_name,
                    "fp32_ms": round(fp32_ms, 1),
                    "fast_ms": round(fast_ms, 1),
                    "speedup": round(fp32_ms / fast_ms, 2),
                    "miou_fp32": None if miou_fp32 is None else round(miou_fp32, 4),
                    "miou_fast": None if miou_fast is None else round(miou_fast, 4),
                }
            )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default=str(DEFAULT_MODEL), help="ONNX model with a .pt beside it")
    ap.add_argument("--sizes", default="256,512,1024")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--native-runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="threads for every engine (0: all)")
    ap.add_argument("--rows", default="square,native", help="square, native or both")
    ap.add_argument("--recipes", default="", help="native rows only for these (tile,ballscrew)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    kinds = set(args.rows.split(","))
    square, native = [], []
    if "square" in kinds:
        sizes = [int(s) for s in args.sizes.split(",")]
        square = square_rows(Path(args.model), sizes, args.runs, args.threads)
    if "native" in kinds:
        only = set(args.recipes.split(",")) - {""}
        native = native_rows(args.native_runs, args.threads, only or None)
    if args.json:
        from inspect_core.runtime.machine import this_machine

        here = this_machine(args.threads)
        for row in square + native:  # each row names the CPU and the flags it ran with
            row |= {"cpu": here.cpu, "cpu_flags": list(here.flags)}
        print(json.dumps(square + native, indent=2))
        return
    if square:
        print(f"model {Path(args.model).name}, threads {args.threads or 'all'}")
        print(
            f"{'size':>6} {'torch ms':>10} {'ORT ms':>10} {'speedup':>8}   "
            f"{'ships':<17} {'ms':>8} {'vs ORT':>7}"
        )
        for r in square:
            print(
                f"{r['size']:>6} {r['torch_ms']:>10.2f} {r['ort_ms']:>10.2f} {r['speedup']:>7.2f}x"
                f"   {r['variant']:<17} {r['fast_ms']:>8.2f} {r['fast_speedup']:>6.2f}x"
            )
    if native:
        print(
            f"\n{'recipe':<20} {'size':>9} {'variant':<17} {'fp32 ms':>9} {'fast ms':>9} "
            f"{'speedup':>8} {'mIoU fp32':>9} {'mIoU fast':>9}"
        )

        def score(v: float | None) -> str:  # a good-only model has no mIoU
            return f"{v:>9.4f}" if v is not None else f"{'-':>9}"

        for r in native:
            print(
                f"{r['recipe']:<20} {r['size']:>9} {r['variant']:<17} {r['fp32_ms']:>9.1f} "
                f"{r['fast_ms']:>9.1f} {r['speedup']:>7.2f}x {score(r['miou_fp32'])} "
                f"{score(r['miou_fast'])}"
            )


if __name__ == "__main__":
    main()
