"""Errors and invariant checks, computed from a solver's observables and a problem's reference.

This is the only place metrics are computed (their statistical floors are in
:mod:`harness.floors`, which computes them with these very functions).  Conventions (fixed
names):

``mean_rel_l2`` / ``var_rel_l2``
    Relative L2 error over the time grid, per coordinate, averaged over coordinates.
``mean_abs_rms``
    Replaces ``mean_rel_l2`` where the reference mean is ~0 (the relative error is then
    meaningless): the RMS absolute error over times and coordinates.
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
``w1_mid``
    The same at t = T/2 alone (for ``superposition``, t = pi/2: half way between the density's
    nodes at t = 0 and pi).
``pair_w1_mean`` / ``pair_w1_max``
    The same for the pair distance x_0 - x_1 (d >= 2), the interaction's fingerprint.
``crossed`` / ``crossed_err``
    For problems with a ``crossing`` (coord, x): P(x_coord > x) at T, and its absolute error
    against the reference's (a barrier's transmission; ``reference_crossed`` in the series).
``<metric>_floor``, ``<metric>_floor_lo``, ``<metric>_floor_hi``
    For sample-based solvers: the median of the same metric for exact samples of the same size
    and structure, and the band it falls in (see :mod:`harness.floors`).
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

__all__ = ["rel_l2", "abs_rms", "evaluate", "marginal_edges", "pair_edges", "ReferenceSeries",
           "point_metrics"]


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


def pair_edges(problem, bins: int) -> np.ndarray:
    """Bin edges for the pair distance x_0 - x_1: the box's width on either side of 0."""
    hint = problem.grid_hint()
    width = hint.hi[0] - hint.lo[0]
    return np.linspace(-width, width, bins + 1)


def _time_indices(times: np.ndarray) -> list[int]:
    span = times[-1] - times[0]
    return sorted({int(np.argmin(np.abs(times - (times[0] + f * span)))) for f in W1_FRACTIONS})


class ReferenceSeries:
    """What the reference says on one time grid, computed once and shared by every evaluation of
    a run (the final one, the anytime points, the floors' repetitions)."""

    def __init__(self, problem, reference, times: np.ndarray):
        self.problem, self.reference = problem, reference
        self.times = times = np.asarray(times, dtype=float)
        inv = reference.invariants
        self.mean = self.var = self.com = None
        self.mean_metric = None
        if reference.has_observables:
            self.mean, self.var = reference.mean(times), reference.var(times)
            scale = float(np.sqrt(np.mean(self.var)))
            zero = float(np.max(np.abs(self.mean))) <= ZERO_MEAN_TOL * max(scale, 1e-300)
            self.mean_metric = "mean_abs_rms" if zero else "mean_rel_l2"
        elif inv.zero_mean:
            self.mean = np.zeros((len(times), problem.d))
            self.mean_metric = "mean_abs_rms"
        if inv.com_var is not None:
            self.com = np.full_like(times, inv.com_var)
        elif reference.has_observables:
            self.com = reference.com_var(times)
        self.edges = marginal_edges(problem)
        self.w1_idx = _time_indices(times)
        self.density = self.pair_density = self.w1_weights = self.pair_weights = None
        w1_edges = marginal_edges(problem, bins=W1_BINS)
        self.w1_centres = 0.5 * (w1_edges[1:] + w1_edges[:-1])
        self.pair_edges = pair_edges(problem, 2 * MARGINAL_BINS)
        pw_edges = pair_edges(problem, W1_BINS)
        self.pair_centres = 0.5 * (pw_edges[1:] + pw_edges[:-1])
        if reference.has_observables:
            cdf = reference.marginal_cdf(0, self.edges, times)
            self.density = np.diff(cdf, axis=1) / np.diff(self.edges)
            self.w1_weights = np.diff(reference.marginal_cdf(0, w1_edges, times[self.w1_idx]),
                                      axis=1)
        self.crossed = None
        if problem.crossing is not None and reference.has_observables:
            coord, x = problem.crossing
            self.crossed = float(1.0 - reference.marginal_cdf(coord, np.array([x]),
                                                              times[-1:])[0, 0])
        if reference.has_pair:
            cdf = reference.pair_cdf(self.pair_edges, times)
            self.pair_density = np.diff(cdf, axis=1) / np.diff(self.pair_edges)
            self.pair_weights = np.diff(reference.pair_cdf(pw_edges, times[self.w1_idx]), axis=1)


