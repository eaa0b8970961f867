"""Errors and invariant checks, computed from a solver's observables and a problem's reference.

This is the only place metrics are computed.  Conventions (fixed names):

``mean_rel_l2`` / ``var_rel_l2``
    Relative L2 error over the time grid, per coordinate, averaged over coordinates.
``mean_abs_rms``
    Replaces ``mean_rel_l2`` where the reference mean is ~0 (the relative error is then
    meaningless): the RMS absolute error over times and coordinates.
``com_var_err``
    Worst relative error over time of Var((1/d) sum_i x_i) against its exact invariant value.
``energy_drift``
    Max over time of |E(t) - E(0)| / |E(0)| for conserving problems.
``energy_err``
    |E(0) - E_exact| / |E_exact| where the exact energy is known.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: A reference mean smaller than this fraction of the standard deviation counts as zero.
ZERO_MEAN_TOL = 1e-8
#: Bins of the marginal density stored in records.
MARGINAL_BINS = 100

__all__ = ["rel_l2", "abs_rms", "evaluate", "marginal_edges"]


def rel_l2(est: np.ndarray, ref: np.ndarray) -> float:
    """Relative L2 error over axis 0 (time), per column (coordinate), averaged over columns."""
    est, ref = np.atleast_2d(est.T).T, np.atleast_2d(ref.T).T
    num = np.linalg.norm(est - ref, axis=0)
    den = np.linalg.norm(ref, axis=0)
    return float(np.mean(num / den))


def abs_rms(est: np.ndarray, ref: np.ndarray) -> float:
    """Root-mean-square absolute error over all entries."""
    return float(np.sqrt(np.mean((np.asarray(est) - np.asarray(ref)) ** 2)))


def marginal_edges(problem, coord: int = 0, bins: int = MARGINAL_BINS) -> np.ndarray:
    """Bin edges spanning the problem's box along ``coord`` (the same for every solver)."""
    hint = problem.grid_hint()
    return np.linspace(hint.lo[coord], hint.hi[coord], bins + 1)


def _is_zero(mean: np.ndarray, var: np.ndarray) -> bool:
    scale = float(np.sqrt(np.mean(var))) if var is not None else 1.0
    return float(np.max(np.abs(mean))) <= ZERO_MEAN_TOL * max(scale, 1e-300)


def evaluate(problem, reference, obs) -> tuple[dict[str, float], dict[str, Any]]:
    """Metrics and the observable series for a record.

    Returns ``(metrics, observables)``; the second holds the solver's series beside the
    reference's, as stored in ``record["observables"]``.
    """
    times = np.asarray(obs.times, dtype=float)
    metrics: dict[str, float] = {}
    series: dict[str, Any] = {"times": times, "mean": obs.mean, "var": obs.var}
    inv = reference.invariants

    if reference.has_observables:
        ref_mean, ref_var = reference.mean(times), reference.var(times)
        series["reference_mean"], series["reference_var"] = ref_mean, ref_var
        if _is_zero(ref_mean, ref_var):
            metrics["mean_abs_rms"] = abs_rms(obs.mean, ref_mean)
        else:
            metrics["mean_rel_l2"] = rel_l2(obs.mean, ref_mean)
        metrics["var_rel_l2"] = rel_l2(obs.var, ref_var)
    elif inv.zero_mean:
        ref_mean = np.zeros_like(obs.mean)
        series["reference_mean"] = ref_mean
        metrics["mean_abs_rms"] = abs_rms(obs.mean, ref_mean)

    if obs.com_var is not None:
        series["com_var"] = obs.com_var
        if inv.com_var is not None:
            series["reference_com_var"] = np.full_like(times, inv.com_var)
            metrics["com_var_err"] = float(np.max(np.abs(obs.com_var - inv.com_var)) / inv.com_var)
        elif reference.has_observables:
            ref_com = reference.com_var(times)
            series["reference_com_var"] = ref_com
            metrics["com_var_err"] = float(np.max(np.abs(obs.com_var - ref_com) / ref_com))

    if obs.energy is not None:
        series["energy"] = obs.energy
        e0 = float(obs.energy[0])
        if inv.energy_conserved and e0 != 0:
            metrics["energy_drift"] = float(np.max(np.abs(obs.energy - e0)) / abs(e0))
        if inv.energy is not None:
            series["reference_energy"] = inv.energy
            metrics["energy_err"] = abs(e0 - inv.energy) / abs(inv.energy)

    edges = marginal_edges(problem)
    cdf = obs.marginal_cdf(0, edges)
    if cdf is not None:
        marginal = {"coord": 0, "edges": edges, "density": np.diff(cdf, axis=1) / np.diff(edges)}
        if reference.has_observables:
            ref_cdf = reference.marginal_cdf(0, edges, times)
            marginal["reference_density"] = np.diff(ref_cdf, axis=1) / np.diff(edges)
        series["marginal"] = marginal

    for key in ("norm_drift", "max_wall_mass"):
        if key in obs.diagnostics:
            metrics[key] = float(obs.diagnostics[key])
    return metrics, series
