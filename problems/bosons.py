"""Interacting one-dimensional bosons in a harmonic trap.

V(x) = sum_i 1/2 m omega^2 x_i^2 + g / (2 sqrt(2 pi s2)) sum_{i<j} exp(-(x_i - x_j)^2 / (2 s2)),
psi0 = the ground state of the trap without interaction: |psi0|^2 = N(0, hbar/(2 m omega) I).

No closed form exists; for d <= 3 the reference is a converged Crank–Nicolson solution cached on
disk.  For every d the interaction depends only on differences, so the centre of mass
(1/d) sum_i x_i is a free oscillator of mass d m started in its ground state: every <x_i> = 0 and
Var((1/d) sum_i x_i) = hbar / (2 d m omega) for all t.  The energy is conserved, and at t = 0 it is
exactly d hbar omega / 2 + C(d, 2) g / (2 sqrt(2 pi s2)) / sqrt(1 + 2 sigma0^2 / s2).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.integrate import trapezoid

from . import cache
from .base import GridHint, Invariants, Problem, Reference, dim_param, standard_normal, xp_of
from core import param
from .propagator import ENGINE_VERSION, GridSolution, grid_memory_bytes, plan_grid, propagate

__all__ = ["Bosons", "BosonReference"]

#: Grid references are computed up to this dimension; beyond it only invariants hold.
GRID_MAX_D = 3
#: Settings of the reference grid (finer than the crank_nicolson solver's defaults) ...
REFERENCE_GRID = {"points_per_wavelength": 4.0, "phase_step": 0.006, "order": 8, "rtol": 1e-10}
#: ... and the coarser grid of its convergence check: 3/4 of the points per wavelength and twice
#: the step.  The differences between the two are stored with the reference.
CHECK_GRID = {"points_per_wavelength": 3.0, "phase_step": 0.012, "order": 8, "rtol": 1e-10}
#: Tail allowance, in ground-state standard deviations, beyond the classical turning point.
TAIL_SDS = 6.0
#: k_max adds the ground state's spectral width out to this many of its standard deviations.
ENVELOPE_SDS = 6.0


@dataclass(frozen=True)
class Bosons(Problem):
    """d identical bosons on a line, Gaussian pair repulsion, trap ground state at t = 0.

    Parameters
    ----------
    d : int
        Number of particles (each one-dimensional), so the configuration space is R^d.
    hbar, mass, omega : float
        Planck's constant, particle mass, trap frequency (all > 0).
    g : float
        Interaction strength (>= 0: repulsive or none).
    s2 : float
        Variance of the Gaussian interaction kernel (its range squared).
    scaling : str
        ``fixed`` (every pair has strength g) or ``mean_field`` (g / (d - 1): the total force on
        a particle, and the interaction energy per particle, stay O(1) as d grows; with fixed g
        they grow like d and d^2, and the cloud blows apart ever faster).
    t_final : float
        Final time T.
    """

    name = "bosons"
    description = "d interacting 1-D bosons in a trap (grid reference for d<=3, invariants for all d)"

    d: int = dim_param(2)
    hbar: float = param(0.1, "reduced Planck constant", lo=0.0, lo_open=True)
    mass: float = param(1.0, "particle mass", lo=0.0, lo_open=True)
    omega: float = param(1.0, "trap frequency", lo=0.0, lo_open=True)
    g: float = param(1.0, "interaction strength (repulsive)", lo=0.0)
    s2: float = param(0.1, "variance of the Gaussian interaction kernel", lo=0.0, lo_open=True)
    scaling: str = param("fixed", "fixed: every pair has strength g; mean_field: g / (d - 1), so "
                                  "that the force on one particle stays O(1) as d grows",
                         choices=("fixed", "mean_field"))
    t_final: float = param(1.0, "final time T", lo=0.0, lo_open=True)

    @property
    def sigma0_sq(self) -> float:
        """Variance per coordinate of the initial state, hbar / (2 m omega)."""
        return self.hbar / (2 * self.mass * self.omega)

    @property
    def coupling(self) -> float:
        """The prefactor g / (2 sqrt(2 pi s2)) of each pair's Gaussian (g / (d - 1) in place of g
        with ``scaling="mean_field"``)."""
        g = self.g / max(self.d - 1, 1) if self.scaling == "mean_field" else self.g
        return g / (2 * math.sqrt(2 * math.pi * self.s2))

    def interaction_energy0(self) -> float:
        """<sum of pair terms> at t = 0: each x_i - x_j ~ N(0, 2 sigma0^2)."""
        pairs = self.d * (self.d - 1) / 2
        return pairs * self.coupling / math.sqrt(1 + 2 * self.sigma0_sq / self.s2)

    def exact_energy(self) -> float:
        return self.d * self.hbar * self.omega / 2 + self.interaction_energy0()

    def energy_spread(self) -> float:
        """The exact standard deviation of H in psi0, conserved in time.

        psi0 is an eigenstate of the trap, so Var(H) = Var(V_int) under rho0.  With K_ij the pair
        Gaussians, q = sigma0^2 / s2 and x ~ N(0, sigma0^2 I),
        E[K_ij K_kl] = det(I_2 + q G)^(-1/2) where G is the Gram matrix of e_i - e_j and
        e_k - e_l: (1 + 4q)^(-1/2) for the same pair, ((1 + 3q)(1 + q))^(-1/2) for pairs sharing
        one particle, (1 + 2q)^(-1) for disjoint pairs; and E[K_ij] = (1 + 2q)^(-1/2).
        """
        d = self.d
        pairs = d * (d - 1) / 2
        q = self.sigma0_sq / self.s2
        second = pairs * ((1 + 4 * q) ** -0.5
                          + 2 * (d - 2) * ((1 + 3 * q) * (1 + q)) ** -0.5
                          + (d - 2) * (d - 3) / 2 / (1 + 2 * q))
        var = self.coupling**2 * (second - pairs**2 / (1 + 2 * q))
        return math.sqrt(max(var, 0.0))

    # --- the equation --------------------------------------------------------------------
    def _pair_differences(self, x):
        return x[..., :, None] - x[..., None, :]

    def potential(self, x, t: float = 0.0):
        xp = xp_of(x)
        trap = 0.5 * self.mass * self.omega**2 * (x**2).sum(-1)
        if self.d == 1:
            return trap
        kernel = xp.exp(-self._pair_differences(x) ** 2 / (2 * self.s2))
        # the sum over all ordered pairs counts each i<j twice and adds d ones on the diagonal
        pairs = (kernel.sum((-1, -2)) - self.d) / 2
        return trap + self.coupling * pairs

    def grad_potential(self, x, t: float = 0.0):
        xp = xp_of(x)
        trap = self.mass * self.omega**2 * x
        if self.d == 1:
            return trap
        diff = self._pair_differences(x)
        kernel = xp.exp(-diff**2 / (2 * self.s2))
        return trap - (self.coupling / self.s2) * (kernel * diff).sum(-1)

    # --- the initial state ------------------------------------------------------------------
    def log_rho0(self, x):
        s2 = self.sigma0_sq
        return -(x**2).sum(-1) / (2 * s2) - 0.5 * self.d * math.log(2 * math.pi * s2)

    def phase0(self, x):
        return 0.0 * x.sum(-1)

    def u0(self, x):
        # (hbar / 2m) * (-x / sigma0^2) = -omega x
        return -self.omega * x

    def v0(self, x):
        return 0.0 * x

    def sample_x0(self, n: int, rng, dtype=None):
        return math.sqrt(self.sigma0_sq) * standard_normal(n, self.d, rng, dtype)

    # --- the solution ---------------------------------------------------------------------
    def grid_hint(self) -> GridHint:
        energy = self.exact_energy()
        sd = math.sqrt(self.sigma0_sq)
        # with g >= 0 every energy term is non-negative, so 1/2 m omega^2 x_i^2 <= E classically
        half = math.sqrt(2 * energy / (self.mass * self.omega**2)) + TAIL_SDS * sd
        k_max = math.sqrt(2 * self.mass * energy) / self.hbar + ENVELOPE_SDS / (2 * sd)
        # without interaction psi0 is an eigenstate and no phase turns; keep a floor of the
        # trap's own energy scale so that the step stays finite
        e_spread = max(self.energy_spread(), 0.05 * self.hbar * self.omega)
        return GridHint(lo=(-half,) * self.d, hi=(half,) * self.d, k_max=k_max, e_spread=e_spread)

    def invariants(self) -> Invariants:
        return Invariants(zero_mean=True, com_var=self.hbar / (2 * self.d * self.mass * self.omega),
                          energy=self.exact_energy())

    def reference(self) -> "BosonReference":
        return BosonReference(self)


def convergence_check(fine: GridSolution, coarse: GridSolution) -> dict[str, float]:
    """How far a coarser grid's solution is from the reference's, in the metrics' own terms.

    Relative L2 over time of the variances (averaged over coordinates), the worst absolute
    difference of the means, the worst relative difference of Var((1/d) sum x_i), and the worst
    W1 distance over time between the first coordinate's marginals and between the pair-distance
    laws (integrals of |F_fine - F_coarse| on a common fine grid).
    """
    var = float(np.mean(np.linalg.norm(coarse.var - fine.var, axis=0)
                        / np.linalg.norm(fine.var, axis=0)))
    lo = min(fine.marginal_x[0][0], coarse.marginal_x[0][0])
    hi = max(fine.marginal_x[0][-1], coarse.marginal_x[0][-1])
    x = np.linspace(lo, hi, 4001)
    w1 = trapezoid(np.abs(fine.marginal_cdf(0, x) - coarse.marginal_cdf(0, x)), x, axis=1)
    out = {
        "var_rel_l2": var,
        "mean_abs_max": float(np.max(np.abs(coarse.mean - fine.mean))),
        "com_var_rel_max": float(np.max(np.abs(coarse.com_var - fine.com_var) / fine.com_var)),
        "marginal_w1_max": float(np.max(w1)),
    }
    if fine.pair_x.size and coarse.pair_x.size:
        z = np.linspace(min(fine.pair_x[0], coarse.pair_x[0]),
                        max(fine.pair_x[-1], coarse.pair_x[-1]), 4001)
        pw1 = trapezoid(np.abs(fine.pair_cdf(z) - coarse.pair_cdf(z)), z, axis=1)
        out["pair_w1_max"] = float(np.max(pw1))
    return out


class BosonReference(Reference):
    """Invariants for any d; for d <= 3 also a cached, converged Crank–Nicolson solution.

    The grid solution is computed on first use for the requested times and stored in the
    reference cache (see :mod:`problems.cache`); later uses with the same problem, grid settings
    and times load it.  :attr:`last` tells whether the last lookup was a cache hit.
    """

    def __init__(self, problem: Bosons, grid: dict[str, float] | None = None,
                 check: dict[str, float] | None = None, progress: bool | None = None):
        super().__init__(problem, problem.invariants())
        self.grid_options = dict(REFERENCE_GRID, **(grid or {}))
        self.check_options = dict(CHECK_GRID, **(check or {}))
        self.progress = progress
        self.kind = "grid" if problem.d <= GRID_MAX_D else "invariants"
        self.has_observables = self.kind == "grid"
        self._solutions: dict[tuple, GridSolution] = {}
        self.last: dict[str, Any] = {}

    def settings(self):
        return plan_grid(self.problem, **self.grid_options)

    def solution(self, times) -> GridSolution:
        """The grid solution at ``times`` (computed once, then cached in memory and on disk)."""
        if not self.has_observables:
            self._missing("grid solution")
        times = np.asarray(times, dtype=float)
        mem_key = tuple(np.round(times, 12))
        if mem_key in self._solutions:
            return self._solutions[mem_key]
        settings = self.settings()
        check = plan_grid(self.problem, **self.check_options)
        description = {
            "problem": self.problem.spec(), "grid": settings.as_dict(),
            "check_grid": check.as_dict(),
            "times": [float(f"{t:.12g}") for t in times], "engine": ENGINE_VERSION,
        }
        key = cache.cache_key(description)
        hit = cache.load("bosons", key)
        if hit is not None:
            arrays, meta, path = hit
            sol = GridSolution(info=meta["info"], **arrays)
            self.last = {"cached": True, "path": str(path), "key": key,
                         "compute_s": meta.get("compute_s"), "convergence": meta["convergence"]}
        else:
            started = time.perf_counter()
            sol = propagate(self.problem, settings, times, progress=self.progress)
            fine_s = time.perf_counter() - started
            coarse = propagate(self.problem, check, times, progress=self.progress)
            convergence = dict(convergence_check(sol, coarse), grid=check.as_dict(),
                               check_compute_s=time.perf_counter() - started - fine_s)
            path = cache.store("bosons", key, sol.arrays(),
                               {"description": description, "info": sol.info, "compute_s": fine_s,
                                "convergence": convergence})
            self.last = {"cached": False, "path": str(path), "key": key, "compute_s": fine_s,
                         "convergence": convergence}
        self._solutions[mem_key] = sol
        return sol

    #: The centre of mass has exact paths at every d (see :meth:`sample_com_paths`).
    has_com_paths = True

    def sample_com_paths(self, n: int, times, rng: np.random.Generator, nu: float = 1.0):
        """Exact paths of the centre of mass (1/d) sum_i X_i of the diffusion
        dX = (v + nu u) dt + sqrt(nu hbar/m) dW: yields its ``n`` values at each time.

        psi factorises into the trap ground state of the centre of mass (mass d m) times a
        function of the differences, so the mean of the drifts is -nu omega Xbar and the noise
        (1/d) sum dW_i has variance nu hbar / (m d) dt: an Ornstein-Uhlenbeck process, stationary
        at variance hbar / (2 d m omega)."""
        p = self.problem
        times = np.asarray(times, dtype=float)
        s2 = p.hbar / (2 * p.d * p.mass * p.omega)
        x = math.sqrt(s2) * rng.standard_normal(n)
        yield x
        for a, b in zip(times[:-1], times[1:]):
            decay = math.exp(-nu * p.omega * (b - a))
            x = decay * x + math.sqrt(s2 * (1 - decay * decay)) * rng.standard_normal(n)
            yield x

    def memory_bytes(self) -> int:
        return grid_memory_bytes(self.settings())

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

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        if self.has_observables:
            out["grid"] = self.settings().as_dict()
            out.update(self.last)
        return out
