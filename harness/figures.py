"""Figures from records only: ``python -m harness figures DIR [--out DIR] [--scaling FILE ...]``.

Every figure is drawn for whichever solvers appear in the records (colours are fixed per solver
name across figures); a figure whose data is absent from the directory is skipped with a note.
Bands are ± one standard deviation over seeds (none with one seed).

=============================  ===========================================================
file                           what
=============================  ===========================================================
``density_<problem>.png``      x–t heatmaps of the first coordinate's marginal density, the
                               reference beside each solver (harmonic_1d, harmonic_1d_moving,
                               singular_1d); each time row is scaled by the reference's peak
``mean_var_<problem>_d<d>.png``  mean and variance of x₁ against t, reference dashed
``cost_vs_d_<problem>.png``    seconds per iteration and training seconds against d, log–log,
                               every solver (Crank–Nicolson included) on the same axes, plus
                               ``--scaling`` studies
``error_vs_d_<problem>.png``   errors against d, statistical floors dashed
``bosons_d2_d3.png``           bosons at d = 2 and 3 against the grid reference
``bosons_com_invariant.png``   Var((1/d)Σxᵢ) against its exact value ħ/(2dmω) over t at the
                               largest d, and its worst relative error against d
``singular_1d_variance.png``   variance against t with the exact Schrödinger spreading
                               σ² + (ħt/2mσ)² and the Brownian-motion heat kernel ħt/m
=============================  ===========================================================
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from core.io import atomic_write  # noqa: E402

from . import records  # noqa: E402

__all__ = ["make_figures", "DENSITY_PROBLEMS", "HEAT_KERNEL_LABEL"]

DENSITY_PROBLEMS = ("harmonic_1d", "harmonic_1d_moving", "singular_1d")
HEAT_KERNEL_LABEL = "Brownian-motion heat kernel (not a Schrödinger solution)"
#: Error metrics drawn against d, with the floor drawn beside each.
ERROR_METRICS = {"mean_rel_l2": "mean_floor", "mean_abs_rms": "mean_floor",
                 "var_rel_l2": "var_floor", "w1_mean": "w1_floor", "com_var_err": "com_var_floor"}
DPI = 130


class Skip(Exception):
    """A figure that cannot be drawn from the records at hand (the message says why)."""


# --- records ---------------------------------------------------------------------------------
def _arr(value: Any) -> np.ndarray:
    return np.array(value, dtype=float)


def _d(rec: dict[str, Any]) -> int:
    return int(rec["problem"]["params"].get("d", 1))


def _first_by_solver(recs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One record per solver: the lowest seed's."""
    out: dict[str, dict[str, Any]] = {}
    for rec in sorted(recs, key=lambda r: (r["solver"]["name"], r.get("seed", 0))):
        out.setdefault(rec["solver"]["name"], rec)
    return out


class _Style:
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


def _ref_handle(label: str = "reference", style: str = "--", colour: str = "black") -> Line2D:
    return Line2D([], [], color=colour, ls=style, lw=1.5, label=label)


def _series_frame(recs: list[dict[str, Any]], fn: Callable[[dict], np.ndarray]) -> pd.DataFrame:
    rows = []
    for rec in recs:
        obs = rec["observables"]
        t = _arr(obs["times"])
        try:
            y = fn(obs)
        except (KeyError, TypeError, IndexError):
            continue
        rows.append(pd.DataFrame({"t": t, "value": y, "solver": rec["solver"]["name"],
                                  "seed": rec.get("seed", 0)}))
    if not rows:
        return pd.DataFrame(columns=["t", "value", "solver", "seed"])
    return pd.concat(rows, ignore_index=True)


def _bands(ax, frame: pd.DataFrame, style: _Style, x: str = "t", y: str = "value", **kw) -> None:
    if frame.empty:
        return
    sns.lineplot(data=frame, x=x, y=y, hue="solver", palette=style.palette, errorbar="sd",
                 legend=False, ax=ax, **kw)


