"""Interacting one-dimensional bosons in a harmonic trap.

V(x) = sum_i 1/2 m omega^2 x_i^2 + g / (2 sqrt(2 pi s2)) sum_{i<j} exp(-(x_i - x_j)^2 / (2 s2)),
psi0 = the ground state of the trap without interaction: |psi0|^2 = N(0, hbar/(2 m omega) I).

No closed form exists; for d <= 4 (where the grid fits) the reference is a converged
split-operator solution, checked against Crank–Nicolson and cached on disk
(:class:`~problems.grid.reference.GridReference`).  For every d the interaction depends only on
differences, so the centre of mass (1/d) sum_i x_i is a free oscillator of mass d m started in its ground state: every <x_i> = 0 and
Var((1/d) sum_i x_i) = hbar / (2 d m omega) for all t.  The energy is conserved, and at t = 0 it is
exactly d hbar omega / 2 + C(d, 2) g / (2 sqrt(2 pi s2)) / sqrt(1 + 2 sigma0^2 / s2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .base import GridHint, Invariants, Problem, Reference, dim_param, standard_normal, xp_of
from core import param
from .grid.reference import GridReference

__all__ = ["Bosons"]

#: Grid references are computed up to this dimension (if they fit, see below); beyond it only
#: invariants hold.
GRID_MAX_D = 4
#: A grid reference whose estimated memory exceeds this declines to the invariants (bytes): the
#: fixed-g cloud at d = 4 spreads so far that its grid would need ~30 GB.
REFERENCE_MEMORY_LIMIT = 8 * 2**30
#: Overrides of :data:`problems.grid.reference.DEFAULT_SETTINGS` per d.  The split-operator
#: reference at d = 4 takes 2.2 points per wavelength (at d = 3 that is within 1.2e-12 in var of
#: a grid twice as fine; 3.0 would be 35M points and ~20 minutes).  Crank–Nicolson's check takes
#: 3.5 points per wavelength at d = 3 (0.5-1.2M points: 30 s to 2 min) and at d = 4 a coarse
#: grid and step in a box 0.8 times the hint's (|psi|^2 there is ~1e-16; at d = 3 the smaller
#: box changes the check's differences by < 5 % and leaves 4e-9 in its walls), so that it fits
#: in memory and time: 52^4 points (the full box at 65^4 took 35 minutes on two busy cores).
#: Its differences are then mostly its own error (2.6e-4 in variance at d = 3 on these settings).
SETTINGS = {4: {"points_per_wavelength": 2.2}}
CHECK_SETTINGS = {3: {"points_per_wavelength": 3.5, "phase_step": 0.008},
                  4: {"points_per_wavelength": 2.5, "phase_step": 0.02, "box_scale": 0.8}}
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
    description = "d interacting 1-D bosons in a trap (grid reference for d<=4, invariants for all d)"

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

    def reference(self) -> Reference:
        """The cached grid reference where a grid fits (d <= 4), else the invariants only;
        either way with exact paths of the centre of mass."""
        if self.d <= GRID_MAX_D:
            ref = BosonGridReference(self, settings=SETTINGS.get(self.d),
                                     check_settings=CHECK_SETTINGS.get(self.d))
            if ref.memory_bytes() <= REFERENCE_MEMORY_LIMIT:
                return ref
        return BosonInvariants(self, self.invariants())


class _CentreOfMassPaths:
    """Exact paths of the centre of mass, which every bosons reference has (see
    :meth:`sample_com_paths`)."""

    has_com_paths = True
    problem: Bosons

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


class BosonGridReference(_CentreOfMassPaths, GridReference):
    """The cached grid solution (d <= 4), with the centre of mass's exact paths."""


class BosonInvariants(_CentreOfMassPaths, Reference):
    """The invariants only (beyond the grid), with the centre of mass's exact paths."""


