"""The environment a run happened in: versions, machine, device, code revision."""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import scipy
import torch

from core import ParameterError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: What a run's code is: changes elsewhere (results, docs, tests) do not make a run "dirty".
CODE_PATHS = ("core", "problems", "solvers", "harness", "pyproject.toml")


@functools.lru_cache(maxsize=1)
def git_revision() -> dict[str, Any] | None:
    """The commit of the code that ran and whether that code (:data:`CODE_PATHS`) had
    uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return None
        # only the code counts: regenerating committed results must not mark runs as dirty
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                 *CODE_PATHS], cwd=PROJECT_ROOT, capture_output=True, text=True,
                                timeout=10)
        return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def resolve_device(requested: str) -> str:
    """``auto`` picks CUDA when present; asking for CUDA without it is an error."""
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ParameterError("device 'cuda' was requested but torch sees no CUDA device; use "
                             "--device cpu")
    return requested


def describe_device(device: str) -> str:
    if device.startswith("cuda"):
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return f"cpu ({cpu_model()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()})"


def environment(device: str) -> dict[str, Any]:
    """Versions, machine and device for a record's ``env`` field."""
    from importlib.metadata import PackageNotFoundError, version

    try:  # without importing pandas, which a run's process does not otherwise need
        pandas_version = version("pandas")
    except PackageNotFoundError:
        pandas_version = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pandas_version,
        "device": describe_device(device),
        "hostname": platform.node(),
        "cpu_count": os.cpu_count(),
        "git": git_revision(),
    }


def keep_freed_memory() -> None:
    """Ask glibc to keep freed memory for reuse, in this (a run's) process.

    By default glibc serves blocks above 32 MB with mmap and returns them to the OS when freed,
    so every training iteration page-faults its large derivative tensors in again; measured at
    the original DSM code's settings (width 400, 15000 points) this made an iteration 5.2 s
    instead of 3.0 s at d = 1 and 10.0 s instead of 4.7 s at d = 4.  The process keeps its peak
    footprint instead.  A run's process calls this at start (a solver must not change the state
    of whatever process imports it); elsewhere than glibc it does nothing.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_max = -1, -4
    libc.mallopt(m_mmap_max, 0)
    libc.mallopt(m_trim_threshold, 2**31 - 1)


def load_average() -> list[float] | None:
    """The machine's 1-, 5- and 15-minute load averages (None where the platform has none), kept
    beside timings so that a figure measured on a contended machine can be recognised."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None
