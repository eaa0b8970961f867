"""Observables of a wave function on a uniform grid: the one place both engines compute them.

Everything a record needs is a function of |psi|^2 (and, for the energy, of psi and the engine's
kinetic operator): per-coordinate marginals, means and variances, the variance of the mean
coordinate, the pair-distance density of x_0 - x_1, the norm, the probability in the outer bands
of the box ("wall mass") and <H>.  All of them follow from the 2-D joint marginals of every pair
of coordinates, which :class:`Observer` accumulates slab by slab along the first axis, so that no
array of the grid's size is allocated here (at 257^3 points one real copy is 136 MB, and the
observables are taken up to 101 times per run).

Functions on the grid (potential, initial state) are evaluated by :func:`grid_values`, also slab
by slab: a full meshgrid of d coordinates would cost 8 d bytes per point (16 d with the stacked
copy), more than psi itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from scipy.interpolate import CubicSpline

from .settings import WALL_BAND

__all__ = ["GridSolution", "Observer", "grid_values", "cdf_from_density", "SLAB_POINTS"]

#: Points per slab when the grid is walked in pieces (4 MB of complex numbers; a slab of the
#: bosons potential at d = 4 makes ~500 bytes of temporaries per point).
SLAB_POINTS = 2**18


def _slabs(n0: int, rest: int):
    """Row ranges of the first axis holding about :data:`SLAB_POINTS` points each."""
    rows = max(1, SLAB_POINTS // max(rest, 1))
    for start in range(0, n0, rows):
        yield start, min(start + rows, n0)


def grid_values(fn: Callable, axes: list[np.ndarray], dtype, out: np.ndarray | None = None,
                **kwargs) -> np.ndarray:
    """``fn(x, **kwargs)`` on the tensor grid of ``axes``, shape (n_0, ..., n_{d-1}).

    ``fn`` takes points of shape (..., d) (a problem's ``potential``, ``psi0``); it is called
    once per slab of the first axis, with a slab-sized meshgrid only.
    """
    shape = tuple(len(a) for a in axes)
    if out is None:
        out = np.empty(shape, dtype=dtype)
    rest = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    for start, stop in _slabs(shape[0], rest):
        mesh = np.stack(np.meshgrid(axes[0][start:stop], *axes[1:], indexing="ij"), axis=-1)
        out[start:stop] = np.asarray(fn(mesh, **kwargs))
    return out


@dataclass
class GridSolution:
    """Observables of a grid solution at the requested times.

    ``marginal_x[i]`` are coordinate ``i``'s grid points, ``marginal_density[t, i]`` its marginal
    density there.  ``pair_x`` / ``pair_density[t]`` are the same for the pair distance
    x_0 - x_1 (empty when d = 1).  ``norm`` is the discrete integral of |psi|^2 (1 at t=0),
    ``wall_mass`` the probability within the outer 5 % of the box (summed over coordinates),
    ``energy`` <H(t)>.
    """

    times: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    com_var: np.ndarray
    energy: np.ndarray
    norm: np.ndarray
    wall_mass: np.ndarray
    marginal_x: np.ndarray
    marginal_density: np.ndarray
    pair_x: np.ndarray
    pair_density: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    ARRAYS = ("times", "mean", "var", "com_var", "energy", "norm", "wall_mass", "marginal_x",
              "marginal_density", "pair_x", "pair_density")

    def marginal_cdf(self, coord: int, x: np.ndarray) -> np.ndarray:
        """The marginal CDF of coordinate ``coord`` at points ``x``, shape (T, len(x))."""
        return cdf_from_density(self.marginal_x[coord], self.marginal_density[:, coord], x)

    def pair_cdf(self, z: np.ndarray) -> np.ndarray | None:
        """The CDF of x_0 - x_1 at points ``z``, shape (T, len(z)); None when d = 1."""
        if self.pair_x.size == 0:
            return None
        return cdf_from_density(self.pair_x, self.pair_density, z)

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in self.ARRAYS}


def cdf_from_density(grid: np.ndarray, density: np.ndarray, x: np.ndarray) -> np.ndarray:
    """CDF at ``x`` of densities sampled on a uniform ``grid`` (rows of ``density``).

    The density is interpolated by a cubic spline through the grid values (zero one spacing
    beyond each end, where the box holds no probability) and integrated exactly (scipy's
    ``CubicSpline.antiderivative``): the CDF is then accurate to O(h^4) between grid points, where
    a piecewise-constant density would give O(h^2) and make two grids of different spacing
    disagree by more than their solutions do.  Small negative lobes of the spline in the far
    tails are removed by making each CDF non-decreasing; each is normalised to end at 1.
    """
    grid = np.asarray(grid, dtype=float)
    h = grid[1] - grid[0]
    knots = np.concatenate([[grid[0] - h], grid, [grid[-1] + h]])
    density = np.atleast_2d(density)
    padded = np.pad(density, ((0, 0), (1, 1)))
    spline = CubicSpline(knots, padded, axis=1, bc_type="natural").antiderivative()
    x = np.asarray(x, dtype=float)
    inside = np.clip(x, knots[0], knots[-1])
    cum = spline(inside) - spline(knots[0])[:, None]  # (T, len(x))
    total = spline(knots[-1]) - spline(knots[0])  # (T,)
    cum = np.clip(cum / total[:, None], 0.0, 1.0)
    if np.all(np.diff(x) >= 0):
        cum = np.maximum.accumulate(cum, axis=1)
    cum[:, x <= knots[0]] = 0.0
    cum[:, x >= knots[-1]] = 1.0
    return cum


class Observer:
    """Accumulates the observables of psi at each requested time (see the module docstring).

    Parameters
    ----------
    axes : list of arrays
        The grid points of each coordinate (uniform spacing per coordinate).
    n_times : int
        How many times will be recorded.
    """

    def __init__(self, axes: list[np.ndarray], n_times: int):
        self.axes = [np.asarray(a, dtype=float) for a in axes]
        self.d = d = len(axes)
        self.shape = tuple(len(a) for a in axes)
        self.spacing = [float(a[1] - a[0]) for a in self.axes]
        self.cell = float(np.prod(self.spacing))
        T = n_times
        n = max(self.shape)
        self.mean, self.var = np.zeros((T, d)), np.zeros((T, d))
        self.dens = np.zeros((T, d, n))
        self.scalars = {k: np.zeros(T) for k in ("com_var", "energy", "norm", "wall_mass")}
        self.band = [max(1, int(round(WALL_BAND * m))) for m in self.shape]
        self.pairs = [(a, b) for a in range(d) for b in range(a + 1, d)]
        # pair distance x_0 - x_1: on equal spacings the differences are (lo0 - lo1) + (i - j) h
        self.has_pair = d >= 2 and math.isclose(self.spacing[0], self.spacing[1], rel_tol=1e-12) \
            and self.shape[0] == self.shape[1]
        if self.has_pair:
            m, h = self.shape[0], self.spacing[0]
            self.pair_x = (self.axes[0][0] - self.axes[1][0]) + h * np.arange(-(m - 1), m)
            self._diag = (np.arange(m)[:, None] - np.arange(m)[None, :] + m - 1).ravel()
            self.pair_dens = np.zeros((T, 2 * m - 1))
        else:
            self.pair_x, self.pair_dens = np.empty(0), np.zeros((T, 0))

    def record(self, j: int, psi: np.ndarray, kinetic: float, potential: np.ndarray) -> None:
        """Record time index ``j``.

        ``kinetic`` is the engine's <psi|T|psi> (sum over points times the cell volume, psi not
        renormalised); ``potential`` is V on the grid at this time.
        """
        d, cell = self.d, self.cell
        joints = {pair: np.zeros((self.shape[pair[0]], self.shape[pair[1]])) for pair in self.pairs}
        first = np.zeros(self.shape[0])
        pot = 0.0
        rest = int(np.prod(self.shape[1:])) if d > 1 else 1
        for start, stop in _slabs(self.shape[0], rest):
            block = psi[start:stop]
            rho = block.real ** 2 + block.imag ** 2
            pot += float(np.vdot(rho.ravel(), potential[start:stop].ravel()))
            if d == 1:
                first[start:stop] = rho
                continue
            for a, b in self.pairs:
                others = tuple(ax for ax in range(d) if ax not in (a, b))
                part = rho.sum(axis=others) if others else rho
                if a == 0:
                    joints[(a, b)][start:stop] = part
                else:
                    joints[(a, b)] += part
        # marginals (probability per point), from the pair joints
        if d == 1:
            margs = [first]
        else:
            margs = [joints[(0, 1)].sum(axis=1), joints[(0, 1)].sum(axis=0)]
            margs += [joints[(0, b)].sum(axis=0) for b in range(2, d)]
        total = float(margs[0].sum())
        norm = total * cell
        self.scalars["norm"][j] = norm
        self.scalars["energy"][j] = (kinetic + pot * cell) / norm
        wall = 0.0
        for i, marg in enumerate(margs):
            marg = marg / total
            self.dens[j, i, : len(marg)] = marg / self.spacing[i]
            m = float(marg @ self.axes[i])
            self.mean[j, i] = m
            self.var[j, i] = float(marg @ (self.axes[i] - m) ** 2)
            wall += float(marg[: self.band[i]].sum() + marg[-self.band[i]:].sum())
        self.scalars["wall_mass"][j] = wall
        # Var((1/d) sum x_i) = (1/d^2) (sum_i var_i + 2 sum_{i<j} cov_ij)
        acc = float(self.var[j].sum())
        for a, b in self.pairs:
            cab = self.axes[a] - self.mean[j, a]
            cbb = self.axes[b] - self.mean[j, b]
            acc += 2.0 * float(cab @ joints[(a, b)] @ cbb) / total
        self.scalars["com_var"][j] = acc / d**2
        if self.has_pair:
            joint = joints[(0, 1)] / total
            self.pair_dens[j] = np.bincount(self._diag, weights=joint.ravel(),
                                            minlength=self.pair_dens.shape[1]) / self.spacing[0]

    def solution(self, times: np.ndarray, info: dict[str, Any]) -> GridSolution:
        info = dict(info, max_wall_mass=float(self.scalars["wall_mass"].max()),
                    max_norm_drift=float(np.max(np.abs(self.scalars["norm"] - 1.0))))
        return GridSolution(times=np.asarray(times, dtype=float), mean=self.mean, var=self.var,
                            marginal_x=np.stack(self.axes), marginal_density=self.dens,
                            pair_x=self.pair_x, pair_density=self.pair_dens, info=info,
                            **self.scalars)
