"""An ablation table from a directory of records: each run's options against a solver's defaults.

Every record names its solver's parameters; the row of a run is labelled by the parameters that
differ from the solver's current defaults (``(defaults)`` when none do), leaving out those that
set the budget or the machine (``IGNORED``: the same for every run of an ablation) and those in
which every run differs alike (a default changed after the ablation ran), which the note below
the table states.  Columns:
per problem, the errors, the norm drift, the training seconds and iterations.

    python -m harness.ablation results/pinn_ablation [--solver pinn] [--out TABLE.md]

prints the markdown table (and writes it with ``--out``).  The table is built from the records
only, never from live objects.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from . import records

__all__ = ["ablation_table", "ablation_markdown", "main"]

#: Parameters that every run of an ablation shares by construction (budget, threads, logging).
IGNORED = frozenset({"max_seconds", "threads", "log_every", "iterations"})
#: Metrics in the table, in order.
METRICS = ("var_rel_l2", "mean_rel_l2", "norm_drift")


def _defaults(solver: str) -> dict:
    import solvers

    return solvers.solver_class(solver).Params().params()


def _differences(params: dict, defaults: dict) -> dict:
    """The parameters of a run that differ from today's defaults (``IGNORED`` left out)."""
    return {k: params[k] for k in sorted(params)
            if k not in IGNORED and k in defaults and params[k] != defaults[k]}


def _label(diff: dict) -> str:
    text = [f"{k}={v!r}" if isinstance(v, str) else f"{k}={v:g}" if isinstance(v, float)
            else f"{k}={v}" for k, v in diff.items()]
    return ", ".join(text) if text else "(defaults)"


def ablation_table(directory: Path, solver: str = "pinn") -> pd.DataFrame:
    """One row per (option set, problem): metrics, train seconds, iterations, status."""
    defaults = _defaults(solver)
    recs = [rec for _, rec in records.iter_records(Path(directory))
            if rec["solver"]["name"] == solver]
    # problems of one name run with other parameters (bosons' mean-field and fixed coupling)
    # are columns of their own, labelled by the parameters in which they differ
    shown_all = records.differing_labels([rec["problem"] for rec in recs])
    diffs = [_differences(rec["solver"].get("params", {}), defaults) for rec in recs]
    # a difference every run shares (a default changed after the ablation was run) labels no
    # row: it is stated once, below the table
    common = {k: v for k, v in (diffs[0].items() if diffs else ())
              if all(k in d and d[k] == v for d in diffs[1:])}
    rows = []
    for rec, shown, diff in zip(recs, shown_all, diffs):
        params = rec["solver"].get("params", {})
        name = rec["problem"]["name"]
        row = {"option": _label({k: v for k, v in diff.items() if k not in common}),
               "problem": f"{name} ({shown})" if shown else name, "status": rec["status"]}
        metrics = rec.get("metrics") or {}
        for m in METRICS:
            row[m] = metrics.get(m)
        timing = rec.get("timing") or {}
        row["train_s"] = timing.get("train_s")
        row["iterations"] = timing.get("iterations")
        row["max_seconds"] = params.get("max_seconds")
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs["common"] = _label(common) if common else ""
    return table


def ablation_markdown(table: pd.DataFrame) -> str:
    """The table pivoted to one row per option set, one column group per problem."""
    if table.empty:
        return "(no records)\n"
    cols = list(METRICS) + ["train_s", "iterations"]
    wide = table.pivot_table(index="option", columns="problem", values=cols, aggfunc="mean")
    wide = wide.reorder_levels([1, 0], axis=1)
    problems = sorted(table["problem"].unique())
    wide = wide[[(p, c) for p in problems for c in cols if (p, c) in wide.columns]]
    order = ["(defaults)"] + sorted(o for o in wide.index if o != "(defaults)")
    wide = wide.reindex([o for o in order if o in wide.index])
    header = ["option"] + [f"{p} {c}" for p, c in wide.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for option, values in wide.iterrows():
        cells = []
        for (_, c), v in zip(wide.columns, values):
            if pd.isna(v):
                cells.append("")
            elif c == "iterations":
                cells.append(f"{v:.0f}")
            elif c == "train_s":
                cells.append(f"{v:.0f}")
            else:
                cells.append(f"{v:.3g}")
        lines.append("| " + " | ".join([option] + cells) + " |")
    budgets = sorted(set(table["max_seconds"].dropna()))
    note = f"\nBudget (max_seconds): {', '.join(f'{b:g}' for b in budgets)} s; one thread per run.\n"
    if table.attrs.get("common"):
        note += (f"Every run has {table.attrs['common']}, which today's defaults do not; the "
                 f"labels leave it out.\n")
    failed = table[table["status"] != "ok"]
    if len(failed):
        note += f"Runs not ok: {len(failed)} ({', '.join(failed['option'])}).\n"
    return "\n".join(lines) + "\n" + note


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.ablation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--solver", default="pinn")
    parser.add_argument("--out", type=Path, default=None, help="markdown file to write")
    args = parser.parse_args(argv)
    if not args.directory.is_dir():
        parser.error(f"no directory {args.directory}")
    text = ablation_markdown(ablation_table(args.directory, args.solver))
    if args.out is not None:
        args.out.write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
