"""Errors and invariant checks, computed from a solver's observables and a problem's reference.

This is the only place metrics are computed.  Conventions (fixed names):

``mean_rel_l2`` / ``var_rel_l2``
    Relative L2 error over the time grid, per coordinate, averaged over coordinates.
``mean_abs_rms``
    Replaces ``mean_rel_l2`` where the reference mean is ~0 (the relative error is then
    meaningless): the RMS absolute error over times and coordinates.
``mean_floor`` / ``var_floor`` / ``com_var_floor`` / ``w1_floor``
    For sample-based solvers: the same metric for S exact samples (S = the solver's sample
    count), or, where the reference has no exact sampler, its standard-error estimate.  An error
    at its floor is as small as S samples can show.
``u_rel_l2`` / ``v_rel_l2``
    Relative L2(rho) errors of the osmotic and current velocities over space and time, on exact
    samples of rho(., t), where both the solver and the reference have velocities.
``com_var_err``
    Worst relative error over time of Var((1/d) sum_i x_i) against its exact invariant value (or
    the reference's).
``energy_drift``
    Max over time of |E(t) - E(0)| / |E(0)| for conserving problems.
``energy_err``
    |E(0) - E_exact| / |E_exact| where the exact energy is known.
``w1_mean`` / ``w1_max``
    1-Wasserstein distance between the first coordinate's marginal and the reference's, at five
    times (t = 0, T/4, T/2, 3T/4, T), averaged / worst.
``pair_w1_mean`` / ``pair_w1_max`` / ``pair_w1_floor``
    The same for the pair distance x_0 - x_1 (d >= 2), the interaction's fingerprint.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import wasserstein_distance

#: A reference mean smaller than this fraction of the standard deviation counts as zero.
ZERO_MEAN_TOL = 1e-8
#: Bins of the marginal density stored in records.
MARGINAL_BINS = 100
#: Bins of the reference marginal used for W1.
W1_BINS = 2000
#: Fractions of T at which W1 is measured.
W1_FRACTIONS = (0.0, 0.25, 0.5, 0.75, 1.0)
#: Exact samples per time for the velocity errors.
VELOCITY_POINTS = 1000

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


def _time_indices(times: np.ndarray) -> list[int]:
    span = times[-1] - times[0]
    return sorted({int(np.argmin(np.abs(times - (times[0] + f * span)))) for f in W1_FRACTIONS})


def evaluate(problem, reference, obs, seed: int = 0) -> tuple[dict[str, float], dict[str, Any]]:
    """Metrics and the observable series for a record.

    Returns ``(metrics, observables)``; the second holds the solver's series beside the
    reference's, as stored in ``record["observables"]``.  ``seed`` fixes the exact samples used
    for floors and velocity errors, so that a record is reproducible.
    """
    times = np.asarray(obs.times, dtype=float)
    rng = np.random.default_rng(seed)
    metrics: dict[str, float] = {}
    series: dict[str, Any] = {"times": times, "mean": obs.mean, "var": obs.var}
    inv = reference.invariants
    ref_mean = ref_var = None
    mean_metric = None

    if reference.has_observables:
        ref_mean, ref_var = reference.mean(times), reference.var(times)
        series["reference_mean"], series["reference_var"] = ref_mean, ref_var
        mean_metric = "mean_abs_rms" if _is_zero(ref_mean, ref_var) else "mean_rel_l2"
        metrics["var_rel_l2"] = rel_l2(obs.var, ref_var)
    elif inv.zero_mean:
        ref_mean = np.zeros_like(obs.mean)
        series["reference_mean"] = ref_mean
        mean_metric = "mean_abs_rms"
    if mean_metric == "mean_abs_rms":
        metrics["mean_abs_rms"] = abs_rms(obs.mean, ref_mean)
    elif mean_metric == "mean_rel_l2":
        metrics["mean_rel_l2"] = rel_l2(obs.mean, ref_mean)

    ref_com = None
    if obs.com_var is not None:
        series["com_var"] = obs.com_var
        if inv.com_var is not None:
            ref_com = np.full_like(times, inv.com_var)
        elif reference.has_observables:
            ref_com = reference.com_var(times)
        if ref_com is not None:
            series["reference_com_var"] = ref_com
            metrics["com_var_err"] = float(np.max(np.abs(obs.com_var - ref_com) / ref_com))

    if obs.n_samples:
        floors, series["floor_kind"] = _floors(problem, reference, obs, times, ref_mean, ref_var,
                                               ref_com, mean_metric, rng)
        metrics.update(floors)

    if obs.energy is not None:
        series["energy"] = obs.energy
        e0 = float(obs.energy[0])
        if inv.energy_conserved and e0 != 0:
            metrics["energy_drift"] = float(np.max(np.abs(obs.energy - e0)) / abs(e0))
        if inv.energy is not None:
            series["reference_energy"] = inv.energy
            metrics["energy_err"] = abs(e0 - inv.energy) / abs(inv.energy)

    if obs.velocity is not None and reference.has_velocities and reference.has_samples:
        metrics.update(_velocity_errors(problem, reference, obs, times, rng))

    edges = marginal_edges(problem)
    cdf = obs.marginal_cdf(0, edges)
    if cdf is not None:
        marginal = {"coord": 0, "edges": edges, "density": np.diff(cdf, axis=1) / np.diff(edges)}
        if reference.has_observables:
            ref_cdf = reference.marginal_cdf(0, edges, times)
            marginal["reference_density"] = np.diff(ref_cdf, axis=1) / np.diff(edges)
        series["marginal"] = marginal

    if reference.has_observables:
        samples0 = obs.samples[:, :, 0] if obs.samples is not None else None
        w1 = _w1(times, lambda e, ts: reference.marginal_cdf(0, e, ts), marginal_edges(problem, bins=W1_BINS),
                 samples0, lambda e: obs.marginal_cdf(0, e),
                 _exact_draws(reference, obs, rng, lambda x: x[:, 0]))
        if w1:
            series["w1"] = w1
            metrics.update(_w1_metrics("w1", w1))

    if problem.d >= 2:
        pair = _pair_series(problem, reference, obs, times, rng)
        if pair:
            series["pair"], w1 = pair
            if w1:
                series["pair_w1"] = w1
                metrics.update(_w1_metrics("pair_w1", w1))

    for key in ("norm_drift", "max_wall_mass"):
        if key in obs.diagnostics:
            metrics[key] = float(obs.diagnostics[key])
    return metrics, series


def _floors(problem, reference, obs, times, ref_mean, ref_var, ref_com, mean_metric, rng):
    """The errors that S exact samples would have (or their standard-error estimate), and which
    of the two it is."""
    S = int(obs.n_samples)
    out: dict[str, float] = {}
    if reference.has_samples:
        means, vars_, coms = [], [], []
        for t in times:  # one time at a time keeps memory at S x d
            x = reference.sample(S, np.array([t]), rng)[0]
            means.append(x.mean(0))
            vars_.append(x.var(0))
            coms.append(x.mean(1).var())
        means, vars_, coms = np.array(means), np.array(vars_), np.array(coms)
        if mean_metric == "mean_abs_rms":
            out["mean_floor"] = abs_rms(means, ref_mean)
        elif mean_metric == "mean_rel_l2":
            out["mean_floor"] = rel_l2(means, ref_mean)
        if ref_var is not None:
            out["var_floor"] = rel_l2(vars_, ref_var)
        if ref_com is not None:
            out["com_var_floor"] = float(np.max(np.abs(coms - ref_com) / ref_com))
        return out, "exact_samples"

    # Standard errors: the mean's is sqrt(var / S) for any law; the variance's needs the
    # fourth central moment, estimated from the solver's samples (Gaussian value 3 var^2 when
    # none are kept).
    var = ref_var if ref_var is not None else obs.var
    se_mean = np.sqrt(var / S)
    if mean_metric == "mean_abs_rms":
        out["mean_floor"] = float(np.sqrt(np.mean(se_mean**2)))
    elif mean_metric == "mean_rel_l2":
        out["mean_floor"] = float(np.mean(np.linalg.norm(se_mean, axis=0)
                                          / np.linalg.norm(ref_mean, axis=0)))
    kurt = 3.0
    if obs.samples is not None:
        centred = obs.samples - obs.samples.mean(axis=1, keepdims=True)
        m2 = (centred**2).mean(axis=1)
        kurt = float(np.mean((centred**4).mean(axis=1) / m2**2))
    se_var = var * np.sqrt(max(kurt - 1.0, 0.0) / S)
    if ref_var is not None:
        out["var_floor"] = float(np.mean(np.linalg.norm(se_var, axis=0)
                                         / np.linalg.norm(ref_var, axis=0)))
    if ref_com is not None:
        # the mean coordinate is close to Gaussian (a sum of d coordinates)
        out["com_var_floor"] = float(np.sqrt(2.0 / S))
    return out, "standard_error"


def _velocity_errors(problem, reference, obs, times, rng):
    num_u = num_v = den_u = den_v = 0.0
    for t in times:
        x = reference.sample(VELOCITY_POINTS, np.array([t]), rng)[0]
        u_hat, v_hat = obs.velocity(x, float(t))
        u, v = reference.u(x, float(t)), reference.v(x, float(t))
        num_u += float(np.sum((np.asarray(u_hat) - u) ** 2))
        num_v += float(np.sum((np.asarray(v_hat) - v) ** 2))
        den_u += float(np.sum(u**2))
        den_v += float(np.sum(v**2))
    out = {"u_rel_l2": float(np.sqrt(num_u / den_u))}
    if den_v > 0:
        out["v_rel_l2"] = float(np.sqrt(num_v / den_v))
    return out


def _w1_metrics(prefix: str, w1: dict[str, Any]) -> dict[str, float]:
    out = {f"{prefix}_mean": float(np.mean(w1["values"])), f"{prefix}_max": float(np.max(w1["values"]))}
    if "floor" in w1:
        out[f"{prefix}_floor"] = float(np.mean(w1["floor"]))
    return out


def _exact_draws(reference, obs, rng, statistic):
    """``draw(t) -> values``: the statistic of S exact samples at time t, for W1 floors."""
    if not (obs.n_samples and reference.has_samples):
        return None
    S = int(obs.n_samples)
    return lambda t: statistic(reference.sample(S, np.array([t]), rng)[0])


def _w1(times, ref_cdf, edges, obs_values, obs_cdf, draw):
    """W1 at five times between a solver's law (its samples, else its CDF) and the reference's
    binned CDF ``ref_cdf(edges, times)``; with ``draw``, the floor of exact samples too."""
    idx = _time_indices(times)
    centres = 0.5 * (edges[1:] + edges[:-1])
    ref_w = np.diff(ref_cdf(edges, times[idx]), axis=1)
    if obs_values is not None:
        values = [wasserstein_distance(obs_values[i], centres, None, w) for i, w in zip(idx, ref_w)]
    else:
        cdf = obs_cdf(edges)
        if cdf is None:
            return None
        obs_w = np.diff(cdf[idx], axis=1)
        values = [wasserstein_distance(centres, centres, a, b) for a, b in zip(obs_w, ref_w)]
    out = {"times": times[idx], "values": values}
    if draw is not None:
        out["floor"] = [wasserstein_distance(draw(times[i]), centres, None, w)
                        for i, w in zip(idx, ref_w)]
    return out


def pair_edges(problem, bins: int) -> np.ndarray:
    """Bin edges for the pair distance x_0 - x_1: the box's width on either side of 0."""
    hint = problem.grid_hint()
    width = hint.hi[0] - hint.lo[0]
    return np.linspace(-width, width, bins + 1)


def _pair_series(problem, reference, obs, times, rng):
    """The pair-distance density for the record, and its W1 against the reference."""
    edges = pair_edges(problem, 2 * MARGINAL_BINS)
    cdf = obs.pair_distance_cdf(edges)
    if cdf is None:
        return None
    series = {"edges": edges, "density": np.diff(cdf, axis=1) / np.diff(edges)}
    w1 = None
    if reference.has_pair:
        ref_cdf = reference.pair_cdf(edges, times)
        series["reference_density"] = np.diff(ref_cdf, axis=1) / np.diff(edges)
        values = None
        if obs.samples is not None and obs.samples.shape[2] >= 2:
            values = obs.samples[:, :, 0] - obs.samples[:, :, 1]
        w1 = _w1(times, reference.pair_cdf, pair_edges(problem, W1_BINS), values,
                 obs.pair_distance_cdf, _exact_draws(reference, obs, rng, lambda x: x[:, 0] - x[:, 1]))
    return series, w1
