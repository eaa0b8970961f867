"""Split-operator (split-step Fourier) propagation on a periodic box, spectrally accurate in space.

Scheme
------
The box is the problem's :class:`~problems.base.GridHint` box, where |psi|^2 is negligible on
[0, T], made periodic: the FFT (``scipy.fft``, with ``workers`` threads) then represents psi
exactly up to the Nyquist wavenumber pi / h, and the kinetic propagator exp(-i hbar k^2 dt / 2m)
is applied exactly in Fourier space.  One Strang step is

    psi <- exp(-i V dt / 2 hbar) F^-1 exp(-i hbar k^2 dt / 2m) F exp(-i V dt / 2 hbar) psi,

unitary and second order in dt.  Between consecutive steps the two half kicks are fused into
one, so a step costs one kick and one FFT pair; the half kicks are only split at the requested
times, where the whole state is needed.  ``order=4`` composes the Strang step as Yoshida's
triple jump S(c1 dt) S(c0 dt) S(c1 dt), c1 = 1 / (2 - 2^(1/3)), c0 = 1 - 2 c1 (negative): the
composition of a symmetric second-order method with these weights is fourth order (Yoshida 1990;
Hairer, Lubich & Wanner, Geometric Numerical Integration, II.4), at three FFT pairs per step.

Time-dependent potentials
-------------------------
Adding time as a coordinate tau with tau' = 1 makes the problem autonomous, with the split
H = A + B, A = T + (the shift of tau) and B = V(x, tau) (tau frozen).  A's flow is exact (free
motion while tau advances by dt; T does not depend on tau) and B's flow is the kick with V at the
current tau.  Strang's B/2 A B/2 is therefore

    exp(-i V(t + dt) dt / 2 hbar) F^-1 exp(-i T dt / hbar) F exp(-i V(t) dt / 2 hbar),

a symmetric second-order method of the autonomous problem, and the triple jump of it is fourth
order for the same reason as above: every kick uses V at the time its sub-step reaches, the
middle sub-step going backwards in time because c0 < 0.  (V at each sub-step's midpoint in both
half kicks is also symmetric, hence also second and, composed, fourth order; the choice here
lets the two half kicks at a sub-step boundary, which see the same tau, fuse into one evaluation
of V.)  Using the whole step's time for every sub-step would break the symmetry and leave the
composition second order.  The order is tested on a uniformly forced trap in
``tests/test_split_operator.py``.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np
import scipy.fft

from .march import check_times, march
from .observe import GridSolution, Observer, _slabs, grid_values
from .settings import SPLIT_ORDERS, SplitSettings

__all__ = ["ENGINE_VERSION", "COMPOSITIONS", "propagate"]

#: Bumped when a change here alters computed solutions, so that cached references are redone.
ENGINE_VERSION = 1

_C1 = 1.0 / (2.0 - 2.0 ** (1.0 / 3.0))
#: Sub-step fractions of one step: Strang, and Yoshida's triple jump of it.
COMPOSITIONS: dict[int, tuple[float, ...]] = {2: (1.0,), 4: (_C1, 1.0 - 2.0 * _C1, _C1)}


def _kinetic_marginal_energy(psi_k: np.ndarray, kinetic_axes: list[np.ndarray]) -> float:
    """sum_k T(k) |psi_k|^2 with T(k) = sum_a T_a(k_a), from the axis marginals of |psi_k|^2,
    walked slab by slab so that no grid-sized real array is made."""
    d = psi_k.ndim
    shape = psi_k.shape
    rest = int(np.prod(shape[1:])) if d > 1 else 1
    total = 0.0
    for start, stop in _slabs(shape[0], rest):
        block = psi_k[start:stop]
        power = block.real ** 2 + block.imag ** 2
        total += float(power.sum(axis=tuple(range(1, d))) @ kinetic_axes[0][start:stop]) \
            if d > 1 else float(power @ kinetic_axes[0][start:stop])
        for a in range(1, d):
            others = tuple(ax for ax in range(d) if ax != a)
            total += float(power.sum(axis=others) @ kinetic_axes[a])
    return total


class _Propagator:
    """The arrays and the sub-steps of one split-operator run."""

    def __init__(self, problem, settings: SplitSettings, psi: np.ndarray):
        self.problem, self.settings = problem, settings
        self.hbar = problem.hbar
        self.static = problem.static_potential
        self.axes = settings.axes()
        self.workers = max(1, int(settings.workers))
        k_axes = settings.wavenumbers()
        self.kinetic_axes = [(problem.hbar ** 2 / (2 * problem.mass)) * k**2 for k in k_axes]
        self.potential = grid_values(problem.potential, self.axes, float, t=0.0)
        self.psi = psi
        self._drifts: dict[float, np.ndarray] = {}
        self._kicks: dict[float, np.ndarray] = {}
        self._dt: float | None = None
        self._t_potential = 0.0
        self.ffts = 0
        self.potential_evaluations = 1

    # --- phase arrays ---------------------------------------------------------------------
    def _kinetic_grid(self) -> np.ndarray:
        total = np.zeros(self.psi.shape)
        d = self.psi.ndim
        for a, ka in enumerate(self.kinetic_axes):
            total += ka.reshape((-1,) + (1,) * (d - 1 - a))
        return total

    def _use_step(self, dt: float) -> None:
        """Phase arrays are per step size; a new size (uneven time grids) rebuilds them."""
        if dt != self._dt:
            self._drifts.clear()
            self._kicks.clear()
            self._dt = dt

    def _drift_phase(self, c: float, dt: float) -> np.ndarray:
        if c not in self._drifts:
            kin = self._kinetic_grid()
            kin *= -c * dt / self.hbar
            self._drifts[c] = np.exp(1j * kin)
        return self._drifts[c]

    def _set_potential(self, t: float) -> None:
        if not self.static and t != self._t_potential:
            grid_values(self.problem.potential, self.axes, float, out=self.potential, t=float(t))
            self._t_potential = t
            self.potential_evaluations += 1

    def kick(self, weight: float, dt: float, t: float) -> None:
        """psi <- exp(-i V(t) weight dt / hbar) psi."""
        if self.static:
            if weight not in self._kicks:
                self._kicks[weight] = np.exp((-1j * weight * dt / self.hbar) * self.potential)
            self.psi *= self._kicks[weight]
            return
        self._set_potential(t)
        self.psi *= np.exp((-1j * weight * dt / self.hbar) * self.potential)

    def drift(self, c: float, dt: float) -> None:
        """psi <- F^-1 exp(-i T c dt / hbar) F psi, in place."""
        psi_k = scipy.fft.fftn(self.psi, workers=self.workers, overwrite_x=True)
        psi_k *= self._drift_phase(c, dt)
        self.psi = scipy.fft.ifftn(psi_k, workers=self.workers, overwrite_x=True)
        self.ffts += 2

    def kinetic_energy(self, cell: float) -> float:
        """<psi|T|psi> (sum times the cell volume), exact for the grid's trigonometric psi."""
        psi_k = scipy.fft.fftn(self.psi, workers=self.workers)
        self.ffts += 1
        # Parseval: sum_x |psi|^2 = (1/N) sum_k |psi_k|^2
        return _kinetic_marginal_energy(psi_k, self.kinetic_axes) * cell / psi_k.size

    def interval(self, t0: float, dt: float, k: int, tick: Callable[[], None]) -> None:
        """k composed steps of size dt from t0, half kicks at both ends, fused ones inside."""
        self._use_step(dt)
        coeffs = COMPOSITIONS[self.settings.order]
        s = len(coeffs)
        t = t0
        self.kick(coeffs[0] / 2, dt, t)
        for step in range(k):
            for i, c in enumerate(coeffs):
                self.drift(c, dt)
                t += c * dt
                last = step == k - 1 and i == s - 1
                if not last:
                    nxt = coeffs[(i + 1) % s]
                    self.kick((c + nxt) / 2, dt, t)
            tick()
        self.kick(coeffs[-1] / 2, dt, t0 + k * dt)


