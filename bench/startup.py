"""Start-up time of the command line (issue 27, item 7): wall seconds of ``inspect --help``,
``inspect plugins --json`` and ``inspect predict --help``, each the median of ``--runs`` fresh
processes after one warm-up run (which fills the file cache and ``__pycache__``).

    python bench/startup.py [--runs 5] [--inspect .venv/bin/inspect] [--top 8] [--json]

Beside the wall time, the CPU seconds of the process (user + system, its median): on a shared
machine the wall time also counts waiting for a core, the CPU time does not. ``--top K`` also
lists, per command, the K imports that took longest (``python -X importtime``, cumulative, the
modules imported first at the top level of the import tree). The CPU and its instruction-set
flags (avx2, avx512*, amx*) head the output, as bench/README.md reports them, with the
1-minute load average before and after the runs (a shared machine's other work).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = (("--help",), ("plugins", "--json"), ("predict", "--help"))
FLAG_PREFIXES = ("avx2", "avx512", "amx")


def cpu() -> tuple[str, list[str]]:
    """The CPU's model name and its avx2/avx512*/amx* flags (from /proc/cpuinfo)."""
    name, flags = "unknown CPU", []
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return name, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and name == "unknown CPU":
            name = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = sorted(f for f in value.split() if f.startswith(FLAG_PREFIXES))
    return name, flags


def run_once(argv: list[str]) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, exit code) of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu_s, done.returncode


def slowest_imports(python: str, args: tuple[str, ...], top: int) -> list[tuple[str, float]]:
    """The ``top`` top-level imports of ``inspect ARGS`` that took longest (seconds)."""
    code = f"import sys; sys.argv = ['inspect', *{list(args)!r}]\n"
    code += "from inspect_core.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass"
    res = subprocess.run(
        [python, "-X", "importtime", "-c", code], capture_output=True, text=True, check=False
    )
    rows = []
    for line in res.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|")
        if not name.startswith("  "):  # the top level of the tree: one space after the bar
            rows.append((name.strip(), int(cumulative) / 1e6))
    return sorted(rows, key=lambda r: -r[1])[:top]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="fresh processes per command (median)")
    ap.add_argument(
        "--inspect",
        default=str(Path(sys.executable).with_name("inspect")),
        help="the inspect script (default: the one beside this Python)",
    )
    ap.add_argument("--top", type=int, default=0, help="also list the K slowest imports")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    name, flags = cpu()
    load_before = os.getloadavg()[0]
    rows = []
    for cmd in COMMANDS:
        argv = [args.inspect, *cmd]
        run_once(argv)  # warm-up
        runs = [run_once(argv) for _ in range(args.runs)]
        rows.append(
            {
                "command": "inspect " + " ".join(cmd),
                "wall_s": round(statistics.median(r[0] for r in runs), 3),
                "cpu_s": round(statistics.median(r[1] for r in runs), 3),
                "exit": sorted({r[2] for r in runs}),
                "slowest_imports": slowest_imports(sys.executable, cmd, args.top)
                if args.top
                else [],
            }
        )
    load = (round(load_before, 2), round(os.getloadavg()[0], 2))  # 1-minute, before and after
    meta = {
        "cpu": name,
        "cpu_flags": flags,
        "cores": os.cpu_count(),
        "runs": args.runs,
        "load_average": load,
    }
    if args.json:
        print(json.dumps({**meta, "rows": rows}, indent=2))
        return
    print(f"CPU: {name}, {os.cpu_count()} cores; flags: {' '.join(flags) or 'none of them'}")
    print(
        f"median of {args.runs} runs after a warm-up; load average (1 min) {load[0]:.2f} "
        f"before, {load[1]:.2f} after"
    )
    print(f"{'command':28} {'wall s':>7} {'cpu s':>7}  exit")
    for r in rows:
        print(f"{r['command']:28} {r['wall_s']:7.3f} {r['cpu_s']:7.3f}  {r['exit']}")
        for module, seconds in r["slowest_imports"]:
            print(f"    {seconds:6.3f} s  {module}")


if __name__ == "__main__":
    main()
