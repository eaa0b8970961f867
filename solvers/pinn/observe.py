"""Observables of a wave function given as a torch callable psi(xt) -> (a, b).

Integrals over the problem's box: for d <= 2 on a tensor-product grid with trapezoid weights,
for d >= 3 by scrambled Sobol points (quasi-Monte Carlo, equal weights).  At every time the
density |psi|^2 is normalised by its own integral, so an unnormalised network still yields
moments of a probability law; the integral itself is reported as the norm (and its worst
distance from 1 as ``norm_drift``), because a PINN that loses or gains norm is a known failure
mode that normalisation would otherwise hide.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from .physics import as_tensor, with_time

__all__ = ["QuadratureRule", "quadrature_rule", "Moments", "moments", "velocity", "CHUNK"]

#: Points per forward/backward pass when evaluating a network (bounds memory).
CHUNK = 16384
#: Grids are used up to this dimension; above it, quasi-Monte Carlo.
GRID_MAX_D = 2


@dataclass
class QuadratureRule:
    """Points (n, d) and weights (n,) that integrate over the box; ``kind`` says how."""

    points: np.ndarray
    weights: np.ndarray
    kind: str
    axes: list[np.ndarray] | None = None  # grid nodes per coordinate (grids only)


def quadrature_rule(lo, hi, *, grid_points: int, qmc_points: int, seed: int = 0) -> QuadratureRule:
    """A grid rule (d <= 2, ``grid_points`` per axis) or a scrambled Sobol rule (d >= 3)."""
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    d = len(lo)
    if d <= GRID_MAX_D:
        axes = [np.linspace(lo[i], hi[i], grid_points) for i in range(d)]
        w1 = []
        for ax in axes:
            w = np.full(grid_points, ax[1] - ax[0])
            w[0] = w[-1] = 0.5 * (ax[1] - ax[0])
            w1.append(w)
        mesh = np.meshgrid(*axes, indexing="ij")
        points = np.stack([m.ravel() for m in mesh], axis=1)
        weights = np.ones(1)
        for w in w1:
            weights = np.multiply.outer(weights, w)
        return QuadratureRule(points, weights.ravel(), "grid", axes)
    from scipy.stats import qmc

    m = int(np.ceil(np.log2(qmc_points)))
    unit = qmc.Sobol(d, scramble=True, seed=seed).random_base2(m)
    points = lo + unit * (hi - lo)
    volume = float(np.prod(hi - lo))
    return QuadratureRule(points, np.full(len(points), volume / len(points)), "sobol")


def _evaluate(psi: Callable, x: torch.Tensor, t: float, grads: bool):
    """a, b (n,) and, if asked, the spatial gradients (n, d), in float64 NumPy."""
    d = x.shape[1]
    a_s, b_s, ga_s, gb_s = [], [], [], []
    for start in range(0, x.shape[0], CHUNK):
        xt = with_time(x[start:start + CHUNK], t)
        if grads:
            xt.requires_grad_(True)
            y = psi(xt)
            ga = torch.autograd.grad(y[:, 0].sum(), xt, retain_graph=True)[0][:, :d]
            gb = torch.autograd.grad(y[:, 1].sum(), xt)[0][:, :d]
            ga_s.append(ga.detach().double().cpu().numpy())
            gb_s.append(gb.detach().double().cpu().numpy())
        else:
            with torch.no_grad():
                y = psi(xt)
        y = y.detach().double().cpu().numpy()
        a_s.append(y[:, 0])
        b_s.append(y[:, 1])
    a, b = np.concatenate(a_s), np.concatenate(b_s)
    if grads:
        return a, b, np.concatenate(ga_s), np.concatenate(gb_s)
    return a, b, None, None


@dataclass
class Moments:
    """Observables on a time grid, from a quadrature rule (see :func:`moments`)."""

    times: np.ndarray
    norm: np.ndarray          # (T,) integral of |psi|^2
    mean: np.ndarray          # (T, d)
    var: np.ndarray           # (T, d)
    com_var: np.ndarray       # (T,)
    energy: np.ndarray | None  # (T,)
    rule: QuadratureRule
    prob: np.ndarray          # (T, n) normalised probability weight of every rule point
    extra: dict = field(default_factory=dict)

    @property
    def norm_drift(self) -> float:
        return float(np.max(np.abs(self.norm - 1.0)))

    def marginal_cdf(self, coord: int, x) -> np.ndarray:
        """CDF of coordinate ``coord`` at ``x``, shape (T, len(x)).

        Grid rules: the marginal density on the grid nodes, taken as linear between them and
        integrated exactly (at the nodes this is the trapezoid rule, which ends at exactly 1, the
        weights' own normalisation);
        QMC rules: the weighted empirical CDF of the points.
        """
        x = np.asarray(x, dtype=float)
        rule = self.rule
        if rule.kind == "grid":
            axes = rule.axes
            n = [len(ax) for ax in axes]
            node = axes[coord]
            h = node[1] - node[0]
            w_node = np.full(len(node), h)
            w_node[0] = w_node[-1] = 0.5 * h
            p = self.prob.reshape((len(self.times), *n))
            other = tuple(i + 1 for i in range(len(n)) if i != coord)
            # prob = density * weight; the marginal density at a node is the sum over the other
            # axes divided by this axis' weight
            marg = (p.sum(axis=other) if other else p) / w_node
            cum = np.concatenate([np.zeros((len(self.times), 1)),
                                  np.cumsum(0.5 * h * (marg[:, 1:] + marg[:, :-1]), axis=1)], axis=1)
            # the density is linear between nodes, so the CDF is quadratic there
            j = np.clip(np.floor((x - node[0]) / h).astype(int), 0, len(node) - 2)
            s = np.clip(x - node[j], 0.0, h)
            slope = (marg[:, j + 1] - marg[:, j]) / h
            out = cum[:, j] + marg[:, j] * s + 0.5 * slope * s * s
            out[:, x < node[0]] = 0.0
            out[:, x >= node[-1]] = cum[:, -1:]
            # rounding must not make the CDF decrease anywhere (its differences are weights)
            order = np.argsort(x, kind="stable")
            out[:, order] = np.maximum.accumulate(out[:, order], axis=1)
            return out
        return self._weighted_cdf(rule.points[:, coord], x)

    def pair_cdf(self, z) -> np.ndarray | None:
        """CDF of the pair distance x_0 - x_1 at ``z``, shape (T, len(z)) (None when d = 1):
        the weighted empirical CDF of the rule's points."""
        if self.rule.points.shape[1] < 2:
            return None
        return self._weighted_cdf(self.rule.points[:, 0] - self.rule.points[:, 1],
                                  np.asarray(z, dtype=float))

    def _weighted_cdf(self, values: np.ndarray, x: np.ndarray) -> np.ndarray:
        order = np.argsort(values, kind="stable")
        cum = np.cumsum(self.prob[:, order], axis=1)
        idx = np.searchsorted(values[order], x, side="right")
        padded = np.concatenate([np.zeros((len(self.times), 1)), cum], axis=1)
        return padded[:, idx]


def moments(psi: Callable, problem, times, rule: QuadratureRule, *, dtype=torch.float64,
            device="cpu", energy: bool = True) -> Moments:
    """Norm, per-coordinate mean and variance, centre-of-mass variance and <H> at ``times``.

    <H> = int [(hbar^2 / 2m) |grad psi|^2 + V |psi|^2] / int |psi|^2 (the kinetic term after an
    integration by parts, whose wall term vanishes with psi on the walls).
    """
    times = np.asarray(times, dtype=float)
    x_np = rule.points
    x = as_tensor(x_np, dtype, device)
    w = rule.weights
    static = problem.static_potential
    V = np.asarray(problem.potential(x_np), dtype=float) if energy and static else None
    kin = problem.hbar**2 / (2 * problem.mass)
    com = x_np.mean(axis=1)
    T, d = len(times), problem.d
    norm = np.empty(T)
    mean = np.empty((T, d))
    var = np.empty((T, d))
    com_var = np.empty(T)
    energies = np.empty(T) if energy else None
    prob = np.empty((T, len(w)))
    for j, t in enumerate(times):
        a, b, ga, gb = _evaluate(psi, x, float(t), grads=energy)
        rho = a * a + b * b
        norm[j] = float(np.dot(w, rho))
        p = w * rho / norm[j]
        prob[j] = p
        mean[j] = p @ x_np
        var[j] = p @ (x_np - mean[j]) ** 2
        com_mean = float(p @ com)
        com_var[j] = float(p @ (com - com_mean) ** 2)
        if energy:
            if not static:  # <H(t)> with the potential of time t
                V = np.asarray(problem.potential(x_np, float(t)), dtype=float)
            grad_sq = np.sum(ga * ga + gb * gb, axis=1)
            energies[j] = float(np.dot(w, kin * grad_sq + V * rho)) / norm[j]
    return Moments(times, norm, mean, var, com_var, energies, rule, prob)


def velocity(psi: Callable, problem, x, t: float, *, dtype=torch.float64,
             device="cpu") -> tuple[np.ndarray, np.ndarray]:
    """Osmotic and current velocities of psi at points ``x`` (n, d) and time ``t``.

    With rho = a^2 + b^2:  u = (hbar/m) (a grad a + b grad b) / rho  (= (hbar/2m) grad log rho),
    v = (hbar/m) (a grad b - b grad a) / rho  (= (hbar/m) grad S).
    """
    x_t = as_tensor(np.atleast_2d(x), dtype, device)
    a, b, ga, gb = _evaluate(psi, x_t, float(t), grads=True)
    rho = (a * a + b * b)[:, None]
    rho = np.maximum(rho, np.finfo(float).tiny)
    c = problem.hbar / problem.mass
    u = c * (a[:, None] * ga + b[:, None] * gb) / rho
    v = c * (a[:, None] * gb - b[:, None] * ga) / rho
    return u, v
