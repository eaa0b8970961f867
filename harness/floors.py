"""Statistical floors: the errors that exact samples of the same size and structure would have.

A sample-based solver's error cannot go below what its sample size allows.  The floor of a
metric is found by computing *the same metric, with the same code* (:func:`harness.metrics.
point_metrics`) on observables built from exact samples of the reference, shaped like the
solver's own:

* DSM's samples are whole paths of the stochastic-mechanics diffusion (``sample_kind="paths"``),
  so errors at different times are correlated: where the reference has exact paths
  (:meth:`problems.base.Reference.sample_paths`) the floor is computed from exact paths of the
  same diffusion (the same nu) and the same number of them;
* Markov-chain samples (``"chains"``) count as their effective sample size at each time;
* otherwise independent exact draws of the same size at every time.

This is repeated R times (:func:`repetitions`); the floor is the median of the R values and its
band ``[lo, hi]`` the central 99.9 % of a log-normal fitted to them (errors are positive and
skewed), widened to the repetitions' own range where that is wider, so that an exact solver lies
outside the band with a probability of about 0.1 % per metric and "below the floor" means what
it says.  A maximum over time (``com_var_err``, ``w1_max``) gets the floor of
the same maximum.  Where the reference has no exact sampler, the floors are standard errors of
the estimates (``kind="standard_error"``), without a band; the centre-of-mass invariant of
``bosons`` still has exact paths of its own (the centre of mass is an Ornstein–Uhlenbeck
process), so ``com_var_err`` keeps an exact floor at every d.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from solvers.base import Observables

from .metrics import ReferenceSeries, point_metrics

__all__ = ["floor_metrics", "exact_observables", "repetitions", "band", "Z_BAND"]

#: The band is median x exp(+-Z_BAND sigma) of the log-normal fit: 99.9 % central.
Z_BAND = 3.29
#: Repetitions are chosen so that about this many normal draws are made in all ...
DRAW_BUDGET = 2e8
#: ... within these bounds.
MIN_REPS, MAX_REPS = 12, 32


def repetitions(n_samples: int, d: int, n_times: int) -> int:
    """How many exact repetitions a floor is estimated from, for S samples in d dimensions."""
    cost = max(n_samples * d * n_times, 1)
    return int(np.clip(DRAW_BUDGET / cost, MIN_REPS, MAX_REPS))


def band(values: np.ndarray) -> tuple[float, float, float]:
    """(median, lo, hi) of a floor from its repetitions (see the module docstring)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan"), float("nan")
    if np.all(values > 0):
        logs = np.log(values)
        mu, sigma = float(np.mean(logs)), float(np.std(logs, ddof=1)) if values.size > 1 else 0.0
        return (float(np.exp(mu)), min(float(np.exp(mu - Z_BAND * sigma)), float(values.min())),
                max(float(np.exp(mu + Z_BAND * sigma)), float(values.max())))
    q = np.quantile(values, [0.5, 0.0, 1.0])
    return float(q[0]), float(q[1]), float(q[2])


def _sample_kind(reference, obs) -> str:
    if obs.sample_kind == "paths" and reference.has_paths:
        return "exact_paths"
    if obs.sample_kind == "chains" and obs.effective_samples is not None:
        return "exact_draws_at_effective_size"
    return "exact_draws"


def _draws(reference, obs, times, rng, kind) -> tuple[Iterator[np.ndarray], int]:
    """Exact positions (n, d) at each time, and n."""
    if kind == "exact_paths":
        n = int(obs.n_samples)
        return reference.sample_paths(n, times, rng, nu=obs.diffusion_nu), n
    if kind == "exact_draws_at_effective_size":
        # a rectangular sample: the median effective size over time (documented)
        n = max(2, int(round(float(np.median(obs.effective_samples)))))
    else:
        n = int(obs.n_samples)
    return (reference.sample(n, np.array([t]), rng)[0] for t in times), n


