"""The two lowest trap states superposed in one coordinate: a density with a moving node.

V(x) = 1/2 m omega^2 |x - c|^2.  With y = x - c, l^2 = hbar / (2 m omega) (the ground state's
variance), phi0(y) = (2 pi l^2)^(-1/4) exp(-y^2 / (4 l^2)) and phi1(y) = (y / l) phi0(y) (the
first excited state, E1 = 3 hbar omega / 2 against E0 = hbar omega / 2), the initial state is
psi0 = (phi0 + phi1)(y_1) / sqrt(2) in the first coordinate times phi0(y_j) in the others.
Writing z = y_1 / l and theta = omega t, the exact solution is

    psi(x, t) = prod_j phi0(y_j) * exp(-i d theta / 2) * (1 + z exp(-i theta)) / sqrt(2),

so the coordinates stay independent; every coordinate but the first is a stationary ground state
(mean c, variance l^2, u = -omega y_j, v = 0).  In the first coordinate

    rho_1 = N(y_1; 0, l^2) q / 2,      q = |1 + z e^{-i theta}|^2 = 1 + 2 z cos(theta) + z^2
                                         = (z + cos theta)^2 + sin^2 theta,
    S     = -d theta / 2 + atan2(-z sin theta, 1 + z cos theta),
    <x_1> = c + l cos(theta),          Var x_1 = 2 l^2 - l^2 cos^2(theta) = l^2 (1 + sin^2 theta),
    u_1   = (hbar/2m) d/dy log rho = omega l (-z + 2 (z + cos theta) / q),
    v_1   = (hbar/m) dS/dy        = -2 omega l sin(theta) / q,

using hbar / (2m) = omega l^2.  q vanishes only where sin(theta) = 0 and z = -cos(theta): the
density has a node exactly at t = k pi / omega, at x_1 = c - (-1)^k l (at t = 0: x_1 = c - l,
where psi0 changes sign, log rho0 = -inf and u0 = -omega y + 2 omega l^2 / (l + y) has a pole).
Near the node u and v diverge; exactly at it the formulas above are 0/0 and the methods return
NaN (NumPy warnings are suppressed).  The ground coordinates cannot hit a node.

The marginal CDF of z is F(z) = Phi(z) - phi(z) (cos theta + z / 2) (integrate phi, z phi and
z^2 phi); the pair distance x_0 - x_1 = sqrt(2) l r (d >= 2) has the density
phi(r) (3/4 + r cos(theta) / sqrt(2) + r^2 / 4) and the CDF
G(r) = Phi(r) - phi(r) (cos(theta) / sqrt(2) + r / 4) (convolve rho_1 with the ground state).

Exact samples of z come from the symmetrised density phi (1 + z^2) / 2, a fair mixture of a
standard normal and a signed chi with 3 degrees of freedom, followed by the sign + with
probability q(|z|) / (q(|z|) + q(-|z|)) = (1 + 2 |z| cos theta + z^2) / (2 (1 + z^2)).

The energy is exact and conserved: <H> = (hbar omega / 2)(1 + 3) / 2 + (d - 1) hbar omega / 2 =
(d + 1) hbar omega / 2, with standard deviation hbar omega / 2 (two levels, equal weights).
Monte Carlo estimates of E[m/2 (|u|^2 + |v|^2) + V] have infinite variance at the node times
(|u|^4 rho is not integrable at the node), so they are meaningful only between nodes.

Nelson's paths through a moving node have no closed form (the process never reaches the node,
but the transition law is not Gaussian), so the reference gives exact independent samples at
each time and no paths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import ndtr

from core import param
from .base import (GridHint, Invariants, Problem, Reference, as_time, dim_param, standard_normal,
                   uniform, xp_of)
from .packet import BOX_SDS, ENVELOPE_SDS

__all__ = ["Superposition", "SuperpositionReference"]

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _npdf(z):
    """The standard normal density, in z's library."""
    return _INV_SQRT_2PI * xp_of(z).exp(-0.5 * z * z)


def _cat(first, rest):
    """Join the first coordinate's values (...) and the others' (..., d - 1) into (..., d)."""
    return xp_of(rest).concatenate([first[..., None], rest], axis=-1)