def _w1_values(rs: ReferenceSeries, centres, ref_w, obs_values, obs_cdf) -> list[float] | None:
    """W1 at the reference's W1 times between a solver's law (its samples, else its CDF on the
    bins) and the reference's binned law."""
    idx = rs.w1_idx
    if obs_values is not None:
        return [wasserstein_distance(obs_values[i], centres, None, w) for i, w in zip(idx, ref_w)]
    h = centres[1] - centres[0]
    edges = np.concatenate([centres - h / 2, [centres[-1] + h / 2]])
    cdf = obs_cdf(edges)
    if cdf is None:
        return None
    obs_w = np.clip(np.diff(cdf[idx], axis=1), 0.0, None)
    return [wasserstein_distance(centres, centres, a, b) for a, b in zip(obs_w, ref_w)]


def point_metrics(rs: ReferenceSeries, obs, rng: np.random.Generator | None = None,
                  series: dict[str, Any] | None = None) -> dict[str, float]:
    """The error metrics of ``obs`` against the reference series (no floors).

    ``rng`` draws the exact points of the velocity errors (no velocity errors without it);
    ``series``, when given, is filled with the observable series stored in a record.
    """
    problem, reference, times = rs.problem, rs.reference, rs.times
    inv = reference.invariants
    out: dict[str, float] = {}
    keep = series is not None
    series = series if keep else {}
    series.update(times=times, mean=obs.mean, var=obs.var)
    if rs.var is not None:
        series["reference_var"] = rs.var
        out["var_rel_l2"] = rel_l2(obs.var, rs.var)
    if rs.mean is not None:
        series["reference_mean"] = rs.mean
        metric = abs_rms if rs.mean_metric == "mean_abs_rms" else rel_l2
        out[rs.mean_metric] = metric(obs.mean, rs.mean)
    if obs.com_var is not None:
        series["com_var"] = obs.com_var
        if rs.com is not None:
            series["reference_com_var"] = rs.com
            out["com_var_err"] = float(np.max(np.abs(obs.com_var - rs.com) / rs.com))
    if obs.energy is not None:
        series["energy"] = obs.energy
        e0 = float(obs.energy[0])
        if inv.energy_conserved and e0 != 0:
            out["energy_drift"] = float(np.max(np.abs(obs.energy - e0)) / abs(e0))
        if inv.energy is not None:
            series["reference_energy"] = inv.energy
            out["energy_err"] = abs(e0 - inv.energy) / abs(inv.energy)
    if rng is not None and obs.velocity is not None and reference.has_velocities \
            and reference.has_samples:
        out.update(_velocity_errors(reference, obs, times, rng))
    if keep:
        cdf = obs.marginal_cdf(0, rs.edges)
        if cdf is not None:
            marginal = {"coord": 0, "edges": rs.edges,
                        "density": np.diff(cdf, axis=1) / np.diff(rs.edges)}
            if rs.density is not None:
                marginal["reference_density"] = rs.density
            series["marginal"] = marginal
    if rs.w1_weights is not None:
        values = obs.samples[:, :, 0] if obs.samples is not None else None
        w1 = _w1_values(rs, rs.w1_centres, rs.w1_weights, values, lambda e: obs.marginal_cdf(0, e))
        if w1:
            series["w1"] = {"times": times[rs.w1_idx], "values": w1}
            out.update(w1_mean=float(np.mean(w1)), w1_max=float(np.max(w1)))
            mid = int(np.argmin(np.abs(times[rs.w1_idx] - 0.5 * (times[0] + times[-1]))))
            out["w1_mid"] = float(w1[mid])
    if problem.d >= 2:
        _pair_metrics(rs, obs, out, series, keep)
    if problem.crossing is not None:
        coord, x = problem.crossing
        cdf = obs.marginal_cdf(coord, np.array([x]))
        if cdf is not None:
            out["crossed"] = float(1.0 - cdf[-1, 0])
            if rs.crossed is not None:
                series["reference_crossed"] = rs.crossed
                out["crossed_err"] = abs(out["crossed"] - rs.crossed)
    for key in ("norm_drift", "max_wall_mass"):
        if key in obs.diagnostics:
            out[key] = float(obs.diagnostics[key])
    return out


