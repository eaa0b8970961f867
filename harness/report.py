"""Tables from records: one row per run, and a summary of mean ± std over seeds.

:func:`write_report` writes them as CSV (``report.csv``, ``report_runs.csv``), markdown
(``report.md``) and, when pyarrow is importable, parquet (``report.parquet``,
``report_runs.parquet``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.io import atomic_write, atomic_write_text

from . import records

__all__ = ["runs_table", "summary_table", "format_summary", "summary_markdown", "write_report"]

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
         "train_s", "s_per_iter"]


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


def write_report(runs: pd.DataFrame, csv_path: Path, title: str | None = None) -> list[Path]:
    """Write the summary and the runs table beside ``csv_path`` (CSV, markdown, parquet when
    pyarrow is installed); return the paths written."""
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
    atomic_write_text(md, head + note + summary_markdown(summary) + "\n")
    if _parquet_ok():
        for table, path in ((summary, stem.with_suffix(".parquet")),
                            (runs, stem.with_name(stem.name + "_runs.parquet"))):
            atomic_write(path, lambda fh, t=table: t.to_parquet(fh, index=False), binary=True)
            written.append(path)
    return written
