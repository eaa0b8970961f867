"""The figure a reader looks at first: error against training seconds, every solver on the
same axes, each sample-based solver's statistical floor drawn as a band."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .. import records
from .common import Skip, Style, dim_of

__all__ = ["anytime_figure", "anytime_groups", "variants", "ANYTIME_METRICS"]

#: The metrics drawn, in order, when the records have them.
ANYTIME_METRICS = ("var_rel_l2", "mean_rel_l2", "mean_abs_rms", "com_var_err", "pair_w1_mean")


def anytime_groups(recs) -> list[tuple[str, int]]:
    """(problem, d) pairs with anytime points."""
    return sorted({(r["problem"]["name"], dim_of(r)) for r in recs if r.get("anytime")})


def _points(rec, metric):
    pts = [p for p in rec.get("anytime", []) if metric in p.get("metrics", {})]
    t = np.array([max(p["train_s"], 1e-3) for p in pts])
    y = np.array([p["metrics"][metric] for p in pts], dtype=float)
    return t, y


#: Line styles of a solver's variants (records of one solver whose parameters differ).
VARIANT_STYLES = ("-", "-.", ":", (0, (5, 1)))


def variants(recs) -> dict[str, str]:
    """run_id -> a label naming the solver parameters in which a record differs from the other
    records of its solver (seed aside), or "" when all of a solver's records share them: the
    same figure can then show, say, DSM's curve before and after a change of defaults."""
    keys = records.differing_keys([r["solver"] for r in recs])

    def shown(value):
        return f"{value:g}" if isinstance(value, float) else f"{value}"

    return {r["run_id"]: ", ".join(f"{k}={shown(r['solver']['params'].get(k))}"
                                   for k in keys[r["solver"]["name"]])
            for r in recs}


def anytime_figure(recs, style: Style, problem: str, d: int):
    recs = [r for r in recs if r["problem"]["name"] == problem and dim_of(r) == d
            and r.get("anytime")]
    metrics = [m for m in ANYTIME_METRICS if any(_points(r, m)[0].size for r in recs)][:2]
    if not metrics:
        raise Skip(f"{problem} d={d}: no anytime points")
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 4.0), squeeze=False,
                             constrained_layout=True)
    solvers = sorted({r["solver"]["name"] for r in recs})
    labels = variants(recs)
    kinds = sorted({(r["solver"]["name"], labels[r["run_id"]]) for r in recs})
    line_of = {k: VARIANT_STYLES[sum(1 for j in kinds[:i] if j[0] == k[0]) % len(VARIANT_STYLES)]
               for i, k in enumerate(kinds)}
    for ax, metric in zip(axes[0], metrics):
        banded = False
        for rec in sorted(recs, key=lambda r: (r["solver"]["name"], r.get("seed", 0))):
            name = rec["solver"]["name"]
            colour = style.colour(name)
            t, y = _points(rec, metric)
            if not t.size:
                continue
            ladder = rec.get("anytime_info", {}).get("kind") == "ladder"
            ax.plot(t, y, color=colour, lw=1.4, marker="s" if ladder else "o", ms=3,
                    ls="--" if ladder else line_of[(name, labels[rec["run_id"]])], alpha=0.85)
            final = rec.get("metrics", {}).get(metric)
            if final is not None and not ladder:
                ax.plot([t[-1]], [final], marker="*", ms=10, color=colour, ls="none")
            floors = rec.get("anytime_info", {}).get("floors", {})
            lo, hi = floors.get(f"{metric}_floor_lo"), floors.get(f"{metric}_floor_hi")
            if lo is not None and hi is not None:
                ax.axhspan(lo, hi, color=colour, alpha=0.08, lw=0)
                ax.axhline(floors[f"{metric}_floor"], color=colour, lw=0.8, ls=":")
                banded = True
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("training seconds (anytime evaluation excluded; grid: seconds per solve)")
        ax.set_ylabel(metric)
        extra = [Line2D([], [], color="grey", marker="*", ls="none", ms=9,
                        label="final evaluation (all samples)"),
                 Line2D([], [], color="grey", marker="s", ls="--", ms=3,
                        label="grid: resolution ladder")]
        if banded:
            extra.append(Patch(color="grey", alpha=0.2,
                               label="statistical floor of the anytime samples (99.9 % band)"))
        extra.extend(Line2D([], [], color=style.colour(name), ls=line_of[(name, label)], lw=1.4,
                            label=f"{name}: {label}") for name, label in kinds if label)
        style.legend(ax, solvers, extra, loc="best")
    threads = sorted({r.get("execution", {}).get("threads") for r in recs} - {None})
    fig.suptitle(f"{problem}, d = {d}: error against training seconds"
                 + (f" ({', '.join(map(str, threads))} thread(s) per run)" if threads else ""),
                 fontsize=10)
    return fig