def _superposed_z(n: int, cos_theta: float, rng, dtype=None):
    """``n`` exact draws of z = (x_1 - c) / l from phi(z) (1 + 2 z cos_theta + z^2) / 2.

    |z| is drawn from the symmetrised density phi(z) (1 + z^2) / 2: with probability 1/2 a
    standard normal, else a chi with 3 degrees of freedom (density 2 r^2 phi(r) on r > 0).  The
    sign is then + with probability rho(|z|) / (rho(|z|) + rho(-|z|)).
    """
    g = standard_normal(n, 3, rng, dtype)
    w = uniform(n, 2, rng, dtype)
    xp = xp_of(g)
    r2 = g[:, 0] ** 2 + xp.where(w[:, 0] < 0.5, g[:, 1] ** 2 + g[:, 2] ** 2, 0.0 * g[:, 1])
    r = xp.sqrt(r2)
    p_plus = (1.0 + 2.0 * r * cos_theta + r2) / (2.0 * (1.0 + r2))
    return xp.where(w[:, 1] < p_plus, r, -r)


@dataclass(frozen=True)
class Superposition(Problem):
    """(phi0 + phi1) / sqrt(2) of a harmonic trap in the first coordinate, ground states in the
    others; exact in any dimension, with a node of the density at t = k pi / omega.

    Parameters
    ----------
    d : int
        Dimension (>= 1).
    hbar, mass, omega : float
        Planck's constant, particle mass and trap frequency (all > 0).
    center : float
        Trap centre c, the same in every coordinate.
    t_final : float
        Final time T (default pi: one full swing, with nodes at t = 0 and t = pi / omega).
    """

    name = "superposition"
    description = ("(phi0 + phi1)/sqrt2 of a trap in x_1, ground states elsewhere: a moving node "
                   "(exact)")

    d: int = dim_param(1)
    hbar: float = param(0.1, "reduced Planck constant", lo=0.0, lo_open=True)
    mass: float = param(1.0, "particle mass", lo=0.0, lo_open=True)
    omega: float = param(1.0, "trap frequency", lo=0.0, lo_open=True)
    center: float = param(0.0, "trap centre, the same in every coordinate")
    t_final: float = param(math.pi, "final time T", lo=0.0, lo_open=True)

    @property
    def ell(self) -> float:
        """l = sqrt(hbar / (2 m omega)), the ground state's standard deviation."""
        return math.sqrt(self.hbar / (2.0 * self.mass * self.omega))

    def node(self, k: int = 0) -> tuple[float, float]:
        """The k-th node of the density: (t, x_1) = (k pi / omega, c - (-1)^k l)."""
        return k * math.pi / self.omega, self.center - (-1) ** k * self.ell

    def exact_energy(self) -> float:
        """<H> = (E0 + E1) / 2 + (d - 1) E0 = (d + 1) hbar omega / 2, conserved."""
        return 0.5 * (self.d + 1) * self.hbar * self.omega

    def energy_spread(self) -> float:
        """The standard deviation of H in psi0: E0 and E1 with weight 1/2 each, hbar omega / 2."""
        return 0.5 * self.hbar * self.omega

    # --- the equation ----------------------------------------------------------------------
    def potential(self, x, t=0.0):
        return 0.5 * self.mass * self.omega**2 * ((x - self.center) ** 2).sum(-1)

    def grad_potential(self, x, t=0.0):
        return self.mass * self.omega**2 * (x - self.center)

    # --- the initial state -------------------------------------------------------------------
    def log_rho0(self, x):
        xp = xp_of(x)
        l2 = self.ell**2
        y = x - self.center
        gauss = -(y**2).sum(-1) / (2 * l2) - 0.5 * self.d * math.log(2 * math.pi * l2)
        # |1 + z|^2 / 2 with z = y_1 / l; -inf exactly at the node z = -1
        with np.errstate(divide="ignore"):
            return gauss + 2.0 * xp.log(xp.abs(1.0 + y[..., 0] / self.ell)) - math.log(2.0)

    def phase0(self, x):
        # psi0 is real, negative beyond the node (z < -1): S0 = pi there, 0 elsewhere.  Both
        # branches are built from x so that the result is in x's dtype and has a (zero) gradient.
        z = (x[..., 0] - self.center) / self.ell
        zero = 0.0 * z
        return xp_of(x).where(z < -1.0, zero + math.pi, zero)

    def u0(self, x):
        y = x - self.center
        y1 = y[..., 0]
        # (hbar/2m) d/dy [-y^2/(2 l^2) + 2 log|1 + y/l|]; the pole at y1 = -l gives +-inf there
        with np.errstate(divide="ignore"):
            first = -self.omega * y1 + 2.0 * self.omega * self.ell**2 / (self.ell + y1)
        return _cat(first, -self.omega * y[..., 1:])

    def v0(self, x):
        return 0.0 * x

    def sample_x0(self, n: int, rng, dtype=None):
        z1 = _superposed_z(n, 1.0, rng, dtype)
        rest = standard_normal(n, self.d - 1, rng, dtype)
        return self.center + self.ell * _cat(z1, rest)

    # --- the solution ------------------------------------------------------------------------
    def grid_hint(self) -> GridHint:
        """The box holds the same tail mass per side as a packet's BOX_SDS box, for the worst
        cos(omega t) on [0, T]; k_max is where the momentum amplitude has fallen as far as a
        ground state's at ENVELOPE_SDS of its standard deviations."""
        l, c = self.ell, self.center
        tail = float(ndtr(-BOX_SDS))
        # in units of l: upper tail ndtr(-z) + phi(z)(a + z/2), largest for a = cos(0) = 1;
        # lower tail ndtr(-z) + phi(z)(z/2 - a), largest for the smallest cos(omega t) on [0, T]
        a_min = math.cos(min(self.omega * self.t_final, math.pi))

        def quantile(a):
            f = lambda z: float(ndtr(-z) + _npdf(np.float64(z)) * (a + 0.5 * z)) - tail
            return brentq(f, BOX_SDS, 4 * BOX_SDS, xtol=1e-12)

        z_hi, z_lo = quantile(1.0), quantile(-a_min)
        lo = (c - z_lo * l,) + (c - BOX_SDS * l,) * (self.d - 1)
        hi = (c + z_hi * l,) + (c + BOX_SDS * l,) * (self.d - 1)
        # momentum space has the same structure (the oscillator turns phase space rigidly): the
        # amplitude in the first coordinate is |1 + kappa e^{i alpha}| exp(-kappa^2 / 4) with
        # kappa = 2 l k, at most (1 + kappa) exp(-kappa^2 / 4); a ground state's is
        # exp(-kappa^2 / 4), which the packet's rule cuts at kappa = ENVELOPE_SDS.  (The local
        # wavenumber m v / hbar is unbounded near the node, but only where the amplitude is small:
        # the spectrum is what a grid must resolve.)
        cut = ENVELOPE_SDS**2 / 4
        kappa = brentq(lambda q: q * q / 4 - math.log1p(q) - cut, ENVELOPE_SDS, 4 * ENVELOPE_SDS)
        return GridHint(lo=lo, hi=hi, k_max=kappa / (2 * l), e_spread=self.energy_spread())

    def invariants(self) -> Invariants:
        return Invariants(zero_mean=False, energy=self.exact_energy())

    def reference(self) -> "SuperpositionReference":
        return SuperpositionReference(self)


