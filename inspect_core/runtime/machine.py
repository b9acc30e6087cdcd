"""Which machine a model runs on, as far as its speed and its int8 arithmetic go (issue 26):
the CPU model, the instruction sets that decide which kernels ONNX Runtime and OpenVINO pick
(AVX2, AVX-512, VNNI, AMX, bf16), the cores, the threads a run gets, and the versions of the
inference libraries. Two machines with the same :attr:`Machine.key` run a variant alike, so a
variant measured on one (:mod:`inspect_core.runtime.tuning`) is measured for the other.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

# the flags that change which kernels run (int8 dot products, bf16, wide vectors)
FLAGS_OF_INTEREST = (
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
)
LIBRARIES = ("onnxruntime", "openvino")


@dataclass(frozen=True)
class Machine:
    """This machine, for the variants: ``threads`` is what one model run gets (0: every
    core)."""

    cpu: str
    flags: tuple[str, ...]
    cores: int
    threads: int
    libraries: tuple[tuple[str, str], ...]  # (name, version); version "" when not installed

    @property
    def key(self) -> str:
        """16 hex digits naming this machine's CPU model, flags, cores, threads and library
        versions: a cache entry made under another key does not apply here."""
        raw = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(raw).hexdigest()[:16]

    def describe(self) -> str:
        """One line: ``AMD EPYC 7B13, 2 cores (1 thread), avx2 avx512_vnni, onnxruntime 1.32.0``."""
        libs = ", ".join(f"{n} {v}" for n, v in self.libraries if v)
        run = f"{self.threads} thread{'s' if self.threads != 1 else ''}" if self.threads else "all"
        return f"{self.cpu}, {self.cores} cores ({run}), {' '.join(self.flags) or 'none'}, {libs}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "cpu": self.cpu,
            "flags": list(self.flags),
            "cores": self.cores,
            "threads": self.threads,
            "libraries": dict(self.libraries),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Machine:
        libs = tuple(sorted((str(n), str(v)) for n, v in dict(d["libraries"]).items()))
        return cls(str(d["cpu"]), tuple(d["flags"]), int(d["cores"]), int(d["threads"]), libs)


def this_machine(threads: int = 0) -> Machine:
    """This machine, with ``threads`` per model run (0: every core)."""
    cpu, flags = cpu_info()
    return Machine(
        cpu,
        tuple(f for f in FLAGS_OF_INTEREST if f in flags),
        cores(),
        threads,
        tuple(sorted((name, _version(name)) for name in LIBRARIES)),
    )


@lru_cache(maxsize=1)
def cpu_info() -> tuple[str, frozenset[str]]:
    """The CPU's model name and flags from ``/proc/cpuinfo`` ("unknown CPU" and none where it
    cannot be read: not Linux)."""
    name, flags = "", frozenset[str]()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Model", "Processor") and not name:
                    name = " ".join(value.split())
                elif key in ("flags", "Features") and not flags:
                    flags = frozenset(value.split())
    except OSError:
        pass
    return name or "unknown CPU", flags


def run_threads(threads: int = 0) -> int:
    """The threads one model run gets: ``threads``, else ``INSPECT_THREADS``, else 0 (every
    core); what a model load and the machine key of its measurement both use."""
    return threads or int(os.environ.get("INSPECT_THREADS", "0") or 0)


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return ""