def propagate(problem, settings: SplitSettings, times: np.ndarray,
              progress: bool | None = None, time_limit_s: float | None = None) -> GridSolution:
    """Solve ``problem`` on ``settings``' periodic grid and return observables at ``times``.

    ``times`` must be non-decreasing and start at or after 0.  Each interval between consecutive
    times is split into equal steps no longer than ``settings.dt``.  ``progress`` shows a tqdm
    bar (None: only on a terminal).  ``time_limit_s`` stops with ``TimeoutError`` (checked after
    every step).  The returned solution's ``info["max_wall_mass"]`` is the probability that
    reached the outer 5 % of the box: if it is not negligible, the periodic images interact and
    the box (``box_scale``) is too small.
    """
    times = check_times(times)
    d, n = settings.d, settings.n
    if d != problem.d:
        raise ValueError(f"grid has {d} coordinates but the problem has d={problem.d}")
    if settings.order not in SPLIT_ORDERS:
        raise ValueError(f"split-operator order must be one of {SPLIT_ORDERS}, "
                         f"got {settings.order}")
    if settings.dt <= 0:
        raise ValueError(f"the time step must be positive, got {settings.dt}")
    started = time.perf_counter()

    axes = settings.axes()
    cell = float(np.prod(settings.spacing))
    psi = grid_values(problem.psi0, axes, np.complex128)
    norm0 = float(np.vdot(psi.ravel(), psi.ravel()).real * cell)
    psi /= math.sqrt(norm0)
    prop = _Propagator(problem, settings, psi)
    observer = Observer(axes, len(times))

    def observe(j: int, t: float) -> None:
        prop._set_potential(t)
        observer.record(j, prop.psi, prop.kinetic_energy(cell), prop.potential)

    steps = march(times, settings.dt, prop.interval, observe, label=f"split-operator {d}d n={n}",
                  started=started, time_limit_s=time_limit_s, progress=progress)

    info = {
        "grid": settings.as_dict(),
        "method": settings.method,
        "engine_version": ENGINE_VERSION,
        "steps": steps,
        "ffts": prop.ffts,
        "potential_evaluations": prop.potential_evaluations,
        "initial_norm_before_normalising": norm0,
        "static_potential": prop.static,
        "seconds": time.perf_counter() - started,
    }
    return observer.solution(times, info)