# --- figures ---------------------------------------------------------------------------------
def _density(recs, style, problem):
    recs = [r for r in recs if r["problem"]["name"] == problem
            and "marginal" in r.get("observables", {})]
    if not recs:
        raise Skip(f"no ok record of {problem} with a marginal density")
    by_solver = _first_by_solver(recs)
    ref_rec = next((r for r in recs if "reference_density" in r["observables"]["marginal"]), None)
    panels = []
    if ref_rec is not None:
        panels.append(("reference (exact)", _arr(ref_rec["observables"]["marginal"]["reference_density"]),
                       ref_rec))
    for solver, rec in by_solver.items():
        panels.append((f"{solver} (seed {rec.get('seed', 0)})",
                       _arr(rec["observables"]["marginal"]["density"]), rec))
    base = ref_rec or next(iter(by_solver.values()))
    times = _arr(base["observables"]["times"])
    edges = _arr(base["observables"]["marginal"]["edges"])
    scale = (_arr(ref_rec["observables"]["marginal"]["reference_density"]) if ref_rec is not None
             else panels[0][1]).max(axis=1, keepdims=True)
    scale[~(scale > 0)] = np.nan
    t_edges = np.concatenate([[times[0]], 0.5 * (times[1:] + times[:-1]), [times[-1]]])
    fig, axes = plt.subplots(1, len(panels), figsize=(3.1 * len(panels) + 0.8, 3.3),
                             sharey=True, squeeze=False, constrained_layout=True)
    mesh = None
    for ax, (title, dens, rec) in zip(axes[0], panels):
        if dens.shape != (len(times), len(edges) - 1):
            ax.set_title(f"{title}\n(other grid, not shown)", fontsize=8)
            continue
        mesh = ax.pcolormesh(edges, t_edges, dens / scale, vmin=0.0, vmax=1.2, cmap="magma",
                             shading="flat", rasterized=True)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("x")
    axes[0][0].set_ylabel("t")
    if mesh is not None:
        fig.colorbar(mesh, ax=axes[0].tolist(), label="ρ(x, t) / max ρ_ref(·, t)", extend="max")
    fig.suptitle(f"{problem}: marginal density of x₁", fontsize=10)
    return fig


def _mean_var(recs, style, problem, d):
    recs = [r for r in recs if r["problem"]["name"] == problem and _d(r) == d]
    if not recs:
        raise Skip(f"no ok record of {problem} at d={d}")
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
    solvers = sorted({r["solver"]["name"] for r in recs})
    for ax, key, label in ((axes[0], "mean", "⟨x₁⟩"), (axes[1], "var", "Var(x₁)")):
        _bands(ax, _series_frame(recs, lambda o, k=key: _arr(o[k])[:, 0]), style)
        extra = []
        ref_key = f"reference_{key}"
        ref_rec = next((r for r in recs if ref_key in r["observables"]), None)
        if ref_rec is not None:
            o = ref_rec["observables"]
            ax.plot(_arr(o["times"]), _arr(o[ref_key])[:, 0], "k--", lw=1.2)
            extra.append(_ref_handle())
        ax.set_xlabel("t")
        ax.set_ylabel(label)
        style.legend(ax, solvers, extra)
    fig.suptitle(f"{problem}, d = {d}" + (" (bands: ± 1 sd over seeds)" if any(
        r.get("seed", 0) for r in recs) else ""), fontsize=10)
    return fig


def _dim_axis(ax, dims) -> None:
    """A log2 axis of dimensions with the values present as plain-integer ticks."""
    ax.set_xscale("log", base=2)
    ticks = sorted({int(d) for d in dims})
    if ticks:
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(d) for d in ticks])
        ax.minorticks_off()
    ax.set_xlabel("d")


def _by_d_problems(recs) -> list[str]:
    dims = defaultdict(set)
    for r in recs:
        dims[r["problem"]["name"]].add(_d(r))
    return sorted(p for p, ds in dims.items() if len(ds) > 1)


