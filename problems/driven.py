"""A Gaussian packet in a harmonic trap driven by a uniform periodic force.

V(x, t) = 1/2 m omega^2 |x - c|^2 - F0 sin(Omega t) sum_i x_i,  psi0 as in :mod:`problems.packet`.

A force uniform in space shifts the packet without deforming it (DESIGN.md section 2): the state
stays Gaussian with the undriven variance, and each coordinate's mean obeys the classical forced
oscillator m x'' = -m omega^2 (x - c) + F0 sin(Omega t), x(0) = 0, x'(0) = hbar k / m.  The mean is
the packet's plus the response to the force from rest, (F0 / m) P(t), with (Duhamel)

    P(t)  = int_0^t sin(omega (t - s)) / omega * sin(Omega s) ds
          = (omega sin(Omega t) - Omega sin(omega t)) / (omega (omega^2 - Omega^2))
          = t / (2 omega) [sinc(Sigma t) cos(Delta t) - cos(Sigma t) sinc(Delta t)],
    P'(t) = Omega (cos(Omega t) - cos(omega t)) / (omega^2 - Omega^2)
          = (Omega t^2 / 2) sinc(Sigma t) sinc(Delta t),

where Sigma = (omega + Omega) / 2, Delta = (omega - Omega) / 2 and sinc(x) = sin(x) / x.  The
product-to-sum forms never divide by omega - Omega: at resonance (Delta = 0) they are the secular
P = (sin(omega t) - omega t cos(omega t)) / (2 omega^2), P' = t sin(omega t) / 2.  P' is stable for
every omega, Omega >= 0.  P still divides by omega: for |omega t| < 1e-2 it is summed as the
series in omega^2 (from P'' = sin(Omega t) - omega^2 P, each term the double integral of the last)

    P = t^2 K1(Omega t) - omega^2 t^4 K2(Omega t) + omega^4 t^6 K3(Omega t) - ...,
    K_n(x) = sum_i (-1)^i x^(2i+1) / (2n + 2i + 1)!   (K1 = (x - sin x) / x^2, ...),

whose first omitted term, omega^6 t^8 K4, is at most 2e-4 (omega t)^6 < 1e-15 of the first; the
closed form's rounding error, about eps t / omega absolute, is 1e-14 t^2 at the switch.
omega = 0, the free particle with a force, is the series' first term
P = (Omega t - sin(Omega t)) / Omega^2.  Omega = 0 is no force (P = 0).

The velocities are the packet's with the driven mean: u = -(hbar/2m)(x - mean)/var and
v = mean' + var'/(2 var)(x - mean).  Y = X - mean(t) obeys the same linear SDE as the undriven
packet's, so :class:`~problems.packet.PacketReference` (which reads mean and var from
:meth:`GaussianPacket.moments`) gives exact samples and exact paths unchanged.

The energy is not conserved: <H>(t) = d [m/2 (mean'^2 + var'^2 / (4 var) + (hbar/2m)^2 / var)
+ m omega^2 / 2 (var + (mean - c)^2) - F0 sin(Omega t) mean], and d<H>/dt = <dV/dt> =
-d F0 Omega cos(Omega t) mean(t).  At t = 0 the force vanishes and <H> is the packet's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core import param
from .base import Invariants, as_time, dim_param, xp_of
from .packet import GaussianPacket

__all__ = ["HarmonicDriven", "forced_response"]

#: Below this |omega t| the response from rest is summed as a series in omega^2 (the closed form
#: divides by omega): the series' first omitted term is at most 2e-4 (omega t)^6 of the first.
SMALL_OMEGA_T = 1e-2
#: Below this |Omega t| the kernels K_n are summed as their power series (the closed forms cancel).
SMALL_X = 1.0
#: Terms of the K_n series: x^19 / 19! < 1e-17 for |x| < 1.
_SERIES_TERMS = 10


def _kernel(n: int, x):
    """K_n(x) = sum_i (-1)^i x^(2i+1) / (2n + 2i + 1)!: the sine series' tail from the term
    x^(2n+1) on, divided by (-1)^n x^(2n); n = 1, 2, 3 are used."""
    xp = xp_of(x)
    inside = xp.abs(x) < SMALL_X
    # each branch on a safe argument, so that the branch not taken stays finite (a NaN or inf
    # there would still poison torch.where's gradient)
    xi = xp.where(inside, x, 0.0 * x)
    series = 0.0 * xi
    for i in reversed(range(_SERIES_TERMS)):
        series = series * (-xi * xi) + 1.0 / math.factorial(2 * n + 2 * i + 1)
    series = series * xi
    # the closed form at |x| >= 1, where its cancellation is harmless
    xo = xp.where(inside, 0.0 * x + 1.0, x)
    head = 0.0 * xo
    for j in range(n):  # x - x^3/3! + ... with the terms of degree < 2n
        head = head + (-1) ** j * xo ** (2 * j + 1) / math.factorial(2 * j + 1)
    closed = (-1) ** n * (xp.sin(xo) - head) / xo ** (2 * n)
    return xp.where(inside, series, closed)


def forced_response(t, omega: float, drive: float):
    """P(t) and P'(t): the response x(t) - x_undriven(t) of m x'' = -m omega^2 x + m sin(drive t)
    from rest (multiply by F0 / m).  ``t`` is NumPy or torch; continuous in omega and drive,
    resonance and omega = 0 included (see the module docstring for the formulas)."""
    xp = xp_of(t)
    sig, dlt = 0.5 * (omega + drive), 0.5 * (omega - drive)
    # unnormalised sinc(a t) = sinc_pi(a t / pi)
    sinc = lambda a: xp.sinc(a * t / math.pi)
    dp = 0.5 * drive * t * t * sinc(sig) * sinc(dlt)
    x = drive * t
    small = t * t * (_kernel(1, x) - omega**2 * t * t * (_kernel(2, x)
                                                          - omega**2 * t * t * _kernel(3, x)))
    if omega == 0.0:
        return small, dp
    big = t / (2.0 * omega) * (sinc(sig) * xp.cos(dlt * t) - xp.cos(sig * t) * sinc(dlt))
    return xp.where(xp.abs(omega * t) < SMALL_OMEGA_T, small, big), dp


@dataclass(frozen=True)
class HarmonicDriven(GaussianPacket):
    """The harmonic packet pushed by the force F0 sin(Omega t) on every coordinate; exact in any d.

    Parameters
    ----------
    d, hbar, mass, omega, center, sigma2, phase, t_final
        As for :class:`~problems.packet.GaussianPacket` (defaults those of ``harmonic_1d``, but
        any d is allowed).
    force : float
        Amplitude F0 of the force on each coordinate (any sign).
    drive_omega : float
        Angular frequency Omega of the force (>= 0; Omega = omega is resonant, the mean's
        amplitude then grows linearly in t).
    """

    name = "harmonic_driven"
    description = "packet in a trap driven by F0 sin(Omega t) on every coordinate (exact, any d)"
    static_potential = False

    d: int = dim_param(1)
    force: float = param(0.5, "force amplitude F0 in V = ... - F0 sin(Omega t) sum(x)")
    drive_omega: float = param(2.0, "angular frequency Omega of the force", lo=0.0)

    def moments(self, t) -> tuple:
        """The packet's (mean, var, mean', var') with the forced response added to the mean."""
        mean, var, dmean, dvar = super().moments(t)
        if xp_of(t) is np:
            t = np.asarray(t, dtype=float)
        p, dp = forced_response(t, self.omega, self.drive_omega)
        f = self.force / self.mass
        return mean + f * p, var, dmean + f * dp, dvar

    def _drive(self, x, t):
        """F0 sin(Omega t): a float, or an array of shape t.shape in x's library."""
        t = as_time(t, x)
        if isinstance(t, float):
            return self.force * math.sin(self.drive_omega * t)
        return self.force * xp_of(x).sin(self.drive_omega * t)

    def potential(self, x, t=0.0):
        return super().potential(x) - self._drive(x, t) * x.sum(-1)

    def grad_potential(self, x, t=0.0):
        drive = self._drive(x, t)
        if not isinstance(drive, float):
            drive = drive[..., None]
        return super().grad_potential(x) - drive

    def exact_energy(self, t: float = 0.0) -> float:
        """<H(t)> (not conserved; see the module docstring).  At t = 0 it is the packet's."""
        mean, var, dmean, dvar = (float(a) for a in self.moments(float(t)))
        m, hb = self.mass, self.hbar
        kinetic = 0.5 * m * (dmean**2 + dvar**2 / (4 * var) + (hb / (2 * m)) ** 2 / var)
        trap = 0.5 * m * self.omega**2 * (var + (mean - self.center) ** 2)
        return self.d * (kinetic + trap - self.force * math.sin(self.drive_omega * t) * mean)

    def invariants(self) -> Invariants:
        zero_mean = (self.phase == 0 and (self.center == 0 or self.omega == 0)
                     and (self.force == 0 or self.drive_omega == 0))
        return Invariants(zero_mean=zero_mean, energy=self.exact_energy(0.0),
                          energy_conserved=False)
