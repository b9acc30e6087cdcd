"""Training speed on this machine: images per second of the training step.

    python bench/train_speed.py [--json] [--sizes 192,256] [--widths 16,32] [--strides 1,2]
                                [--steps 3] [--warmup 2] [--batch 8] [--threads 2]

Times ``inspect_core.training.trainer.train_step`` (forward, Dice + cross-entropy, backward,
Adam update: what `inspect train` runs for each batch) on synthetic batches of gray crops,
channels-last, for every combination of crop size, network width and stem stride (the enhanced
U-Net, depth 4), in fp32 and, where the CPU has native bf16 (AVX512-BF16 or AMX), with bf16
autocast as training uses it. Each row: ``--warmup`` steps, then ``--steps`` timed steps on a
fresh network. Data loading and augmentation are not included (training decodes each image
once; augmentation runs in a loader process beside the step).

At most 2 threads unless ``--threads`` says otherwise (set before torch loads). Prints the
machine (CPU model, cores, bf16) and one row per setting; --json for a JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path


def machine() -> dict:
    """CPU model, cores and whether the CPU has native bf16 (from /proc/cpuinfo)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        info = ""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in info.splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    flags = next((line for line in info.splitlines() if line.startswith("flags")), "")
    return {
        "cpu": model,
        "cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "bf16": any(f in flags.split() for f in ("avx512_bf16", "amx_bf16")),
        "amx": "amx_tile" in flags.split(),
    }


def time_setting(size: int, width: int, stride: int, bf16: bool, args) -> dict:
    """Images/s of the training step for one setting (fresh network and optimiser)."""
    from contextlib import nullcontext

    import torch

    from inspect_core.training.trainer import train_step
    from inspect_core.training.unet import ModelConfig, build_model

    torch.manual_seed(0)
    cfg = ModelConfig(in_channels=1, num_classes=4, width=width, stem_stride=stride)
    model = build_model(cfg).to(memory_format=torch.channels_last).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    x = torch.randn(args.batch, 1, size, size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 4, (args.batch, size, size))

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()

    for _ in range(args.warmup):
        train_step(model, opt, x, y, 255, autocast)
    t = time.perf_counter()
    for _ in range(args.steps):
        train_step(model, opt, x, y, 255, autocast)
    dt = time.perf_counter() - t
    return {
        "size": size,
        "width": width,
        "stem_stride": stride,
        "precision": "bf16" if bf16 else "fp32",
        "images_per_s": round(args.steps * args.batch / dt, 2),
        "ms_per_step": round(1000 * dt / args.steps, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", default="192,256", help="training crop sizes (px)")
    ap.add_argument("--widths", default="16,32", help="network widths")
    ap.add_argument("--strides", default="1,2", help="stem strides")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per setting")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # before torch loads its thread pools

    import torch

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.set_flush_denormal(True)  # as training does
    host = machine()
    precisions = [False, True] if host["bf16"] else [False]
    rows = [
        time_setting(size, width, stride, bf16, args)
        for size in map(int, args.sizes.split(","))
        for width in map(int, args.widths.split(","))
        for stride in map(int, args.strides.split(","))
        for bf16 in precisions
    ]
    run = {
        "machine": {**host, "threads": torch.get_num_threads(), "torch": torch.__version__},
        "batch": args.batch,
        "steps": args.steps,
        "warmup": args.warmup,
        "rows": rows,
    }
    if args.json:
        print(json.dumps(run, indent=2))
        return
    m = run["machine"]
    print(
        f"{m['cpu']}, {m['cores']} cores, native bf16 {'yes' if m['bf16'] else 'no'}; "
        f"torch {m['torch']}, {m['threads']} threads; batch {args.batch}, "
        f"{args.warmup} warm-up + {args.steps} timed steps per row"
    )
    print("| crop (px) | width | stem stride | precision | images/s | ms/step |")
    print("|---:|---:|---:|---|---:|---:|")
    for r in rows:
        print(
            f"| {r['size']} | {r['width']} | {r['stem_stride']} | {r['precision']} | "
            f"{r['images_per_s']:.1f} | {r['ms_per_step']:.0f} |"
        )


if __name__ == "__main__":
    main()