def _cost_vs_d(recs, style, problem, scaling):
    rows = [{"solver": r["solver"]["name"], "d": _d(r), "seed": r.get("seed", 0),
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
        _dim_axis(ax, list(frame["d"]) + [r["d"] for s in studies for r in s["results"]
                                           if r.get("status") == "ok"])
        ax.set_yscale("log")
        ax.set_ylabel(label)
    style.legend(axes[0], solvers, extra)
    fig.suptitle(f"{problem}: cost against dimension (an iteration is a time step for grid "
                 f"solvers, a training step for learned ones)", fontsize=9)
    return fig


def _error_vs_d(recs, style, problem):
    recs = [r for r in recs if r["problem"]["name"] == problem]
    if len({_d(r) for r in recs}) < 2:
        raise Skip(f"{problem}: records at fewer than two dimensions")
    shown = [m for m in ERROR_METRICS
             if any(np.isfinite(_arr([r["metrics"].get(m)])).all() for r in recs)]
    if not shown:
        raise Skip(f"{problem}: no error metrics in the records")
    fig, axes = plt.subplots(1, len(shown), figsize=(3.4 * len(shown), 3.4), squeeze=False,
                             constrained_layout=True)
    solvers = sorted({r["solver"]["name"] for r in recs})
    any_floor = False
    for ax, metric in zip(axes[0], shown):
        floor = ERROR_METRICS[metric]
        rows = [{"solver": r["solver"]["name"], "d": _d(r), "seed": r.get("seed", 0),
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
        _dim_axis(ax, frame["d"])
        ax.set_yscale("log")
        ax.set_ylabel(metric)
    extra = [Line2D([], [], color="grey", ls="--", label="statistical floor")] if any_floor else []
    style.legend(axes[0][0], solvers, extra)
    fig.suptitle(f"{problem}: error against dimension", fontsize=10)
    return fig


def _bosons_small_d(recs, style):
    recs = [r for r in recs if r["problem"]["name"] == "bosons" and _d(r) in (2, 3)
            and "reference_var" in r["observables"]]
    dims = sorted({_d(r) for r in recs})
    if not dims:
        raise Skip("no ok bosons record at d = 2 or 3 with a grid reference")
    fig, axes = plt.subplots(len(dims), 2, figsize=(9, 3.2 * len(dims)), squeeze=False,
                             constrained_layout=True)
    for row, d in zip(axes, dims):
        sub = [r for r in recs if _d(r) == d]
        solvers = sorted({r["solver"]["name"] for r in sub})
        _bands(row[0], _series_frame(sub, lambda o: _arr(o["var"])[:, 0]), style)
        o = sub[0]["observables"]
        row[0].plot(_arr(o["times"]), _arr(o["reference_var"])[:, 0], "k--", lw=1.2)
        row[0].set_xlabel("t")
        row[0].set_ylabel("Var(x₁)")
        row[0].set_title(f"d = {d}: variance of x₁", fontsize=9)
        style.legend(row[0], solvers, [_ref_handle("grid reference")])
        # the final-time marginal of x1
        drawn = False
        for solver, rec in _first_by_solver(sub).items():
            m = rec["observables"].get("marginal")
            if not m:
                continue
            edges = _arr(m["edges"])
            x = 0.5 * (edges[1:] + edges[:-1])
            row[1].plot(x, _arr(m["density"])[-1], color=style.colour(solver), lw=1.5)
            if "reference_density" in m and not drawn:
                row[1].plot(x, _arr(m["reference_density"])[-1], "k--", lw=1.2)
                drawn = True
        t_final = _arr(o["times"])[-1]
        row[1].set_xlabel("x₁")
        row[1].set_ylabel("density")
        row[1].set_title(f"d = {d}: marginal of x₁ at t = {t_final:g}", fontsize=9)
    fig.suptitle("bosons against the cached grid reference "
                 "(split-operator, checked by Crank–Nicolson)", fontsize=10)
    return fig


def _com_invariant(recs, style):
    recs = [r for r in recs if r["problem"]["name"] == "bosons"
            and "com_var" in r["observables"] and "reference_com_var" in r["observables"]]
    if not recs:
        raise Skip("no ok bosons record with the centre-of-mass variance")
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.6), constrained_layout=True)
    largest = {}
    for r in recs:
        s = r["solver"]["name"]
        largest[s] = max(largest.get(s, 0), _d(r))
    top = [r for r in recs if _d(r) == largest[r["solver"]["name"]]]
    frame = _series_frame(top, lambda o: _arr(o["com_var"]) / _arr(o["reference_com_var"]))
    _bands(axes[0], frame, style)
    axes[0].axhline(1.0, color="black", ls="--", lw=1.2)
    axes[0].set_xlabel("t")
    axes[0].set_ylabel("Var((1/d)Σxᵢ) · 2dmω/ħ")
    labels = ", ".join(f"{s}: d = {d}" for s, d in sorted(largest.items()))
    axes[0].set_title(f"at each solver's largest d ({labels})", fontsize=8)
    style.legend(axes[0], largest, [_ref_handle("exact (= 1)")])
    rows = [{"solver": r["solver"]["name"], "d": _d(r), "seed": r.get("seed", 0),
             "value": r["metrics"].get("com_var_err"), "floor": r["metrics"].get("com_var_floor")}
            for r in recs]
    frame = pd.DataFrame(rows).astype({"value": float, "floor": float})
    sub = frame.dropna(subset=["value"])
    if not sub.empty:
        sns.lineplot(data=sub, x="d", y="value", hue="solver", palette=style.palette,
                     errorbar="sd", marker="o", legend=False, ax=axes[1])
    fl = frame.dropna(subset=["floor"])
    if not fl.empty:
        sns.lineplot(data=fl, x="d", y="floor", hue="solver", palette=style.palette,
                     errorbar=None, ls="--", legend=False, ax=axes[1])
    _dim_axis(axes[1], frame["d"])
    axes[1].set_yscale("log")
    axes[1].set_ylabel("com_var_err (worst over t)")
    fig.suptitle("bosons: the centre-of-mass invariant Var((1/d)Σxᵢ) = ħ/(2dmω), exact for "
                 "every d", fontsize=10)
    return fig


def _singular(recs, style):
    recs = [r for r in recs if r["problem"]["name"] == "singular_1d"]
    if not recs:
        raise Skip("no ok singular_1d record")
    p = recs[0]["problem"]["params"]
    hbar, mass, s2 = p["hbar"], p["mass"], p["sigma2"]
    t_final = max(_arr(r["observables"]["times"])[-1] for r in recs)
    t = np.linspace(0.0, t_final, 400)
    fig, ax = plt.subplots(figsize=(7.5, 4.2), constrained_layout=True)
    _bands(ax, _series_frame(recs, lambda o: _arr(o["var"])[:, 0]), style)
    exact = s2 + (hbar * t / (2 * mass * np.sqrt(s2))) ** 2
    ax.plot(t, exact, color="black", lw=1.4, ls="--")
    ax.plot(t[1:], hbar * t[1:] / mass, color="0.45", lw=1.4, ls=":")
    ax.set_yscale("log")
    ax.set_xlabel("t")
    ax.set_ylabel("Var(x)")
    solvers = sorted({r["solver"]["name"] for r in recs})
    style.legend(ax, solvers, [
        _ref_handle("exact Schrödinger spreading σ² + (ħt/2mσ)²"),
        _ref_handle(f"ħt/m, the original paper's reference: {HEAT_KERNEL_LABEL}", ":", "0.45")],
        loc="lower right")
    ax.set_title(f"singular_1d (σ² = {s2:g}, ħ = {hbar:g}, m = {mass:g}): the narrow-Gaussian "
                 f"limit of a δ initial state", fontsize=9)
    return fig


# --- driver ----------------------------------------------------------------------------------
def load_scaling(paths) -> list[dict[str, Any]]:
    """Scaling studies written by ``python -m harness scaling``; ValueError if one is not."""
    out = []
    for path in paths:
        try:
            study = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"--scaling {path}: cannot read a JSON study: {exc}") from None
        if not isinstance(study, dict) or not {"problem", "solver", "results"} <= set(study):
            raise ValueError(f"--scaling {path}: not a study from 'python -m harness scaling'")
        out.append(study)
    return out


def make_figures(directory: Path, out_dir: Path, scaling: list[dict[str, Any]] = (),
                 note: Callable[[str], None] = print) -> list[Path]:
    """Draw every figure the records in ``directory`` allow into ``out_dir``; return the paths.

    Figures that cannot be drawn are reported through ``note`` and skipped.
    """
    ok = [rec for _, rec in records.iter_records(directory)
          if rec.get("status") == "ok" and "observables" in rec]
    if not ok and not scaling:
        raise Skip(f"no ok run records in {directory}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sns.set_theme(style="whitegrid", context="paper")
    style = _Style([r["solver"]["name"] for r in ok] + [s["solver"]["name"] for s in scaling])
    jobs: list[tuple[str, Callable[[], Any]]] = []
    for problem in DENSITY_PROBLEMS:
        jobs.append((f"density_{problem}.png", lambda p=problem: _density(ok, style, p)))
    for problem, d in sorted({(r["problem"]["name"], _d(r)) for r in ok}):
        jobs.append((f"mean_var_{problem}_d{d}.png",
                     lambda p=problem, d=d: _mean_var(ok, style, p, d)))
    multi_d = _by_d_problems(ok)
    for problem in sorted(set(multi_d) | {s["problem"]["name"] for s in scaling}):
        jobs.append((f"cost_vs_d_{problem}.png", lambda p=problem: _cost_vs_d(ok, style, p, scaling)))
    for problem in multi_d:
        jobs.append((f"error_vs_d_{problem}.png", lambda p=problem: _error_vs_d(ok, style, p)))
    if not multi_d:
        note("skip error_vs_d_*.png / cost_vs_d_*.png: no problem has records at two or more "
             "dimensions")
    jobs.append(("bosons_d2_d3.png", lambda: _bosons_small_d(ok, style)))
    jobs.append(("bosons_com_invariant.png", lambda: _com_invariant(ok, style)))
    jobs.append(("singular_1d_variance.png", lambda: _singular(ok, style)))

    written = []
    for name, draw in jobs:
        try:
            fig = draw()
        except Skip as why:
            note(f"skip {name}: {why}")
            continue
        path = out_dir / name
        try:
            atomic_write(path, lambda fh: fig.savefig(fh, dpi=DPI, format="png"), binary=True)
        finally:
            plt.close(fig)
        written.append(path)
    return written