def _pair_metrics(rs: ReferenceSeries, obs, out, series, keep: bool) -> None:
    if keep:
        cdf = obs.pair_distance_cdf(rs.pair_edges)
        if cdf is not None:
            pair = {"edges": rs.pair_edges,
                    "density": np.diff(cdf, axis=1) / np.diff(rs.pair_edges)}
            if rs.pair_density is not None:
                pair["reference_density"] = rs.pair_density
            series["pair"] = pair
    if rs.pair_weights is None:
        return
    values = None
    if obs.samples is not None and obs.samples.shape[2] >= 2:
        values = obs.samples[:, :, 0] - obs.samples[:, :, 1]
    w1 = _w1_values(rs, rs.pair_centres, rs.pair_weights, values, obs.pair_distance_cdf)
    if w1:
        series["pair_w1"] = {"times": rs.times[rs.w1_idx], "values": w1}
        out.update(pair_w1_mean=float(np.mean(w1)), pair_w1_max=float(np.max(w1)))


def _velocity_errors(reference, obs, times, rng):
    num_u = num_v = den_u = den_v = 0.0
    for t in times:
        x = reference.sample(VELOCITY_POINTS, np.array([t]), rng)[0]
        u_hat, v_hat = obs.velocity(x, float(t))
        u, v = reference.u(x, float(t)), reference.v(x, float(t))
        ok = np.all(np.isfinite(u), axis=-1) & np.all(np.isfinite(v), axis=-1)  # nodes
        num_u += float(np.sum((np.asarray(u_hat)[ok] - u[ok]) ** 2))
        num_v += float(np.sum((np.asarray(v_hat)[ok] - v[ok]) ** 2))
        den_u += float(np.sum(u[ok] ** 2))
        den_v += float(np.sum(v[ok] ** 2))
    out = {"u_rel_l2": float(np.sqrt(num_u / den_u))}
    if den_v > 0:
        out["v_rel_l2"] = float(np.sqrt(num_v / den_v))
    return out


def evaluate(problem, reference, obs, seed: int = 0, floors: bool = True,
             series_of: ReferenceSeries | None = None) -> tuple[dict[str, float], dict[str, Any]]:
    """Metrics (with their floors unless ``floors=False``) and the observable series for a
    record.

    Returns ``(metrics, observables)``; the second holds the solver's series beside the
    reference's, as stored in ``record["observables"]``.  ``seed`` fixes the exact samples used
    for floors and velocity errors, so that a record is reproducible.  ``series_of`` reuses a
    :class:`ReferenceSeries` of the same times.
    """
    times = np.asarray(obs.times, dtype=float)
    rs = series_of if series_of is not None else ReferenceSeries(problem, reference, times)
    series: dict[str, Any] = {}
    out = point_metrics(rs, obs, np.random.default_rng(seed), series)
    if floors and obs.n_samples:
        from .floors import floor_metrics

        found, series["floor_kind"] = floor_metrics(rs, obs, out, seed=seed)
        out.update(found)
    return out, series
