"""Figures of the solutions themselves: densities, moments, the bosons, the δ-limit."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .common import (Skip, arr, bands, dim_axis, dim_of, first_by_solver, floor_of,
                     ref_handle, series_frame)

HEAT_KERNEL_LABEL = "Brownian-motion heat kernel (not a Schrödinger solution)"


def density(recs, style, problem):
    recs = [r for r in recs if r["problem"]["name"] == problem
            and "marginal" in r.get("observables", {})]
    if not recs:
        raise Skip(f"no ok record of {problem} with a marginal density")
    by_solver = first_by_solver(recs)
    ref_rec = next((r for r in recs if "reference_density" in r["observables"]["marginal"]), None)
    panels = []
    if ref_rec is not None:
        panels.append(("reference (exact)", arr(ref_rec["observables"]["marginal"]["reference_density"]),
                       ref_rec))
    for solver, rec in by_solver.items():
        panels.append((f"{solver} (seed {rec.get('seed', 0)})",
                       arr(rec["observables"]["marginal"]["density"]), rec))
    base = ref_rec or next(iter(by_solver.values()))
    times = arr(base["observables"]["times"])
    edges = arr(base["observables"]["marginal"]["edges"])
    scale = (arr(ref_rec["observables"]["marginal"]["reference_density"]) if ref_rec is not None
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


def mean_var(recs, style, problem, d):
    recs = [r for r in recs if r["problem"]["name"] == problem and dim_of(r) == d]
    if not recs:
        raise Skip(f"no ok record of {problem} at d={d}")
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
    solvers = sorted({r["solver"]["name"] for r in recs})
    for ax, key, label in ((axes[0], "mean", "⟨x₁⟩"), (axes[1], "var", "Var(x₁)")):
        bands(ax, series_frame(recs, lambda o, k=key: arr(o[k])[:, 0]), style)
        extra = []
        ref_key = f"reference_{key}"
        ref_rec = next((r for r in recs if ref_key in r["observables"]), None)
        if ref_rec is not None:
            o = ref_rec["observables"]
            ax.plot(arr(o["times"]), arr(o[ref_key])[:, 0], "k--", lw=1.2)
            extra.append(ref_handle())
        ax.set_xlabel("t")
        ax.set_ylabel(label)
        style.legend(ax, solvers, extra)
    fig.suptitle(f"{problem}, d = {d}" + (" (bands: ± 1 sd over seeds)" if any(
        r.get("seed", 0) for r in recs) else ""), fontsize=10)
    return fig


def bosons_small_d(recs, style):
    recs = [r for r in recs if r["problem"]["name"] == "bosons" and dim_of(r) in (2, 3)
            and "reference_var" in r["observables"]]
    dims = sorted({dim_of(r) for r in recs})
    if not dims:
        raise Skip("no ok bosons record at d = 2 or 3 with a grid reference")
    fig, axes = plt.subplots(len(dims), 2, figsize=(9, 3.2 * len(dims)), squeeze=False,
                             constrained_layout=True)
    for row, d in zip(axes, dims):
        sub = [r for r in recs if dim_of(r) == d]
        solvers = sorted({r["solver"]["name"] for r in sub})
        bands(row[0], series_frame(sub, lambda o: arr(o["var"])[:, 0]), style)
        o = sub[0]["observables"]
        row[0].plot(arr(o["times"]), arr(o["reference_var"])[:, 0], "k--", lw=1.2)
        row[0].set_xlabel("t")
        row[0].set_ylabel("Var(x₁)")
        row[0].set_title(f"d = {d}: variance of x₁", fontsize=9)
        style.legend(row[0], solvers, [ref_handle("grid reference")])
        # the final-time marginal of x1
        drawn = False
        for solver, rec in first_by_solver(sub).items():
            m = rec["observables"].get("marginal")
            if not m:
                continue
            edges = arr(m["edges"])
            x = 0.5 * (edges[1:] + edges[:-1])
            row[1].plot(x, arr(m["density"])[-1], color=style.colour(solver), lw=1.5)
            if "reference_density" in m and not drawn:
                row[1].plot(x, arr(m["reference_density"])[-1], "k--", lw=1.2)
                drawn = True
        t_final = arr(o["times"])[-1]
        row[1].set_xlabel("x₁")
        row[1].set_ylabel("density")
        row[1].set_title(f"d = {d}: marginal of x₁ at t = {t_final:g}", fontsize=9)
    fig.suptitle("bosons against the cached grid reference (split-operator, checked by "
                 "Crank–Nicolson)", fontsize=10)
    return fig


def com_invariant(recs, style):
    recs = [r for r in recs if r["problem"]["name"] == "bosons"
            and "com_var" in r["observables"] and "reference_com_var" in r["observables"]]
    if not recs:
        raise Skip("no ok bosons record with the centre-of-mass variance")
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.6), constrained_layout=True)
    largest = {}
    for r in recs:
        s = r["solver"]["name"]
        largest[s] = max(largest.get(s, 0), dim_of(r))
    top = [r for r in recs if dim_of(r) == largest[r["solver"]["name"]]]
    frame = series_frame(top, lambda o: arr(o["com_var"]) / arr(o["reference_com_var"]))
    bands(axes[0], frame, style)
    axes[0].axhline(1.0, color="black", ls="--", lw=1.2)
    axes[0].set_xlabel("t")
    axes[0].set_ylabel("Var((1/d)Σxᵢ) · 2dmω/ħ")
    labels = ", ".join(f"{s}: d = {d}" for s, d in sorted(largest.items()))
    axes[0].set_title(f"at each solver's largest d ({labels})", fontsize=8)
    style.legend(axes[0], largest, [ref_handle("exact (= 1)")])
    rows = [{"solver": r["solver"]["name"], "d": dim_of(r), "seed": r.get("seed", 0),
             "value": r["metrics"].get("com_var_err"), "floor": r["metrics"].get(floor_of("com_var_err"))}
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
    dim_axis(axes[1], frame["d"])
    axes[1].set_yscale("log")
    axes[1].set_ylabel("com_var_err (worst over t)")
    fig.suptitle("bosons: the centre-of-mass invariant Var((1/d)Σxᵢ) = ħ/(2dmω), exact for "
                 "every d", fontsize=10)
    return fig


def singular(recs, style):
    recs = [r for r in recs if r["problem"]["name"] == "singular_1d"]
    if not recs:
        raise Skip("no ok singular_1d record")
    p = recs[0]["problem"]["params"]
    hbar, mass, s2 = p["hbar"], p["mass"], p["sigma2"]
    t_final = max(arr(r["observables"]["times"])[-1] for r in recs)
    t = np.linspace(0.0, t_final, 400)
    fig, ax = plt.subplots(figsize=(7.5, 4.2), constrained_layout=True)
    bands(ax, series_frame(recs, lambda o: arr(o["var"])[:, 0]), style)
    exact = s2 + (hbar * t / (2 * mass * np.sqrt(s2))) ** 2
    ax.plot(t, exact, color="black", lw=1.4, ls="--")
    ax.plot(t[1:], hbar * t[1:] / mass, color="0.45", lw=1.4, ls=":")
    ax.set_yscale("log")
    ax.set_xlabel("t")
    ax.set_ylabel("Var(x)")
    solvers = sorted({r["solver"]["name"] for r in recs})
    style.legend(ax, solvers, [
        ref_handle("exact Schrödinger spreading σ² + (ħt/2mσ)²"),
        ref_handle(f"ħt/m, the original paper's reference: {HEAT_KERNEL_LABEL}", ":", "0.45")],
        loc="lower right")
    ax.set_title(f"singular_1d (σ² = {s2:g}, ħ = {hbar:g}, m = {mass:g}): the narrow-Gaussian "
                 f"limit of a δ initial state", fontsize=9)
    return fig
