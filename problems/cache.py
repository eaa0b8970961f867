"""On-disk cache of computed references, keyed by what determines them.

A key is the SHA-256 of a canonical JSON description (problem spec, grid settings, times, engine
version).  Entries are ``.npz`` files written atomically, so a killed computation never leaves a
half-written entry.  Lookups search the user cache (``$DSM_BENCH_CACHE``, default
``~/.cache/dsm-bench``) and then the references shipped with the package (``problems/data``).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from core.io import atomic_write

__all__ = ["cache_dir", "cache_key", "load", "read_entry", "store"]

SHIPPED = Path(__file__).resolve().parent / "data"


def cache_dir() -> Path:
    """Where computed references are written."""
    root = os.environ.get("DSM_BENCH_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "dsm-bench"


def cache_key(description: dict[str, Any]) -> str:
    """A stable hash of a JSON-serialisable description."""
    text = json.dumps(description, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _paths(kind: str, key: str) -> list[Path]:
    name = f"{kind}-{key}.npz"
    return [cache_dir() / "references" / name, SHIPPED / "references" / name]


def read_entry(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and metadata of one entry file."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if k != "__meta__"}
        meta = json.loads(str(data["__meta__"]))
    return arrays, meta


def load(kind: str, key: str) -> tuple[dict[str, np.ndarray], dict[str, Any], Path] | None:
    """The arrays and metadata stored under ``key``, and where they were found, or None."""
    for path in _paths(kind, key):
        if path.is_file():
            return (*read_entry(path), path)
    return None


def store(kind: str, key: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    """Write an entry atomically and return its path."""
    return atomic_write(_paths(kind, key)[0],
                        lambda fh: np.savez_compressed(fh, __meta__=np.array(json.dumps(meta)),
                                                       **arrays), binary=True)
