"""Regression gate: compare a directory of records against a baseline directory.

Runs are matched by what determines them: problem name and parameters, solver name and
parameters, seed and the number of record times (the fields the run id hashes, read from the
records themselves).  For each matched pair:

* **status**: a run that was ``ok`` (or ``skipped``) and is now ``failed``, or was ``ok`` and is
  now ``skipped``, is a regression;
* **errors** (lower is better, the pair distance's W1 included; see :func:`is_error_metric`): a regression when
  ``new > base + atol + rtol * |base|``, or when the baseline had a finite value and the new run
  has none;
* **timing** (``s_per_iter``, ``train_s``) is reported for every pair and gates only with
  ``gate_timing=FACTOR``: a regression when new / base > FACTOR, for runs whose baseline trained
  for at least :data:`MIN_GATED_TRAIN_S` (shorter ones cannot be timed reliably);
* floors, diagnostics and other informational metrics never gate.

Runs only in the baseline are *missing* and fail the comparison (a run that silently stopped
running hides whatever it measured) unless ``allow_missing``; runs only in the new directory are
listed as new and never fail.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import records

__all__ = ["is_error_metric", "run_key", "compare", "Comparison", "DEFAULT_RTOL", "DEFAULT_ATOL"]

DEFAULT_RTOL = 0.1
DEFAULT_ATOL = 1e-6
#: Timing is gated only for runs whose baseline ``train_s`` is at least this long.
MIN_GATED_TRAIN_S = 1.0
TIMING_KEYS = ("s_per_iter", "train_s")
_ERROR_SUFFIXES = ("_rel_l2", "_abs_rms", "_err")
_ERROR_NAMES = {"energy_drift", "norm_drift"}


def is_error_metric(name: str) -> bool:
    """Whether a metric is an error (lower is better, gated): ``*_rel_l2``, ``*_abs_rms``,
    ``*_err``, ``w1_*`` and ``pair_w1_*``, ``energy_drift``, ``norm_drift``; never a floor
    (``*_floor``, ``*_floor_lo``, ``*_floor_hi``) or a count."""
    if "_floor" in name:
        return False
    return (name.endswith(_ERROR_SUFFIXES) or name.startswith(("w1_", "pair_w1_"))
            or name in _ERROR_NAMES)


def run_key(rec: dict[str, Any]) -> str:
    """The matching key of a record: problem and solver (names and parameters), seed, n_times."""
    return json.dumps([rec["problem"], rec["solver"], rec.get("seed"), rec.get("n_times")],
                      sort_keys=True, separators=(",", ":"))


def _label(rec: dict[str, Any]) -> str:
    return rec["run_id"]


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if _finite(v) else "—"


@dataclass
class Comparison:
    """The outcome of :func:`compare`; :meth:`markdown` is the report, :attr:`failed` the verdict."""

    base_dir: Path
    new_dir: Path
    rtol: float
    atol: float
    gate_timing: float | None
    allow_missing: bool
    n_base: int = 0
    n_new: int = 0
    matched: int = 0
    regressions: list[dict[str, Any]] = field(default_factory=list)
    status_changes: list[dict[str, Any]] = field(default_factory=list)
    improvements: list[dict[str, Any]] = field(default_factory=list)
    missing: list[dict[str, Any]] = field(default_factory=list)
    new: list[dict[str, Any]] = field(default_factory=list)
    timing: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.regressions) or (bool(self.missing) and not self.allow_missing)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def markdown(self) -> str:
        out = ["# Regression report", ""]
        out.append(f"- baseline: `{self.base_dir}` ({self.n_base} records)")
        out.append(f"- new: `{self.new_dir}` ({self.n_new} records); {self.matched} runs matched")
        out.append(f"- an error regresses when new > base + atol + rtol·|base| "
                   f"(rtol = {self.rtol:g}, atol = {self.atol:g})")
        out.append("- timing gate: " + (f"new/base > {self.gate_timing:g} for runs whose baseline "
                                        f"trained ≥ {MIN_GATED_TRAIN_S:g} s"
                                        if self.gate_timing else "off (reported only)"))
        out.append(f"- missing runs {'are listed only' if self.allow_missing else 'fail'}")
        out.append("")
        n_miss = len(self.missing) if not self.allow_missing else 0
        if self.failed:
            parts = []
            if self.regressions:
                parts.append(f"{len(self.regressions)} regression(s)")
            if n_miss:
                parts.append(f"{n_miss} missing run(s)")
            out.append(f"**FAIL: {', '.join(parts)}**")
        else:
            out.append("**PASS**")
        out.append("")

        def table(title, rows, cols):
            if not rows:
                return
            out.extend([f"## {title}", "", "| " + " | ".join(h for h, _ in cols) + " |",
                        "|" + "---|" * len(cols)])
            for row in rows:
                out.append("| " + " | ".join(str(fn(row)) for _, fn in cols) + " |")
            out.append("")

        table("Regressions", self.regressions, [
            ("run", lambda r: f"`{r['run']}`"), ("what", lambda r: r["metric"]),
            ("baseline", lambda r: r["base"]), ("new", lambda r: r["new"]),
            ("limit", lambda r: r.get("limit", "")), ("note", lambda r: r.get("note", ""))])
        table("Status changes", self.status_changes, [
            ("run", lambda r: f"`{r['run']}`"), ("baseline", lambda r: r["base"]),
            ("new", lambda r: r["new"]), ("reason", lambda r: r.get("note", ""))])
        table("Missing runs (in the baseline, not in the new directory)", self.missing, [
            ("run", lambda r: f"`{r['run']}`"), ("baseline status", lambda r: r["base"])])
        table("New runs (not in the baseline)", self.new, [
            ("run", lambda r: f"`{r['run']}`"), ("status", lambda r: r["new"])])
        table("Improvements", self.improvements, [
            ("run", lambda r: f"`{r['run']}`"), ("what", lambda r: r["metric"]),
            ("baseline", lambda r: r["base"]), ("new", lambda r: r["new"])])
        table("Timing", self.timing, [
            ("run", lambda r: f"`{r['run']}`"),
            ("train_s base", lambda r: _fmt(r["train_s"][0])),
            ("train_s new", lambda r: _fmt(r["train_s"][1])),
            ("ratio", lambda r: _fmt(r["train_ratio"])),
            ("s_per_iter base", lambda r: _fmt(r["s_per_iter"][0])),
            ("s_per_iter new", lambda r: _fmt(r["s_per_iter"][1])),
            ("ratio", lambda r: _fmt(r["iter_ratio"]))])
        if self.duplicates:
            out.append("## Duplicate records (the first of each was used)")
            out.append("")
            out.extend(f"- {d}" for d in self.duplicates)
            out.append("")
        return "\n".join(out).rstrip() + "\n"


def _load(directory: Path, dups: list[str]) -> dict[str, dict[str, Any]]:
    runs: dict[str, dict[str, Any]] = {}
    for path, rec in records.iter_records(directory):
        key = run_key(rec)
        if key in runs:
            dups.append(f"`{path}` repeats `{runs[key]['run_id']}`")
            continue
        runs[key] = rec
    return runs


def _ratio(base: Any, new: Any) -> float | None:
    return new / base if _finite(base) and _finite(new) and base > 0 else None


def compare(base_dir: Path, new_dir: Path, *, rtol: float = DEFAULT_RTOL,
            atol: float = DEFAULT_ATOL, gate_timing: float | None = None,
            allow_missing: bool = False) -> Comparison:
    """Compare the records under ``new_dir`` with those under ``base_dir``."""
    for name, value in (("rtol", rtol), ("atol", atol)):
        if not (_finite(value) and value >= 0):
            raise ValueError(f"--{name} must be a non-negative number, got {value!r}")
    if gate_timing is not None and not (_finite(gate_timing) and gate_timing > 0):
        raise ValueError(f"--gate-timing must be a positive factor, got {gate_timing!r}")
    cmp = Comparison(Path(base_dir), Path(new_dir), rtol, atol, gate_timing, allow_missing)
    base = _load(base_dir, cmp.duplicates)
    new = _load(new_dir, cmp.duplicates)
    cmp.n_base, cmp.n_new = len(base), len(new)

    for key, b in base.items():
        n = new.get(key)
        if n is None:
            cmp.missing.append({"run": _label(b), "base": b["status"]})
            continue
        cmp.matched += 1
        run = _label(b)
        sb, sn = b["status"], n["status"]
        if sb != sn:
            change = {"run": run, "base": sb, "new": sn, "note": n.get("reason") or ""}
            cmp.status_changes.append(change)
            if sn == "failed" or (sb == "ok" and sn == "skipped"):
                cmp.regressions.append({"run": run, "metric": "status", "base": sb, "new": sn,
                                        "note": n.get("reason") or ""})
        if sb != "ok" or sn != "ok":
            continue
        bm, nm = b.get("metrics") or {}, n.get("metrics") or {}
        for metric in sorted(bm):
            if not is_error_metric(metric) or not _finite(bm[metric]):
                continue
            bv, nv = bm[metric], nm.get(metric)
            tol = atol + rtol * abs(bv)
            if not _finite(nv):
                cmp.regressions.append({"run": run, "metric": metric, "base": _fmt(bv),
                                        "new": "missing" if nv is None and metric not in nm
                                        else "not finite", "limit": _fmt(bv + tol)})
            elif nv > bv + tol:
                cmp.regressions.append({"run": run, "metric": metric, "base": _fmt(bv),
                                        "new": _fmt(nv), "limit": _fmt(bv + tol),
                                        "note": f"x{nv / bv:.3g}" if bv > 0 else ""})
            elif nv < bv - tol:
                cmp.improvements.append({"run": run, "metric": metric, "base": _fmt(bv),
                                         "new": _fmt(nv)})
        bt, nt = b.get("timing") or {}, n.get("timing") or {}
        row = {"run": run}
        for k in TIMING_KEYS:
            row[k] = (bt.get(k), nt.get(k))
        row["train_ratio"] = _ratio(*row["train_s"])
        row["iter_ratio"] = _ratio(*row["s_per_iter"])
        cmp.timing.append(row)
        if gate_timing and _finite(bt.get("train_s")) and bt["train_s"] >= MIN_GATED_TRAIN_S:
            for k, ratio in (("train_s", row["train_ratio"]), ("s_per_iter", row["iter_ratio"])):
                if ratio is not None and ratio > gate_timing:
                    cmp.regressions.append({"run": run, "metric": k, "base": _fmt(row[k][0]),
                                            "new": _fmt(row[k][1]),
                                            "limit": _fmt(gate_timing * row[k][0]),
                                            "note": f"x{ratio:.3g} slower"})
    for key, n in new.items():
        if key not in base:
            cmp.new.append({"run": _label(n), "new": n["status"]})
    return cmp
