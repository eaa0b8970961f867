"""A test-local problem: a Gaussian packet in a uniformly forced harmonic trap (exact solution).

V(x, t) = 1/2 m omega^2 |x - c|^2 - F0 sin(W t) sum_i x_i.  A uniform force leaves the packet
Gaussian with the undriven variance (DESIGN.md section 2); each mean follows the classical forced
oscillator m x'' = -m omega^2 (x - c) + F0 sin(W t), x(0) = 0, x'(0) = hbar k / m:

    x(t) = c + A cos(omega t) + B sin(omega t) + P sin(W t),   P = (F0/m) / (omega^2 - W^2),
    A = -c,   B = (hbar k / m - P W) / omega.

Not registered: the ``harmonic_driven`` problem is another branch's; this one only tests the
grid engines' handling of time-dependent potentials.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core import param
from problems.base import xp_of
from problems.packet import GaussianPacket


@dataclass(frozen=True)
class ForcedTrap(GaussianPacket):
    name = "forced_trap_test"
    description = "Gaussian packet in a uniformly forced trap (test only)"
    static_potential = False

    hbar: float = param(0.05, "reduced Planck constant", lo=0.0, lo_open=True)
    center: float = param(0.0, "trap centre, the same in every coordinate")
    force: float = param(1.0, "force amplitude F0")
    drive: float = param(3.0, "drive frequency W (must differ from omega)", lo=0.0, lo_open=True)
    t_final: float = param(2.0, "final time T", lo=0.0, lo_open=True)

    def __post_init__(self):
        super().__post_init__()
        if math.isclose(self.drive, self.omega):
            raise ValueError("drive == omega is resonant; choose another drive frequency")

    def _force(self, t):
        xp = xp_of(t)
        return self.force * (xp.sin(self.drive * t) if xp is not np else np.sin(self.drive * t))

    def potential(self, x, t=0.0):
        trap = 0.5 * self.mass * self.omega**2 * ((x - self.center) ** 2).sum(-1)
        return trap - self._force(t) * x.sum(-1)

    def grad_potential(self, x, t=0.0):
        return self.mass * self.omega**2 * (x - self.center) - self._force(t) * (0.0 * x + 1.0)

    def moments(self, t):
        _, var, _, dvar = super().moments(t)
        xp = xp_of(t)
        if xp is np:
            t = np.asarray(t, dtype=float)
        w, W, m = self.omega, self.drive, self.mass
        P = (self.force / m) / (w * w - W * W)
        A = -self.center
        B = (self.hbar * self.phase / m - P * W) / w
        mean = self.center + A * xp.cos(w * t) + B * xp.sin(w * t) + P * xp.sin(W * t)
        dmean = -A * w * xp.sin(w * t) + B * w * xp.cos(w * t) + P * W * xp.cos(W * t)
        return mean, var, dmean, dvar

    def exact_energy(self) -> float:
        # V(x, 0) has no force term (sin 0 = 0): the undriven packet's energy at t = 0
        return super().exact_energy()
