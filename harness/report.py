"""Tables from records: one row per run, a summary of mean ± std over seeds, and the accuracy
for cost of every solver (errors at training-second budgets, seconds to reach accuracies).

:func:`write_report` writes them as CSV (``report.csv``, ``report_runs.csv``,
``report_anytime.csv``), markdown (``report.md``) and, when pyarrow is importable, parquet
(``report.parquet``, ``report_runs.parquet``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.io import atomic_write, atomic_write_text

from . import records

__all__ = ["runs_table", "summary_table", "format_summary", "summary_markdown", "write_report",
           "accuracy_for_cost", "accuracy_markdown", "THRESHOLDS", "BUDGETS_S", "UNDER_FLOOR"]

#: Accuracies whose first reaching is timed (with the metric's own floor as a last one) ...
THRESHOLDS = {"var_rel_l2": (0.1, 0.05, 0.02, 0.01)}
#: ... and the training-second budgets at which errors are tabulated (plus the end).
BUDGETS_S = (1.0, 10.0, 60.0, 300.0)
#: The seconds to an accuracy finer than the anytime evaluation's statistical floor: its curve
#: cannot resolve it (the final evaluation, with more samples, may).
UNDER_FLOOR = "under the floor"

KEYS = ["problem", "d", "solver"]


def runs_table(directory: Path) -> pd.DataFrame:
    """One row per record under ``directory``: identity, status, metrics and timing columns."""
    rows = []
    for path, rec in records.iter_records(directory):
        row = {
            "run_id": rec["run_id"],
            "status": rec["status"],
            "reason": rec.get("reason"),
            "problem": rec["problem"]["name"],
            "d": rec["problem"]["params"].get("d"),
            "solver": rec["solver"]["name"],
            "seed": rec.get("seed"),
            "profile": rec.get("profile"),
        }
        row.update({k: v for k, v in (rec.get("metrics") or {}).items()})
        for k, v in (rec.get("timing") or {}).items():
            if isinstance(v, (int, float)):
                row[k] = v
        # a solver with a process of its own (the PINN's DeepXDE, t-VMC's JAX) peaks there
        peaks = [v for v in (row.get("peak_mem_mb"),
                             (rec.get("diagnostics") or {}).get("worker_peak_rss_mb"))
                 if isinstance(v, (int, float))]
        if peaks:
            row["peak_mb"] = max(peaks)
        row["path"] = str(path)
        rows.append(row)
    return pd.DataFrame(rows)


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (problem, d, solver): run counts by status and mean/std over ok runs of each metric."""
    if runs.empty:
        return runs
    numeric = [c for c in runs.columns
               if c not in KEYS + ["seed"] and pd.api.types.is_numeric_dtype(runs[c])]
    groups = []
    for key, grp in runs.groupby(KEYS, dropna=False, sort=True):
        ok = grp[grp["status"] == "ok"]
        row = dict(zip(KEYS, key))
        row["runs"] = len(grp)
        row["ok"] = len(ok)
        row["failed"] = int((grp["status"] == "failed").sum())
        row["skipped"] = int((grp["status"] == "skipped").sum())
        for col in numeric:
            vals = ok[col].dropna()
            if len(vals):
                row[f"{col}_mean"] = float(vals.mean())
                row[f"{col}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
        reasons = grp["reason"].dropna().unique()
        row["reasons"] = "; ".join(str(r) for r in reasons) if len(reasons) else ""
        groups.append(row)
    return pd.DataFrame(groups)


#: Columns shown in the markdown summary, in order, when present.
SHOWN = ["mean_rel_l2", "mean_abs_rms", "var_rel_l2", "w1_mean", "com_var_err", "energy_drift",
         "train_s", "s_per_iter", "peak_mb"]


def _pm(mean: float, std: float) -> str:
    if not np.isfinite(mean):
        return ""
    return f"{mean:.3g}" if std == 0 else f"{mean:.3g} ± {std:.2g}"


def format_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary with mean ± std strings, ready for markdown."""
    if summary.empty:
        return summary
    out = summary[KEYS + ["runs", "ok", "failed", "skipped"]].copy()
    out["d"] = out["d"].map(lambda v: "" if pd.isna(v) else str(int(v)))
    for col in SHOWN:
        if f"{col}_mean" in summary:
            values = [_pm(m, s) if pd.notna(m) else "" for m, s in
                      zip(summary[f"{col}_mean"], summary[f"{col}_std"])]
            if any(values):  # a metric no group has is left out
                out[col] = values
    if summary["reasons"].astype(bool).any():
        out["reasons"] = summary["reasons"]
    return out


def summary_markdown(summary: pd.DataFrame) -> str:
    """The summary as a markdown table (mean ± std over seeds of ok runs)."""
    return format_summary(summary).to_markdown(index=False)


def _parquet_ok() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def write_report(runs: pd.DataFrame, csv_path: Path, title: str | None = None,
                 accuracy: pd.DataFrame | None = None) -> list[Path]:
    """Write the summary and the runs table beside ``csv_path`` (CSV, markdown, parquet when
    pyarrow is installed), with the accuracy-for-cost table (:func:`accuracy_for_cost`) when
    given; return the paths written."""
    csv_path = Path(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    summary = summary_table(runs)
    stem = csv_path.with_suffix("")
    runs_csv = stem.with_name(stem.name + "_runs.csv")
    md = stem.with_suffix(".md")
    written = [csv_path, runs_csv, md]
    atomic_write(csv_path, lambda fh: summary.to_csv(fh, index=False))
    atomic_write(runs_csv, lambda fh: runs.to_csv(fh, index=False))
    head = f"# {title}\n\n" if title else ""
    note = ("Mean ± standard deviation over the seeds of ok runs; `runs`/`ok`/`failed`/`skipped` "
            "count records.\n\n")
    text = head + note + summary_markdown(summary) + "\n"
    if accuracy is not None and not accuracy.empty:
        anytime_csv = stem.with_name(stem.name + "_anytime.csv")
        atomic_write(anytime_csv, lambda fh: accuracy.to_csv(fh, index=False))
        written.append(anytime_csv)
        text += ("\n## Accuracy for cost\n\nThe error of the last anytime point within each "
                 "budget of training seconds, and the training seconds of the first point at or "
                 "below each accuracy (`floor`: the metric's statistical floor for the anytime "
                 "evaluation's samples; \"under the floor\": an accuracy finer than that "
                 "floor, which the anytime points cannot resolve); mean ± std over seeds.  "
                 "Grid solvers' points are solves at coarser resolutions, their seconds each "
                 "solve's own.\n\n"
                 + accuracy_markdown(accuracy) + "\n")
    atomic_write_text(md, text)
    if _parquet_ok():
        for table, path in ((summary, stem.with_suffix(".parquet")),
                            (runs, stem.with_name(stem.name + "_runs.parquet"))):
            atomic_write(path, lambda fh, t=table: t.to_parquet(fh, index=False), binary=True)
            written.append(path)
    return written


def _error_at(points, metric, budget):
    """The metric of the last point within ``budget`` training seconds (None: none yet)."""
    within = [p for p in points if p["train_s"] <= budget * (1 + 1e-9) and metric in p["metrics"]]
    return within[-1]["metrics"][metric] if within else None


def _time_to(points, metric, threshold):
    """Training seconds of the first point at or below ``threshold`` (None: not reached)."""
    for p in points:
        value = p["metrics"].get(metric)
        if value is not None and value <= threshold:
            return p["train_s"]
    return None


def _anytime_rows(directory: Path) -> pd.DataFrame:
    """One row per (record, metric) with anytime points: errors at the budgets and the seconds
    to reach each threshold and the metric's floor."""
    rows = []
    for _, rec in records.iter_records(directory):
        points = [p for p in rec.get("anytime") or [] if p.get("metrics")]
        if rec.get("status") != "ok" or not points:
            continue
        info = rec.get("anytime_info") or {}
        for metric, thresholds in THRESHOLDS.items():
            if not any(metric in p["metrics"] for p in points):
                continue
            floors = info.get("floors") or {}
            floor = floors.get(f"{metric}_floor", rec["metrics"].get(f"{metric}_floor"))
            row = {"problem": rec["problem"]["name"], "d": rec["problem"]["params"].get("d"),
                   "solver": rec["solver"]["name"], "seed": rec.get("seed"), "metric": metric,
                   "kind": info.get("kind"), "train_s": rec["timing"].get("train_s"),
                   "final": rec["metrics"].get(metric), "floor": floor}
            for b in BUDGETS_S:
                row[f"at_{b:g}s"] = _error_at(points, metric, b)
            for th in thresholds:
                # an accuracy finer than the anytime evaluation's own floor cannot be told
                # from its noise: a point under it is luck, and none under it is no failure
                row[f"to_{th:g}"] = (UNDER_FLOOR if floor is not None and th < floor
                                     else _time_to(points, metric, th))
            row["to_floor"] = _time_to(points, metric, floor) if floor is not None else None
            rows.append(row)
    return pd.DataFrame(rows)


def accuracy_for_cost(directory: Path) -> pd.DataFrame:
    """Per (problem, d, solver, metric): mean ± std over seeds of the error at each budget and
    of the seconds to reach each accuracy; an accuracy some seed never reached is counted."""
    rows = _anytime_rows(directory)
    if rows.empty:
        return rows
    out = []
    value_cols = [c for c in rows.columns if c.startswith(("at_", "to_")) or c in ("final",
                                                                                 "floor")]
    for key, grp in rows.groupby(["problem", "d", "solver", "metric"], dropna=False, sort=True):
        row = dict(zip(["problem", "d", "solver", "metric"], key), seeds=len(grp),
                   kind=grp["kind"].iloc[0])
        for col in value_cols:
            under = grp[col].eq(UNDER_FLOOR) if col.startswith("to_") else None
            if under is not None and under.all():
                row[col] = UNDER_FLOOR
                continue
            # a threshold under a record's floor is left out of that record's seconds
            resolved = grp[col][~under] if under is not None else grp[col]
            vals = resolved.dropna().astype(float)
            missing = len(resolved) - len(vals)
            if col == "to_floor" and grp["floor"].isna().all():
                row[col] = ""  # no floor: not a sample-based solver
            elif col.startswith("to_") and missing:
                row[col] = ("not reached" if not len(vals) else
                            f"{_pm(vals.mean(), vals.std(ddof=1) if len(vals) > 1 else 0.0)} "
                            f"({missing} of {len(resolved)} not reached)")
            elif len(vals):
                row[col] = _pm(vals.mean(), vals.std(ddof=1) if len(vals) > 1 else 0.0)
            else:
                row[col] = ""
        out.append(row)
    return pd.DataFrame(out)


def accuracy_markdown(table: pd.DataFrame) -> str:
    """The accuracy-for-cost table as markdown (headers say what the columns are)."""
    if table.empty:
        return "(no anytime points in these records)"
    shown = table.copy()
    shown["d"] = shown["d"].map(lambda v: "" if pd.isna(v) else str(int(v)))
    rename = {}
    for c in shown.columns:
        if c.startswith("at_"):
            rename[c] = f"error at {c[3:]}"
        elif c.startswith("to_"):
            rename[c] = f"s to ≤ {c[3:]}"
    return shown.rename(columns=rename).to_markdown(index=False)