def exact_observables(rs: ReferenceSeries, obs, rng: np.random.Generator,
                      kind: str | None = None) -> Observables:
    """Observables computed from exact samples shaped like ``obs``'s (see the module
    docstring): means and variances with the same bias correction, the same kept coordinates,
    and the energy from the exact velocities where the solver reports an energy."""
    reference, problem, times = rs.reference, rs.problem, rs.times
    kind = kind or _sample_kind(reference, obs)
    draws, n = _draws(reference, obs, times, rng, kind)
    k = obs.samples.shape[2] if obs.samples is not None else min(2, problem.d)
    T, d = len(times), problem.d
    mean, var, com = np.empty((T, d)), np.empty((T, d)), np.empty(T)
    kept = np.empty((T, n, k))
    energy = np.empty(T) if obs.energy is not None and reference.has_velocities else None
    for j, (t, x) in enumerate(zip(times, draws)):
        mean[j] = x.mean(0)
        var[j] = x.var(0, ddof=1)
        com[j] = x.mean(1).var(ddof=1)
        kept[j] = x[:, :k]
        if energy is not None:
            u, v = reference.u(x, float(t)), reference.v(x, float(t))
            e = 0.5 * problem.mass * ((u**2).sum(1) + (v**2).sum(1)) + problem.potential(x, t)
            energy[j] = float(np.mean(e))
    return Observables(times=times, mean=mean, var=var, com_var=com, energy=energy,
                       samples=kept, n_samples=n, sample_kind="independent")


def floor_metrics(rs: ReferenceSeries, obs, metrics: dict[str, float], seed: int = 0
                  ) -> tuple[dict[str, float], str]:
    """``<metric>_floor`` (and ``_lo``, ``_hi``) for every error in ``metrics`` that exact
    samples give, and the kind of floor."""
    rng = np.random.default_rng([seed, 7])
    reference = rs.reference
    out: dict[str, float] = {}
    if reference.has_samples:
        kind = _sample_kind(reference, obs)
        reps = repetitions(int(obs.n_samples), rs.problem.d, len(rs.times))
        values: dict[str, list[float]] = {}
        for _ in range(reps):
            exact = point_metrics(rs, exact_observables(rs, obs, rng, kind))
            for name, value in exact.items():
                values.setdefault(name, []).append(value)
        for name in metrics:
            if name in values:
                _store(out, name, band(values[name]))
        out["floor_repetitions"] = reps
        return out, kind
    _standard_errors(rs, obs, metrics, out)
    if "com_var_err" in metrics and getattr(reference, "has_com_paths", False):
        _store(out, "com_var_err", _com_floor(rs, obs, rng))
    return out, "standard_error"


def _store(out: dict[str, float], name: str, stats: tuple[float, float, float]) -> None:
    out[f"{name}_floor"], out[f"{name}_floor_lo"], out[f"{name}_floor_hi"] = stats


def _com_floor(rs: ReferenceSeries, obs, rng) -> tuple[float, float, float]:
    """The floor of ``com_var_err`` from exact paths of the centre of mass."""
    n = int(obs.n_samples)
    reps = repetitions(n, 1, len(rs.times))
    values = []
    paths = obs.sample_kind == "paths"
    for _ in range(reps):
        if paths:
            draws = rs.reference.sample_com_paths(n, rs.times, rng, nu=obs.diffusion_nu)
        else:  # independent draws at every time: the stationary law each time
            draws = (np.sqrt(rs.com[j]) * rng.standard_normal(n) for j in range(len(rs.times)))
        com = np.array([x.var(ddof=1) for x in draws])
        values.append(float(np.max(np.abs(com - rs.com) / rs.com)))
    return band(values)


def _standard_errors(rs: ReferenceSeries, obs, metrics, out) -> None:
    """Standard-error floors where no exact sampler exists: the mean's is sqrt(var / S) for any
    law; the variance's needs the fourth central moment, estimated from the solver's samples
    (Gaussian value 3 var^2 when none are kept).  No band: these are one number each."""
    S = (float(np.median(obs.effective_samples)) if obs.effective_samples is not None
         else float(obs.n_samples))
    var = rs.var if rs.var is not None else obs.var
    se_mean = np.sqrt(var / S)
    if "mean_abs_rms" in metrics:
        out["mean_abs_rms_floor"] = float(np.sqrt(np.mean(se_mean**2)))
    if "mean_rel_l2" in metrics:
        out["mean_rel_l2_floor"] = float(np.mean(np.linalg.norm(se_mean, axis=0)
                                                 / np.linalg.norm(rs.mean, axis=0)))
    kurt = 3.0
    if obs.samples is not None:
        centred = obs.samples - obs.samples.mean(axis=1, keepdims=True)
        m2 = (centred**2).mean(axis=1)
        kurt = float(np.mean((centred**4).mean(axis=1) / m2**2))
    if "var_rel_l2" in metrics:
        se_var = var * np.sqrt(max(kurt - 1.0, 0.0) / S)
        out["var_rel_l2_floor"] = float(np.mean(np.linalg.norm(se_var, axis=0)
                                                / np.linalg.norm(rs.var, axis=0)))
    if "com_var_err" in metrics:
        # the mean coordinate is close to Gaussian (a sum of d coordinates)
        out["com_var_err_floor"] = float(np.sqrt(2.0 / S))
