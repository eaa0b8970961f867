"""Figures against the dimension d: cost and error."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D

from .common import (Skip, arr, dim_axis, dim_of, floor_of)

#: Error metrics drawn against d, each with its floor.
ERROR_METRICS = ("mean_rel_l2", "mean_abs_rms", "var_rel_l2", "w1_mean", "com_var_err")


def cost_vs_d(recs, style, problem, scaling):
    rows = [{"solver": r["solver"]["name"], "d": dim_of(r), "seed": r.get("seed", 0),
             "s_per_iter": r["timing"].get("s_per_iter"), "train_s": r["timing"].get("train_s")}
            for r in recs if r["problem"]["name"] == problem]
    frame = pd.DataFrame(rows, columns=["solver", "d", "seed", "s_per_iter", "train_s"])
    studies = [s for s in scaling if s["problem"]["name"] == problem]
    if frame["d"].nunique() < 2 and not studies:
        raise Skip(f"{problem}: records at fewer than two dimensions")
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), constrained_layout=True)
    solvers = set(frame["solver"])
    extra = []
    for ax, key, label in ((axes[0], "s_per_iter", "seconds per iteration"),
                           (axes[1], "train_s", "training seconds (whole run)")):
        sub = frame.dropna(subset=[key])
        if not sub.empty:
            sns.lineplot(data=sub, x="d", y=key, hue="solver", palette=style.palette,
                         errorbar="sd", marker="o", legend=False, ax=ax)
        if key == "s_per_iter":
            for study in studies:
                ok = [r for r in study["results"] if r.get("status") == "ok" and "s_per_iter" in r]
                if not ok:
                    continue
                name = study["solver"]["name"]
                solvers.add(name)
                ax.plot([r["d"] for r in ok], [r["s_per_iter"] for r in ok], ls=":", marker="x",
                        color=style.colour(name))
            if studies:
                extra = [Line2D([], [], color="grey", ls=":", marker="x",
                                label="scaling study (median after warm-up)")]
        dim_axis(ax, list(frame["d"]) + [r["d"] for s in studies for r in s["results"]
                                           if r.get("status") == "ok"])
        ax.set_yscale("log")
        ax.set_ylabel(label)
    style.legend(axes[0], solvers, extra)
    fig.suptitle(f"{problem}: cost against dimension (an iteration is a time step for grid "
                 f"solvers, a training step for learned ones)", fontsize=9)
    return fig


def error_vs_d(recs, style, problem):
    recs = [r for r in recs if r["problem"]["name"] == problem]
    if len({dim_of(r) for r in recs}) < 2:
        raise Skip(f"{problem}: records at fewer than two dimensions")
    shown = [m for m in ERROR_METRICS
             if any(np.isfinite(arr([r["metrics"].get(m)])).all() for r in recs)]
    if not shown:
        raise Skip(f"{problem}: no error metrics in the records")
    fig, axes = plt.subplots(1, len(shown), figsize=(3.4 * len(shown), 3.4), squeeze=False,
                             constrained_layout=True)
    solvers = sorted({r["solver"]["name"] for r in recs})
    any_floor = False
    for ax, metric in zip(axes[0], shown):
        floor = floor_of(metric)
        rows = [{"solver": r["solver"]["name"], "d": dim_of(r), "seed": r.get("seed", 0),
                 "value": r["metrics"].get(metric), "floor": r["metrics"].get(floor)}
                for r in recs]
        frame = pd.DataFrame(rows).astype({"value": float, "floor": float})
        sub = frame.dropna(subset=["value"])
        sns.lineplot(data=sub, x="d", y="value", hue="solver", palette=style.palette,
                     errorbar="sd", marker="o", legend=False, ax=ax)
        fl = frame.dropna(subset=["floor"])
        if not fl.empty:
            any_floor = True
            sns.lineplot(data=fl, x="d", y="floor", hue="solver", palette=style.palette,
                         errorbar=None, ls="--", legend=False, ax=ax)
        dim_axis(ax, frame["d"])
        ax.set_yscale("log")
        ax.set_ylabel(metric)
    extra = [Line2D([], [], color="grey", ls="--", label="statistical floor")] if any_floor else []
    style.legend(axes[0][0], solvers, extra)
    fig.suptitle(f"{problem}: error against dimension", fontsize=10)
    return fig