class SuperpositionReference(Reference):
    """The exact solution of a :class:`Superposition` (kind ``"exact"``; no paths)."""

    kind = "exact"
    has_observables = True
    has_velocities = True
    has_samples = True
    #: Nelson's paths through a moving node have no closed form.
    has_paths = False

    def __init__(self, problem: Superposition):
        super().__init__(problem, problem.invariants())

    def _angles(self, times) -> tuple[np.ndarray, np.ndarray]:
        theta = self.problem.omega * np.asarray(times, dtype=float)
        return np.cos(theta), np.sin(theta)

    def mean(self, times):
        p = self.problem
        cos = self._angles(times)[0]
        out = np.full((len(cos), p.d), p.center)
        out[:, 0] += p.ell * cos
        return out

    def var(self, times):
        p = self.problem
        cos = self._angles(times)[0]
        out = np.full((len(cos), p.d), p.ell**2)
        out[:, 0] = p.ell**2 * (2.0 - cos**2)
        return out

    def com_var(self, times):
        # independent coordinates: Var((1/d) sum x_i) = sum_i Var x_i / d^2
        return self.var(times).sum(1) / self.problem.d**2

    def marginal_cdf(self, coord, x, times):
        p = self.problem
        z = (np.asarray(x, dtype=float)[None, :] - p.center) / p.ell
        if coord != 0:
            return np.broadcast_to(ndtr(z), (len(np.atleast_1d(times)), z.shape[1])).copy()
        cos = self._angles(times)[0][:, None]
        return ndtr(z) - _npdf(z) * (cos + 0.5 * z)

    def pair_cdf(self, z, times):
        p = self.problem
        if p.d < 2:
            self._missing("pair distance in d = 1")
        r = np.asarray(z, dtype=float)[None, :] / (math.sqrt(2.0) * p.ell)
        cos = self._angles(times)[0][:, None]
        return ndtr(r) - _npdf(r) * (cos / math.sqrt(2.0) + 0.25 * r)

    # --- fields at points x (..., d), NumPy or torch; t a float or per-point times (...) -----
    # q = |1 + z e^{-i theta}|^2 is written (z + cos)^2 + sin^2, not 1 + 2 z cos + z^2: the
    # expanded form cancels to rounding errors of 1e-16 next to the node (and can go negative)
    def _split(self, x, t):
        """z = y_1 / l, the other coordinates' y, and cos / sin of omega t (floats or arrays)."""
        p = self.problem
        t = as_time(t, x)
        xp = xp_of(x)
        theta = p.omega * t
        if isinstance(theta, float):
            cos, sin = math.cos(theta), math.sin(theta)
        else:
            cos, sin = xp.cos(theta), xp.sin(theta)
        y = x - p.center
        return y[..., 0] / p.ell, y[..., 1:], cos, sin

    def density(self, x, t):
        """rho(x, t); exactly 0 at the node."""
        p = self.problem
        z, rest, cos, sin = self._split(x, t)
        xp = xp_of(x)
        l2 = p.ell**2
        q = (z + cos) ** 2 + sin * sin
        norm = (2 * math.pi * l2) ** (p.d / 2)
        gauss = xp.exp(-0.5 * z * z - (rest**2).sum(-1) / (2 * l2)) / norm
        return gauss * 0.5 * q

    def psi(self, x, t):
        """The exact wave function (complex), with the phases exp(-i E t / hbar) of the modes."""
        p = self.problem
        z, rest, cos, sin = self._split(x, t)
        xp = xp_of(x)
        l2 = p.ell**2
        theta = p.omega * as_time(t, x)
        # exp(-i theta) = cos - i sin and the ground states' phase exp(-i d theta / 2)
        norm = (2 * math.pi * l2) ** (p.d / 4)
        envelope = xp.exp(-0.25 * z * z - (rest**2).sum(-1) / (4 * l2)) / norm
        if isinstance(theta, float):
            ground = complex(math.cos(p.d * theta / 2), -math.sin(p.d * theta / 2))
        else:
            ground = xp.exp(-0.5j * p.d * theta)
        return envelope * ground * (1.0 + z * (cos - 1j * sin)) / math.sqrt(2.0)

    def u(self, x, t):
        """(hbar/2m) grad log rho: omega l (-z + 2 (z + cos) / q) in x_1, -omega y_j elsewhere;
        +-inf next to the node and NaN (0/0) exactly at it."""
        p = self.problem
        z, rest, cos, sin = self._split(x, t)
        q = (z + cos) ** 2 + sin * sin
        with np.errstate(divide="ignore", invalid="ignore"):
            first = p.omega * p.ell * (-z + 2.0 * (z + cos) / q)
        return _cat(first, -p.omega * rest)

    def v(self, x, t):
        """(hbar/m) grad S: -2 omega l sin(omega t) / q in x_1, 0 elsewhere; NaN (0/0) exactly at
        the node, unbounded near it."""
        p = self.problem
        z, rest, cos, sin = self._split(x, t)
        q = (z + cos) ** 2 + sin * sin
        with np.errstate(divide="ignore", invalid="ignore"):
            first = -2.0 * p.omega * p.ell * sin / q
        return _cat(first, 0.0 * rest)

    def sample(self, n, times, rng):
        p = self.problem
        cos = self._angles(times)[0]
        out = np.empty((len(cos), n, p.d))
        for k, a in enumerate(cos):
            out[k, :, 0] = _superposed_z(n, float(a), rng)
            out[k, :, 1:] = rng.standard_normal((n, p.d - 1))
        return p.center + p.ell * out
