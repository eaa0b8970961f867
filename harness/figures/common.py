"""What every figure shares: records' fields as arrays, fixed colours per solver, bands."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D

__all__ = ["Skip", "Style", "arr", "dim_of", "first_by_solver", "ref_handle", "series_frame",
           "bands", "dim_axis", "by_d_problems", "floor_of"]


class Skip(Exception):
    """A figure that cannot be drawn from the records at hand (the message says why)."""


def floor_of(metric: str) -> str:
    """The name of a metric's statistical floor in a record."""
    return f"{metric}_floor"


def arr(value: Any) -> np.ndarray:
    return np.array(value, dtype=float)


def dim_of(rec: dict[str, Any]) -> int:
    return int(rec["problem"]["params"].get("d", 1))


def first_by_solver(recs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One record per solver: the lowest seed's."""
    out: dict[str, dict[str, Any]] = {}
    for rec in sorted(recs, key=lambda r: (r["solver"]["name"], r.get("seed", 0))):
        out.setdefault(rec["solver"]["name"], rec)
    return out


class Style:
    """Fixed colours per solver, the reference in black."""

    def __init__(self, solver_names: list[str]):
        names = sorted(set(solver_names))
        colours = sns.color_palette("colorblind", max(len(names), 1))
        self.palette = dict(zip(names, colours))

    def colour(self, solver: str):
        return self.palette.get(solver, "grey")

    def legend(self, ax, solvers, extra=(), **kw):
        handles = [Line2D([], [], color=self.colour(s), lw=2, label=s) for s in sorted(solvers)]
        handles.extend(extra)
        if handles:
            ax.legend(handles=handles, fontsize=7, **kw)


def ref_handle(label: str = "reference", style: str = "--", colour: str = "black") -> Line2D:
    return Line2D([], [], color=colour, ls=style, lw=1.5, label=label)


def series_frame(recs: list[dict[str, Any]], fn: Callable[[dict], np.ndarray]) -> pd.DataFrame:
    rows = []
    for rec in recs:
        obs = rec["observables"]
        t = arr(obs["times"])
        try:
            y = fn(obs)
        except (KeyError, TypeError, IndexError):
            continue
        rows.append(pd.DataFrame({"t": t, "value": y, "solver": rec["solver"]["name"],
                                  "seed": rec.get("seed", 0)}))
    if not rows:
        return pd.DataFrame(columns=["t", "value", "solver", "seed"])
    return pd.concat(rows, ignore_index=True)


def bands(ax, frame: pd.DataFrame, style: Style, x: str = "t", y: str = "value", **kw) -> None:
    if frame.empty:
        return
    sns.lineplot(data=frame, x=x, y=y, hue="solver", palette=style.palette, errorbar="sd",
                 legend=False, ax=ax, **kw)


def dim_axis(ax, dims) -> None:
    """A log2 axis of dimensions with the values present as plain-integer ticks."""
    ax.set_xscale("log", base=2)
    ticks = sorted({int(d) for d in dims})
    if ticks:
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(d) for d in ticks])
        ax.minorticks_off()
    ax.set_xlabel("d")


def by_d_problems(recs) -> list[str]:
    dims = defaultdict(set)
    for r in recs:
        dims[r["problem"]["name"]].add(dim_of(r))
    return sorted(p for p, ds in dims.items() if len(ds) > 1)
