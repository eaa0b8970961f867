"""Gaussian wave packets in an isotropic harmonic trap (omega = 0: the free particle).

V(x) = 1/2 m omega^2 |x - c|^2,  |psi0|^2 = N(0, sigma2 I),  S0(x) = phase * sum_i x_i.

The packet stays Gaussian with independent, identical coordinates, so the solution is exact in any
dimension (DESIGN.md section 2).  Per coordinate, with s(t) = sin(omega t)/omega (= t at omega=0):

    mean(t) = c (1 - cos omega t) + (hbar k / m) s(t)
    var(t)  = sigma2 cos^2(omega t) + (hbar / 2m)^2 / sigma2 * s(t)^2
    u = -(hbar/2m) (x - mean) / var,      v = mean' + var' / (2 var) (x - mean).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.integrate import quad
from scipy.special import ndtr

from .base import GridHint, Invariants, Problem, Reference, dim_param, standard_normal, xp_of
from core import param

__all__ = ["GaussianPacket", "PacketReference"]

#: The box holds the packet to this many standard deviations at every t (tail mass < 4e-8).
BOX_SDS = 5.5
#: k_max covers the local wavenumber this many standard deviations out ...
K_SDS = 4.0
#: ... plus the envelope's own spread: |FT of exp(-x^2/(4 s^2))| = exp(-s^2 k^2) < 1e-7 beyond 6/(2s).
ENVELOPE_SDS = 6.0


@dataclass(frozen=True)
class GaussianPacket(Problem):
    """A Gaussian packet in an isotropic harmonic trap; exact in any dimension.

    Parameters
    ----------
    d : int
        Dimension.
    hbar, mass : float
        Planck's constant and the particle mass (> 0).
    omega : float
        Trap frequency (>= 0; 0 is the free particle).
    center : float
        Trap centre, the same in every coordinate.
    sigma2 : float
        Initial variance of |psi0|^2 per coordinate, centred at 0.
    phase : float
        Initial phase gradient k: S0(x) = k * sum_i x_i, so v0 = hbar k / m.
    t_final : float
        Final time T.
    """

    name = "gaussian_packet"
    description = "Gaussian packet in an isotropic harmonic trap (exact reference)"

    d: int = dim_param(1)
    hbar: float = param(0.01, "reduced Planck constant", lo=0.0, lo_open=True)
    mass: float = param(1.0, "particle mass", lo=0.0, lo_open=True)
    omega: float = param(1.0, "trap frequency (0: free particle)", lo=0.0)
    center: float = param(0.1, "trap centre, the same in every coordinate")
    sigma2: float = param(0.1, "initial variance per coordinate", lo=0.0, lo_open=True)
    phase: float = param(0.0, "initial phase gradient k in S0 = k * sum(x)")
    t_final: float = param(1.0, "final time T", lo=0.0, lo_open=True)

    # --- exact moments per coordinate ----------------------------------------------------
    def moments(self, t) -> tuple:
        """Exact per-coordinate (mean, var, mean', var') at times ``t``.

        ``t`` may be NumPy/float (NumPy results) or a torch tensor (torch results, differentiable
        in t).  sin(omega t)/omega is written with sinc, so omega = 0 is continuous.
        """
        xp = xp_of(t)
        if xp is np:
            t = np.asarray(t, dtype=float)
        w, c, m, hb, s2 = self.omega, self.center, self.mass, self.hbar, self.sigma2
        cos, s = xp.cos(w * t), t * xp.sinc(w * t / math.pi)
        v0 = hb * self.phase / m
        q = (hb / (2.0 * m)) ** 2 / s2  # the momentum spread's contribution to var'' / 2
        mean = c * (1.0 - cos) + v0 * s
        dmean = c * w * w * s + v0 * cos
        var = s2 * cos**2 + q * s**2
        dvar = 2.0 * cos * s * (q - s2 * w * w)
        return mean, var, dmean, dvar

    def exact_energy(self) -> float:
        """<H> = d [hbar^2/(8 m sigma2) + hbar^2 k^2/(2m) + m omega^2 (sigma2 + c^2)/2]."""
        hb, m = self.hbar, self.mass
        per = (hb * hb / (8 * m * self.sigma2) + (hb * self.phase) ** 2 / (2 * m)
               + 0.5 * m * self.omega**2 * (self.sigma2 + self.center**2))
        return self.d * per

    # --- the equation ----------------------------------------------------------------------
    def potential(self, x, t: float = 0.0):
        return 0.5 * self.mass * self.omega**2 * ((x - self.center) ** 2).sum(-1)

    def grad_potential(self, x, t: float = 0.0):
        return self.mass * self.omega**2 * (x - self.center)

    # --- the initial state -----------------------------------------------------------------
    def log_rho0(self, x):
        return -(x**2).sum(-1) / (2 * self.sigma2) - 0.5 * self.d * math.log(2 * math.pi * self.sigma2)

    def phase0(self, x):
        return self.phase * x.sum(-1)

    def u0(self, x):
        return -(self.hbar / (2 * self.mass)) * x / self.sigma2

    def v0(self, x):
        return (self.hbar * self.phase / self.mass) + 0.0 * x

    def sample_x0(self, n: int, rng, dtype=None):
        return math.sqrt(self.sigma2) * standard_normal(n, self.d, rng, dtype)

    # --- the solution ---------------------------------------------------------------------
    def grid_hint(self) -> GridHint:
        t = np.linspace(0.0, self.t_final, 2001)
        mean, var, dmean, dvar = self.moments(t)
        sd = np.sqrt(var)
        lo = float(np.min(mean - BOX_SDS * sd))
        hi = float(np.max(mean + BOX_SDS * sd))
        k_local = (self.mass / self.hbar) * (np.abs(dmean) + np.abs(dvar) / (2 * var) * K_SDS * sd)
        k_max = float(np.max(k_local + ENVELOPE_SDS / (2 * sd)))
        return GridHint(lo=(lo,) * self.d, hi=(hi,) * self.d, k_max=k_max,
                        e_spread=self._energy_spread(), time_scale=self._time_scale(var, dvar))

    def time_scale(self, t) -> np.ndarray:
        """The packet's own time scale at times ``t``: the shortest of the trap's period
        2 pi / omega, the relative rates of change of the width, var / |var'| and
        sqrt(var / |var''|), and the spreading time 2 m var / hbar of the current width (the
        time a free packet of that width takes to change it: what makes a narrow packet fast
        even where var' = 0)."""
        t = np.asarray(t, dtype=float)
        mean, var, dmean, dvar = self.moments(t)
        scales = [2 * self.mass * var / self.hbar]
        if self.omega > 0:
            scales.append(np.full_like(t, 2 * math.pi / self.omega))
        with np.errstate(divide="ignore"):
            scales.append(np.where(np.abs(dvar) > 0, var / np.abs(dvar), np.inf))
            # var'' from the moments' closed form: the derivative of dvar
            h = 1e-6 * max(self.t_final, 1e-12)
            ddvar = (self.moments(t + h)[3] - self.moments(t - h)[3]) / (2 * h)
            scales.append(np.where(np.abs(ddvar) > 0, np.sqrt(var / np.abs(ddvar)), np.inf))
        return np.minimum.reduce(scales)

    def _time_scale(self, var: np.ndarray, dvar: np.ndarray) -> float:
        return float(np.min(self.time_scale(np.linspace(0.0, self.t_final, 2001))))

    def _energy_spread(self) -> float:
        """Standard deviation of the energy over the initial phase-space (Wigner) distribution.

        Per coordinate x ~ N(0, sigma2) and p ~ N(hbar k, hbar^2 / (4 sigma2)) independently, and
        Var(Y^2) = 2 s^4 + 4 mu^2 s^2 for Y ~ N(mu, s^2).
        """
        m, hb = self.mass, self.hbar
        p_mu, p_s2 = hb * self.phase, hb * hb / (4 * self.sigma2)
        x_mu, x_s2 = -self.center, self.sigma2

        def var_sq(mu, s2):
            return 2 * s2 * s2 + 4 * mu * mu * s2

        per = var_sq(p_mu, p_s2) / (4 * m * m) + (0.5 * m * self.omega**2) ** 2 * var_sq(x_mu, x_s2)
        return math.sqrt(self.d * per)

    def invariants(self) -> Invariants:
        # the mean is identically 0 when nothing pushes it: no initial momentum and no off-centre trap
        zero_mean = self.phase == 0 and (self.center == 0 or self.omega == 0)
        return Invariants(zero_mean=zero_mean, energy=self.exact_energy())

    def reference(self) -> "PacketReference":
        return PacketReference(self)


class PacketReference(Reference):
    """The exact solution of a :class:`GaussianPacket` (kind ``"exact"``)."""

    kind = "exact"
    has_observables = True
    has_velocities = True
    has_samples = True

    has_paths = True

    def __init__(self, problem: GaussianPacket):
        super().__init__(problem, problem.invariants())

    def mean(self, times):
        return np.repeat(self.problem.moments(times)[0][:, None], self.problem.d, axis=1)

    def var(self, times):
        return np.repeat(self.problem.moments(times)[1][:, None], self.problem.d, axis=1)

    def com_var(self, times):
        # independent identical coordinates: Var((1/d) sum x_i) = var / d
        return self.problem.moments(times)[1] / self.problem.d

    def marginal_cdf(self, coord, x, times):
        mean, var = self.problem.moments(times)[:2]
        z = (np.asarray(x, dtype=float)[None, :] - mean[:, None]) / np.sqrt(var)[:, None]
        return ndtr(z)

    def pair_cdf(self, z, times):
        # independent coordinates with equal means: x_0 - x_1 ~ N(0, 2 var)
        var = self.problem.moments(times)[1]
        return ndtr(np.asarray(z, dtype=float)[None, :] / np.sqrt(2 * var)[:, None])

    def _moments_at(self, t) -> tuple:
        """Moments at one time, shaped to broadcast against points (..., d).

        A float ``t`` gives floats; per-point times, a NumPy array or a tensor of shape (...)
        matching the points' batch shape, give arrays of shape (..., 1) of the same library (a
        tensor's differentiable in t).
        """
        if isinstance(t, torch.Tensor):
            return tuple(a.unsqueeze(-1) for a in self.problem.moments(t))
        if np.ndim(t) > 0:
            return tuple(np.asarray(a)[..., None] for a in self.problem.moments(np.asarray(t)))
        return tuple(float(a) for a in self.problem.moments(t))

    def density(self, x, t):
        """rho(x, t) at points ``x`` (..., d), NumPy or torch; ``t`` a float or per-point times."""
        mean, var = self._moments_at(t)[:2]
        xp = xp_of(x)
        q = ((x - mean) ** 2 / var).sum(-1)
        var_ = var if isinstance(var, float) else var[..., 0]
        return xp.exp(-0.5 * q) / (2 * math.pi * var_) ** (self.problem.d / 2)

    def u(self, x, t):
        mean, var = self._moments_at(t)[:2]
        return -(self.problem.hbar / (2 * self.problem.mass)) * (x - mean) / var

    def v(self, x, t):
        mean, var, dmean, dvar = self._moments_at(t)
        return dmean + dvar / (2 * var) * (x - mean)

    def sample(self, n, times, rng):
        mean, var = self.problem.moments(times)[:2]
        z = rng.standard_normal((len(mean), n, self.problem.d))
        return mean[:, None, None] + np.sqrt(var)[:, None, None] * z

    def sample_paths(self, n, times, rng, nu=1.0):
        """Exact paths of the packet's diffusion: Y = X - mean(t) solves the linear SDE
        dY = a(t) Y dt + sqrt(nu hbar/m) dW with a = var'/(2 var) - nu (hbar/2m) / var, so from
        one time to the next Y is multiplied by phi = sqrt(var1/var0) exp(-nu (hbar/2m) int dt/var)
        and gains independent Gaussian noise of variance var1 - phi^2 var0 (the marginals stay
        exact)."""
        times = np.asarray(times, dtype=float)
        prob = self.problem
        mean, var = prob.moments(times)[:2]
        phi, noise = self._transitions(tuple(times), float(nu))
        y = np.sqrt(var[0]) * rng.standard_normal((n, prob.d))
        yield mean[0] + y
        for k in range(1, len(times)):
            if times[k] > times[k - 1]:
                y = phi[k - 1] * y + noise[k - 1] * rng.standard_normal((n, prob.d))
            yield mean[k] + y

    @functools.lru_cache(maxsize=8)
    def _transitions(self, times: tuple, nu: float) -> tuple[np.ndarray, np.ndarray]:
        """phi and the noise's standard deviation between consecutive times (cached: floors
        draw the same paths' law many times)."""
        prob = self.problem
        t = np.asarray(times)
        var = prob.moments(t)[1]
        c = nu * prob.hbar / (2 * prob.mass)
        phi, noise = np.ones(len(t) - 1), np.zeros(len(t) - 1)
        for k in range(1, len(t)):
            if t[k] > t[k - 1]:
                inv, _ = quad(lambda s: 1.0 / float(prob.moments(s)[1]), t[k - 1], t[k],
                              limit=200)
                phi[k - 1] = math.sqrt(var[k] / var[k - 1]) * math.exp(-c * inv)
                noise[k - 1] = math.sqrt(max(var[k] - phi[k - 1] ** 2 * var[k - 1], 0.0))
        return phi, noise


# --- presets: the packet family's registered names -------------------------------------------
_ONE_D = "use harmonic_nd for other dimensions"


@dataclass(frozen=True)
class Harmonic1D(GaussianPacket):
    """A packet at rest, off the centre of a 1-D trap (the paper's harmonic oscillator)."""

    name = "harmonic_1d"
    description = "1-D packet at rest, off the trap centre (exact)"
    d: int = dim_param(1, fixed=True, hint=_ONE_D)


@dataclass(frozen=True)
class Harmonic1DMoving(GaussianPacket):
    """The 1-D harmonic packet with an initial momentum (S0 = -5 x)."""

    name = "harmonic_1d_moving"
    description = "1-D packet with initial momentum, phase -5 (exact)"
    d: int = dim_param(1, fixed=True, hint=_ONE_D)
    phase: float = param(-5.0, "initial phase gradient k in S0 = k * sum(x)")


@dataclass(frozen=True)
class HarmonicND(GaussianPacket):
    """The harmonic packet in d dimensions (default 3)."""

    name = "harmonic_nd"
    description = "d-dimensional packet in an isotropic trap (exact, any d)"
    d: int = dim_param(3)


@dataclass(frozen=True)
class Singular1D(GaussianPacket):
    """The delta-limit initial condition: a very narrow free packet.

    A true delta is not normalisable after t > 0, so the problem is its narrow-Gaussian limit,
    with var(t) = sigma2 + (hbar t / (2 m sigma))^2 (not the heat kernel's hbar t / m).
    """

    name = "singular_1d"
    description = "delta-like narrow free packet, sigma2=1e-4 (exact)"
    d: int = dim_param(1, fixed=True, hint="use harmonic_nd with omega=0 for other dimensions")
    omega: float = param(0.0, "trap frequency (0: free particle)", lo=0.0)
    center: float = param(0.0, "trap centre, the same in every coordinate")
    sigma2: float = param(1e-4, "initial variance per coordinate", lo=0.0, lo_open=True)
