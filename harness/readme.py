"""README sections generated from records, so that the numbers in the README never drift from
the records they come from.

A generated section sits between two markers naming what it shows and where from::

    <!-- begin generated: summary results/default -->
    ... (written by ``python -m harness readme``) ...
    <!-- end generated -->

Kinds (the first word after ``generated:``; the rest are paths relative to the project root):

``summary DIR``      the summary table of the records under DIR (mean ± std over seeds)
``accuracy DIR``     the accuracy-for-cost table of DIR (errors at budgets, seconds to accuracies)
``breaks DIR``       problem × solver: the headline error of each, or why it declined or failed
``scaling FILE...``  seconds per iteration against d from scaling studies, one row per study
``ablation DIR [SOLVER]``  each run's options against SOLVER's (default pinn) current defaults,
                     per problem (:mod:`harness.ablation`)
``job DIR``          how the records of DIR were made: runs, wall time, executor, the machine's
                     load (from DIR's job log, written by ``run --all``)
``runs PATH...``     one row per ok record of the directories or record files named: its
                     solver parameters that differ between records, its errors and seconds
                     (for ablations, seed tables and side-by-side comparisons)
``references DIR``   one row per stored grid reference (``.npz`` entries of DIR, as
                     :mod:`problems.cache` writes them): its grid, the seconds it and its
                     independent check took when computed, and how far the two agree

``python -m harness readme`` rewrites every section in place; ``--check`` only reports the
sections that are out of date (exit 1), which the test suite does, so that a change of records
without the README (or the other way round) fails.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from core.io import atomic_write_text

from . import records
from .matrix import read_job_log
from .env import PROJECT_ROOT
from .report import accuracy_for_cost, accuracy_markdown, runs_table, summary_markdown, \
    summary_table

__all__ = ["render", "sections", "update", "KINDS"]

_SECTION = re.compile(r"(<!-- begin generated: (?P<spec>[^>]*?) -->\n)(?P<body>.*?)"
                      r"(<!-- end generated -->)", re.S)
#: The errors shown per problem in the "breaks" table, first present wins.
HEADLINE = ("var_rel_l2", "com_var_err", "mean_abs_rms", "mean_rel_l2")
#: Shown after the headline where a record has them (a barrier's transmission error).
ALSO_SHOWN = ("crossed_err",)
#: Columns of the "runs" table.
RUN_METRICS = ("mean_rel_l2", "mean_abs_rms", "var_rel_l2", "norm_drift", "energy_drift",
               "com_var_err", "w1_mean", "pair_w1_mean")


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return ""
    return f"{v:.3g}" if isinstance(v, (int, float)) else str(v)


def _summary(root: Path, args: list[str]) -> str:
    return summary_markdown(summary_table(runs_table(root / args[0])))


def _accuracy(root: Path, args: list[str]) -> str:
    return accuracy_markdown(accuracy_for_cost(root / args[0]))


def _breaks(root: Path, args: list[str]) -> str:
    """Problem x solver: the headline error (d and seeds pooled as the mean over ok runs of
    the first dimension), or the reason a solver declined or failed."""
    cells: dict[tuple[str, str], list[str]] = {}
    solvers_seen: list[str] = []
    problems_seen: list[str] = []
    for _, rec in records.iter_records(root / args[0]):
        p, s = rec["problem"]["name"], rec["solver"]["name"]
        d = rec["problem"]["params"].get("d")
        if s not in solvers_seen:
            solvers_seen.append(s)
        if p not in problems_seen:
            problems_seen.append(p)
        if rec["status"] == "ok":
            m = rec["metrics"]
            name = next((k for k in HEADLINE if k in m), None)
            text = f"d={d}: {name} {_fmt(m[name])}" if name else f"d={d}: ok"
            text += "".join(f", {k} {_fmt(m[k])}" for k in ALSO_SHOWN if k in m)
        else:
            reason = (rec.get("reason") or "").split(";")[0]
            text = f"d={d}: {rec['status']} ({reason[:90]})"
        cells.setdefault((p, s), []).append(text)
    solvers_seen.sort()
    rows = ["| problem | " + " | ".join(solvers_seen) + " |",
            "|---|" + "---|" * len(solvers_seen)]
    for p in problems_seen:
        row = [p] + ["<br>".join(sorted(set(cells.get((p, s), [])))) for s in solvers_seen]
        rows.append("| " + " | ".join(row) + " |")
    return "\n".join(rows)


def _ablation(root: Path, args: list[str]) -> str:
    from .ablation import ablation_markdown, ablation_table

    return ablation_markdown(ablation_table(root / args[0], *(args[1:2] or ["pinn"])))


def _job(root: Path, args: list[str]) -> str:
    jobs = read_job_log(root / args[0])
    if not jobs:
        return f"(no job log in `{args[0]}`)"
    lines = []
    for job in jobs:
        minutes, seconds = divmod(round(job["wall_s"]), 60)
        load = job.get("load_start"), job.get("load_end")
        load_text = (f", 1-minute load {load[0][0]:g} before and {load[1][0]:g} after"
                     if all(load) else "")
        lines.append(f"- {job['started'][:10]}: {job['runs']} of {job['planned']} runs in "
                     f"**{minutes} min {seconds:02d} s** ({job['executor']}, "
                     f"{job['cpu_count']} CPUs{load_text}; {job.get('failed', 0)} failed)")
    return "\n".join(lines)


def _scaling(root: Path, args: list[str]) -> str:
    studies = [(a, json.loads((root / a).read_text())) for a in args]
    dims = sorted({r["d"] for _, s in studies for r in s["results"] if r.get("status") == "ok"})
    rows = ["| study | threads | " + " | ".join(f"d = {d}" for d in dims) + " |",
            "|---|---|" + "---|" * len(dims)]
    for path, study in studies:
        by_d = {r["d"]: r for r in study["results"] if r.get("status") == "ok"}
        cells = [_fmt(by_d[d]["s_per_iter"]) if d in by_d else "" for d in dims]
        rows.append(f"| `{Path(path).name}` ({study['solver']['name']}) | "
                    f"{study.get('threads', '')} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _runs(root: Path, args: list[str]) -> str:
    recs = sorted((rec for arg in args for _, rec in records.iter_records(root / arg)
                   if rec["status"] == "ok"),
                  key=lambda r: (r["problem"]["name"], json.dumps(r["solver"]["params"],
                                                                    sort_keys=True),
                                 r.get("seed", 0)))
    if not recs:
        return "(no ok records)"
    # parameters of one solver only (another solver's would be blank for its rows) are left out
    keys = sorted(set.intersection(*(set(r["solver"]["params"]) for r in recs)))
    varying = [k for k in keys if len({json.dumps(r["solver"]["params"].get(k))
                                       for r in recs}) > 1]
    shown = records.differing_labels([r["problem"] for r in recs])
    metrics = [m for m in RUN_METRICS if any(m in r["metrics"] for r in recs)]
    frame = pd.DataFrame([
        dict({"problem": r["problem"]["name"] + (f" ({shown[i]})" if shown[i] else ""),
              "solver": r["solver"]["name"], "seed": r.get("seed")},
             **{k: r["solver"]["params"].get(k) for k in varying},
             **{m: _fmt(r["metrics"].get(m)) for m in metrics},
             train_s=_fmt(r["timing"].get("train_s")),
             **{"iterations done": r["timing"].get("iterations")})
        for i, r in enumerate(recs)])
    return frame.to_markdown(index=False)


#: Agreement columns of the "references" table: (key in the entry's convergence, heading).
REFERENCE_AGREEMENT = (("var_rel_l2", "variance (rel. L2)"),
                       ("com_var_rel_max", "Var(x̄) (rel. max)"),
                       ("marginal_w1_max", "marginal W1 (max)"),
                       ("pair_w1_max", "pair W1 (max)"))


def _references(root: Path, args: list[str]) -> str:
    """The stored grid references under ``args[0]``: problem, d and the parameters that differ
    between entries of the same problem, record times, both methods with their points per
    axis and seconds, and their agreement."""
    from problems import cache

    entries = [cache.read_entry(path)[1] for path in sorted((root / args[0]).glob("*.npz"))]
    if not entries:
        return f"(no stored references in `{args[0]}`)"
    shown = records.differing_labels([{"name": m["description"]["problem"]["name"],
                         "params": {k: v for k, v in m["description"]["problem"]["params"].items()
                                    if k != "d"}} for m in entries])
    rows = []
    for meta, params in zip(entries, shown):
        desc, conv = meta["description"], meta["convergence"]
        name, prm = desc["problem"]["name"], desc["problem"]["params"]
        row = {"problem": name, "d": prm.get("d"), "parameters": params,
               "times": len(desc["times"]),
               "reference": f"{desc['method']} {desc['grid']['n']}^d",
               "seconds": _fmt(meta["info"]["seconds"]),
               "check": f"{conv['method']} {conv['grid']['n']}^d",
               "check seconds": _fmt(conv.get("check_compute_s"))}
        row.update({head: _fmt(conv.get(k)) for k, head in REFERENCE_AGREEMENT})
        rows.append(row)
    frame = pd.DataFrame(rows).sort_values(["problem", "d", "parameters", "times"], kind="stable")
    return frame.to_markdown(index=False)

KINDS: dict[str, Callable[[Path, list[str]], str]] = {
    "summary": _summary, "accuracy": _accuracy, "breaks": _breaks, "scaling": _scaling,
    "runs": _runs, "job": _job, "ablation": _ablation, "references": _references,
}


def render(spec: str, root: Path = PROJECT_ROOT) -> str:
    """The body of the section ``spec`` (``KIND ARG...``), ending with a newline."""
    kind, *args = spec.split()
    if kind not in KINDS:
        raise ValueError(f"unknown generated section kind {kind!r}; known: {', '.join(KINDS)}")
    return KINDS[kind](root, args).rstrip() + "\n"


def sections(text: str) -> list[tuple[str, str]]:
    """The (spec, body) of every generated section in ``text``."""
    return [(m["spec"], m["body"]) for m in _SECTION.finditer(text)]


def update(path: Path, root: Path = PROJECT_ROOT, check: bool = False) -> list[str]:
    """Rewrite the generated sections of ``path`` (unless ``check``); return the specs of the
    sections that were out of date."""
    text = Path(path).read_text()
    stale: list[str] = []

    def fill(m: re.Match) -> str:
        body = render(m["spec"], root)
        if body != m["body"]:
            stale.append(m["spec"])
        return m.group(1) + body + m.group(4)

    new = _SECTION.sub(fill, text)
    if stale and not check:
        atomic_write_text(path, new)
    return stale
