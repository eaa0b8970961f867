"""Run records: one JSON file per run, written atomically, read back into tables.

Writing goes to a temporary file in the same directory, is flushed to disk, and is renamed over
the final name, so a reader (or a crash) never sees a half-written record.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from core.io import atomic_write_text

SCHEMA = 1

__all__ = ["run_id", "derive_seed", "write", "load", "iter_records", "jsonable", "dumps"]


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def run_id(problem_spec: dict, solver_spec: dict, seed: int, extra: dict | None = None) -> str:
    """A readable, deterministic id: the same run always gets the same file name."""
    digest = hashlib.sha256(_canonical([problem_spec, solver_spec, seed, extra or {}]).encode())
    d = problem_spec["params"].get("d")
    dim = f"-d{d}" if d is not None else ""
    return f"{problem_spec['name']}{dim}-{solver_spec['name']}-s{seed}-{digest.hexdigest()[:10]}"


def derive_seed(problem_spec: dict, solver_spec: dict, seed: int) -> int:
    """The RNG seed of a run, derived from what it solves, how, and the repetition number."""
    digest = hashlib.sha256(_canonical([problem_spec, solver_spec, seed]).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def jsonable(obj: Any, digits: int | None = None) -> Any:
    """Convert arrays and numbers to JSON types; NaN and infinities become None.

    ``digits`` rounds floats to that many significant digits (for bulky series).
    """
    if isinstance(obj, dict):
        return {str(k): jsonable(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v, digits) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist(), digits)
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        if not math.isfinite(x):
            return None
        return float(f"{x:.{digits}g}") if digits else x
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


def dumps(obj: Any, indent: int = 0) -> str:
    """JSON with objects indented one key per line and arrays kept on one line (compact)."""
    if isinstance(obj, dict) and obj:
        pad = " " * (indent + 1)
        items = [f"{pad}{json.dumps(k)}: {dumps(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    return json.dumps(obj, separators=(",", ":"), allow_nan=False)


def write(record: dict[str, Any], out_dir: Path) -> Path:
    """Write ``record`` as ``out_dir/<run_id>.json`` atomically and return the path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{record['run_id']}.json"
    atomic_write_text(path, dumps(jsonable(record)) + "\n")
    return path


def differing_keys(specs: list[dict[str, Any]]) -> dict[str, list[str]]:
    """For ``{"name", "params"}`` specs (a record's problem or solver): per name, the parameters
    whose values differ between the specs of that name (sorted)."""
    by_name: dict[str, list[dict]] = {}
    for spec in specs:
        by_name.setdefault(spec["name"], []).append(spec["params"])
    return {name: [k for k in sorted({k for p in ps for k in p})
                   if len({json.dumps(p.get(k), sort_keys=True) for p in ps}) > 1]
            for name, ps in by_name.items()}


def differing_labels(specs: list[dict[str, Any]]) -> list[str]:
    """For each ``{"name", "params"}`` spec: "k=v, ..." of the parameters in which it differs
    from other specs of the same name ("" where all of that name agree)."""
    keys = differing_keys(specs)
    return [", ".join(f"{k}={spec['params'].get(k)}" for k in keys[spec["name"]])
            for spec in specs]


def load(path: Path) -> dict[str, Any]:
    with open(path) as fh:
        return json.load(fh)


def iter_records(directory: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Records under ``directory`` (recursively), skipping temporary and side files; a record
    file given instead of a directory yields that record."""
    directory = Path(directory)
    paths = [directory] if directory.is_file() else sorted(directory.rglob("*.json"))
    for path in paths:
        if path.name.startswith("."):
            continue
        try:
            rec = load(path)
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(rec, dict) and rec.get("schema") == SCHEMA and "run_id" in rec \
                and path.name == f"{rec['run_id']}.json":
            yield path, rec
