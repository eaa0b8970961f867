"""A Gaussian packet in a symmetric double well, pushed against the barrier (issue 13).

V(x) = v0 sum_i ((x_i / b)^2 - 1)^2: wells at x_i = +-b, a barrier of height v0 at 0, and
near each well the harmonic frequency omega_w = sqrt(8 v0 / (m b^2)).  The initial state is a
Gaussian N(x0, sigma2) per coordinate with the phase S0 = phase * sum_i x_i: started in the
left well (x0 = -b) with momentum toward the barrier, its mean energy close to the barrier top,
the packet partly crosses and partly reflects, and the density becomes bimodal, with
interference fringes where the incoming and reflected parts overlap.  No closed form exists;
the reference is a cached split-operator solution checked against Crank–Nicolson
(:class:`~problems.grid.reference.GridReference`).  Coordinates are independent (V is a sum and
psi0 a product), so d = 2 has the marginals of d = 1; it tests the cost of the second dimension.

Defaults (hbar = 0.1, m = 1, b = 1, v0 = 0.5: omega_w = 2 and a barrier of five zero-point
energies hbar omega_w / 2 = 0.1; sigma2 = hbar / (2 m omega_w), the well's ground-state width;
phase = 9, T = 3) put the mean energy at the barrier top: the probability that has crossed,
P(x_1 > 0) at T, is between 20 % and 80 % (its value is in the module's tests and the README).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.polynomial.hermite_e import hermegauss

from core import param
from .base import GridHint, Invariants, Problem, standard_normal
from .grid.reference import GridReference

__all__ = ["DoubleWell", "DoubleWellReference"]

#: Energies up to this many standard deviations above the mean bound the box and k_max.
ENERGY_SDS = 6.0
#: Tail allowance, in initial standard deviations, beyond the classical turning points.
TAIL_SDS = 6.0
#: k_max adds the initial envelope's spectral width out to this many of its standard deviations.
ENVELOPE_SDS = 6.0
#: Gauss–Hermite nodes for the moments of the quartic potential (exact up to degree 2*40-1).
_QUADRATURE = hermegauss(40)


@dataclass(frozen=True)
class DoubleWell(Problem):
    """A Gaussian packet in the double well sum_i v0 ((x_i/b)^2 - 1)^2 (d = 1 or 2).

    Parameters
    ----------
    d : int
        Dimension, 1 or 2.
    hbar, mass : float
        Planck's constant and the particle mass (> 0).
    barrier : float
        Barrier height v0 (> 0); not called ``v0``, which is the initial current velocity
        :meth:`v0` of every problem.
    b : float
        Position of the wells' minima, +-b (> 0).
    x0 : float
        Initial mean of every coordinate.
    sigma2 : float
        Initial variance per coordinate (> 0).
    phase : float
        Initial phase gradient k: S0 = k * sum_i x_i (initial velocity hbar k / m).
    t_final : float
        Final time T.
    """

    name = "double_well"
    description = "packet pushed against a double-well barrier, partial crossing (grid reference)"
    crossing = (0, 0.0)  # P(x_1 > 0): the fraction that crossed the barrier

    d: int = param(1, "dimension of configuration space (1 or 2)", lo=1, hi=2)
    hbar: float = param(0.1, "reduced Planck constant", lo=0.0, lo_open=True)
    mass: float = param(1.0, "particle mass", lo=0.0, lo_open=True)
    # the issue calls it v0, but Problem.v0(x) is the initial current velocity: a field of that
    # name would shadow the method every solver calls
    barrier: float = param(0.5, "barrier height v0 (named so as not to shadow Problem.v0)",
                           lo=0.0, lo_open=True)
    b: float = param(1.0, "the wells' minima at +-b", lo=0.0, lo_open=True)
    x0: float = param(-1.0, "initial mean of every coordinate")
    sigma2: float = param(0.025, "initial variance per coordinate", lo=0.0, lo_open=True)
    phase: float = param(9.0, "initial phase gradient k in S0 = k * sum(x)")
    t_final: float = param(3.0, "final time T", lo=0.0, lo_open=True)

    # --- scales ---------------------------------------------------------------------------
    @property
    def well_omega(self) -> float:
        """The harmonic frequency at the bottom of each well, sqrt(8 v0 / (m b^2))."""
        return math.sqrt(8 * self.barrier / (self.mass * self.b**2))

    def _v1(self, x):
        return self.barrier * ((x / self.b) ** 2 - 1.0) ** 2

    def _potential_moments(self) -> tuple[float, float]:
        """Mean and variance of one coordinate's V under N(x0, sigma2) (Gauss–Hermite, exact for
        the quartic and its square)."""
        nodes, weights = _QUADRATURE
        weights = weights / weights.sum()
        v = self._v1(self.x0 + math.sqrt(self.sigma2) * nodes)
        mean = float(weights @ v)
        return mean, float(weights @ (v - mean) ** 2)

    def exact_energy(self) -> float:
        """<H> at t = 0: per coordinate hbar^2/(8 m sigma2) + hbar^2 k^2/(2m) + E[V_1(x)]; with
        x ~ N(x0, s2), E[((x/b)^2 - 1)^2] = (x0^4 + 6 x0^2 s2 + 3 s2^2)/b^4
        - 2 (x0^2 + s2)/b^2 + 1."""
        hb, m, s2, x0, b = self.hbar, self.mass, self.sigma2, self.x0, self.b
        quartic = (x0**4 + 6 * x0**2 * s2 + 3 * s2**2) / b**4 - 2 * (x0**2 + s2) / b**2 + 1
        per = hb * hb / (8 * m * s2) + (hb * self.phase) ** 2 / (2 * m) + self.barrier * quartic
        return self.d * per

    def energy_spread(self) -> float:
        """Standard deviation of the energy over the initial Wigner distribution: x ~ N(x0, s2)
        and p ~ N(hbar k, hbar^2/(4 s2)) independently per coordinate, so the kinetic and
        potential variances add (Var p^2 = 2 s^4 + 4 mu^2 s^2 for p ~ N(mu, s^2))."""
        m, hb = self.mass, self.hbar
        p_mu, p_s2 = hb * self.phase, hb * hb / (4 * self.sigma2)
        kinetic = (2 * p_s2**2 + 4 * p_mu**2 * p_s2) / (4 * m * m)
        return math.sqrt(self.d * (kinetic + self._potential_moments()[1]))

    # --- the equation -----------------------------------------------------------------------
    def potential(self, x, t=0.0):
        return self._v1(x).sum(-1)

    def grad_potential(self, x, t=0.0):
        return 4 * self.barrier * ((x / self.b) ** 2 - 1.0) * x / self.b**2

    # --- the initial state ------------------------------------------------------------------
    def log_rho0(self, x):
        return (-((x - self.x0) ** 2).sum(-1) / (2 * self.sigma2)
                - 0.5 * self.d * math.log(2 * math.pi * self.sigma2))

    def phase0(self, x):
        return self.phase * x.sum(-1)

    def u0(self, x):
        return -(self.hbar / (2 * self.mass)) * (x - self.x0) / self.sigma2

    def v0(self, x):
        return (self.hbar * self.phase / self.mass) + 0.0 * x

    def sample_x0(self, n: int, rng, dtype=None):
        return self.x0 + math.sqrt(self.sigma2) * standard_normal(n, self.d, rng, dtype)

    # --- the solution ---------------------------------------------------------------------
    def grid_hint(self) -> GridHint:
        per_mean = self.exact_energy() / self.d
        per_sd = self.energy_spread() / math.sqrt(self.d)
        e_hi = per_mean + ENERGY_SDS * per_sd  # one coordinate's energy, classically bounded
        sd = math.sqrt(self.sigma2)
        # turning points of v0 ((x/b)^2 - 1)^2 = e_hi on the outer walls
        turning = self.b * math.sqrt(1.0 + math.sqrt(e_hi / self.barrier))
        half = max(turning + TAIL_SDS * sd, abs(self.x0) + TAIL_SDS * sd)
        k_max = math.sqrt(2 * self.mass * e_hi) / self.hbar + ENVELOPE_SDS / (2 * sd)
        return GridHint(lo=(-half,) * self.d, hi=(half,) * self.d, k_max=k_max,
                        e_spread=self.energy_spread())

    def invariants(self) -> Invariants:
        return Invariants(energy=self.exact_energy())

    def reference(self) -> "DoubleWellReference":
        return DoubleWellReference(self)

    def crossed(self, cdf) -> np.ndarray:
        """The fraction of probability past the barrier, P(x_1 > 0), from any marginal CDF:
        ``cdf(coord, x) -> (T, len(x))`` (a solver's ``Observables.marginal_cdf`` or a bound
        reference's), at each of its times."""
        return 1.0 - np.asarray(cdf(0, np.array([0.0])))[:, 0]



class DoubleWellReference(GridReference):
    """The double well's grid reference, with the crossed fraction P(x_1 > 0)."""

    def crossed(self, times) -> np.ndarray:
        """P(x_1 > 0) at each of ``times`` (1 - F(0) of the first marginal)."""
        return self.prob_above(0, 0.0, times)
