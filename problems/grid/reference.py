"""A cached grid reference for any problem without a closed form, checked by a second method.

:class:`GridReference` solves the problem once on fine settings with one grid engine (the
split-operator by default: spectral in space, fourth order in time, and the faster of the two),
solves it again with the *other* engine (Crank–Nicolson by default) at the same times, and stores
the first solution together with how far the second is from it, in the metrics' own terms
(:func:`convergence_check`).  Two methods with unrelated discretisation errors (Fourier vs finite
differences, splitting vs implicit midpoint, periodic box vs walls) agreeing to a given level is
evidence that both are converged to it; no solver is then graded against its own engine alone.

Entries live in the reference cache (:mod:`problems.cache`) under a hash of the problem's spec,
both methods' settings (their :meth:`identity`), the times and both engines' versions; the
package ships the entries of the profiles' time grids in ``problems/data/references``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from scipy.integrate import trapezoid

from .. import cache
from ..base import Invariants, Reference
from . import ENGINE_VERSIONS, GridSolution, grid_memory_bytes, plan, propagate

__all__ = ["GridReference", "convergence_check", "DEFAULT_SETTINGS", "OTHER_METHOD"]

#: Fine settings of each method when it computes or checks a reference.  Measured against a
#: finer split-operator solution (4 points per wavelength, box 1.3x, dt 4-16x smaller), at 101
#: times: bosons d=2, 3 differ by < 1e-10 in var and com_var from 2.2 points per wavelength on;
#: the double well (d=1) by 1.9e-6 at phase_step 0.4 (dt = T/100) -- its time error, which
#: phase_step 0.05 (two steps per interval) divides by 16.  Crank–Nicolson at 4 points per
#: wavelength, stencil 8, phase_step 0.006 differs by 2.5e-5 (bosons d=2, double well d=1).
DEFAULT_SETTINGS: dict[str, dict[str, Any]] = {
    "split_operator": {"points_per_wavelength": 3.0, "phase_step": 0.05, "order": 4},
    "crank_nicolson": {"points_per_wavelength": 4.0, "phase_step": 0.006, "order": 8,
                       "rtol": 1e-10},
}
#: The method that checks a reference computed by another.
OTHER_METHOD = {"split_operator": "crank_nicolson", "crank_nicolson": "split_operator"}


def convergence_check(ref: GridSolution, other: GridSolution) -> dict[str, float]:
    """How far ``other`` is from ``ref``, in the metrics' own terms.

    Relative L2 over time of the variances (averaged over coordinates), the worst absolute
    difference of the means, the worst relative difference of Var((1/d) sum x_i), and the worst
    W1 distance over time between the first coordinate's marginals and between the pair-distance
    laws (integrals of |F_ref - F_other| on a common fine grid).
    """
    var = float(np.mean(np.linalg.norm(other.var - ref.var, axis=0)
                        / np.linalg.norm(ref.var, axis=0)))
    lo = min(ref.marginal_x[0][0], other.marginal_x[0][0])
    hi = max(ref.marginal_x[0][-1], other.marginal_x[0][-1])
    x = np.linspace(lo, hi, 4001)
    w1 = trapezoid(np.abs(ref.marginal_cdf(0, x) - other.marginal_cdf(0, x)), x, axis=1)
    out = {
        "var_rel_l2": var,
        "mean_abs_max": float(np.max(np.abs(other.mean - ref.mean))),
        "com_var_rel_max": float(np.max(np.abs(other.com_var - ref.com_var) / ref.com_var)),
        "marginal_w1_max": float(np.max(w1)),
    }
    if ref.pair_x.size and other.pair_x.size:
        z = np.linspace(min(ref.pair_x[0], other.pair_x[0]),
                        max(ref.pair_x[-1], other.pair_x[-1]), 4001)
        pw1 = trapezoid(np.abs(ref.pair_cdf(z) - other.pair_cdf(z)), z, axis=1)
        out["pair_w1_max"] = float(np.max(pw1))
    return out


class GridReference(Reference):
    """A converged grid solution of ``problem``, cached on disk, checked by the other method.

    Parameters
    ----------
    problem : Problem
        Any problem with a :meth:`~problems.base.Problem.grid_hint`.
    method : str
        The engine that computes the reference (``"split_operator"`` or ``"crank_nicolson"``).
    settings, check_settings : dict, optional
        Overrides of :data:`DEFAULT_SETTINGS` for the reference's method and for the check's.
    check_method : str, optional
        The checking engine (default: the other one).
    invariants : Invariants, optional
        Exact statements kept beside the solution (default: the problem's).
    progress : bool, optional
        Progress bars while computing (None: only on a terminal).
    workers : int
        FFT threads of the split-operator engine (does not change the solution or the key).

    Attributes
    ----------
    last : dict
        Provenance of the last solution looked up: ``cached``, ``path``, ``key``, ``compute_s``,
        ``convergence`` (the check's differences, its method, grid and seconds).
    """

    kind = "grid"
    has_observables = True

    def __init__(self, problem, *, method: str = "split_operator",
                 settings: dict[str, Any] | None = None, check_method: str | None = None,
                 check_settings: dict[str, Any] | None = None,
                 invariants: Invariants | None = None, progress: bool | None = None,
                 workers: int = 1):
        super().__init__(problem, invariants if invariants is not None else problem.invariants())
        if method not in OTHER_METHOD:
            raise ValueError(f"unknown grid method {method!r}; expected one of "
                             f"{sorted(OTHER_METHOD)}")
        self.method = method
        self.check_method = check_method or OTHER_METHOD[method]
        self.options = dict(DEFAULT_SETTINGS[self.method], **(settings or {}))
        self.check_options = dict(DEFAULT_SETTINGS[self.check_method], **(check_settings or {}))
        self.progress = progress
        self.workers = workers
        self._solutions: dict[tuple, GridSolution] = {}
        self.last: dict[str, Any] = {}

    # --- settings and keys ------------------------------------------------------------------
    def _plan(self, method: str, options: dict[str, Any]):
        options = dict(options)
        if method == "split_operator":
            options.setdefault("workers", self.workers)
        return plan(self.problem, method, **options)

    def settings(self):
        """The reference's grid settings."""
        return self._plan(self.method, self.options)

    def check_settings(self):
        """The checking method's grid settings."""
        return self._plan(self.check_method, self.check_options)

    def description(self, times) -> dict[str, Any]:
        """What determines the entry (its cache key is the hash of this)."""
        return {
            "problem": self.problem.spec(),
            "method": self.method, "grid": self.settings().identity(),
            "check_method": self.check_method, "check_grid": self.check_settings().identity(),
            "times": [float(f"{t:.12g}") for t in np.asarray(times, dtype=float)],
            "engines": {m: ENGINE_VERSIONS[m] for m in sorted({self.method, self.check_method})},
        }

    def key(self, times) -> str:
        return cache.cache_key(self.description(times))

    def memory_bytes(self) -> int:
        """The larger of the two methods' memory estimates (they run one after the other)."""
        static = self.problem.static_potential
        return max(grid_memory_bytes(self.settings(), static),
                   grid_memory_bytes(self.check_settings(), static))

    # --- the solution -----------------------------------------------------------------------
    def solution(self, times) -> GridSolution:
        """The grid solution at ``times``: from memory, the cache, or computed (and stored)."""
        times = np.asarray(times, dtype=float)
        mem_key = tuple(np.round(times, 12))
        if mem_key in self._solutions:
            return self._solutions[mem_key]
        description = self.description(times)
        key = cache.cache_key(description)
        kind = self.problem.name
        hit = cache.load(kind, key)
        if hit is not None:
            arrays, meta, path = hit
            sol = GridSolution(info=meta["info"], **arrays)
            self.last = {"cached": True, "path": str(path), "key": key,
                         "compute_s": meta.get("compute_s"), "convergence": meta["convergence"]}
        else:
            started = time.perf_counter()
            sol = propagate(self.problem, self.settings(), times, progress=self.progress)
            compute_s = time.perf_counter() - started
            other = propagate(self.problem, self.check_settings(), times, progress=self.progress)
            check_s = time.perf_counter() - started - compute_s
            convergence = dict(convergence_check(sol, other), method=self.check_method,
                               grid=self.check_settings().as_dict(), check_compute_s=check_s,
                               check_max_wall_mass=other.info["max_wall_mass"])
            path = cache.store(kind, key, sol.arrays(),
                               {"description": description, "info": sol.info,
                                "compute_s": compute_s, "convergence": convergence})
            self.last = {"cached": False, "path": str(path), "key": key, "compute_s": compute_s,
                         "convergence": convergence}
        self._solutions[mem_key] = sol
        return sol

    # --- the Reference API ------------------------------------------------------------------
    def mean(self, times):
        return self.solution(times).mean

    def var(self, times):
        return self.solution(times).var

    def com_var(self, times):
        return self.solution(times).com_var

    def marginal_cdf(self, coord, x, times):
        return self.solution(times).marginal_cdf(coord, x)

    def pair_cdf(self, z, times):
        return self.solution(times).pair_cdf(z)

    def prob_above(self, coord: int, x: float, times) -> np.ndarray:
        """P(x_coord > x) at each of ``times``, shape (T,), from the marginal CDF."""
        return 1.0 - self.marginal_cdf(coord, np.array([float(x)]), times)[:, 0]

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out.update(method=self.method, grid=self.settings().as_dict(),
                   check_method=self.check_method, check_grid=self.check_settings().as_dict())
        out.update(self.last)
        return out
