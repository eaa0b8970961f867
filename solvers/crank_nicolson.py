"""The classical reference method: Crank–Nicolson finite differences on a grid (d <= 3).

The numerics live in :mod:`problems.propagator` (shared with cached grid references); this module
adapts them to the solver contract: grid choice from the problem's physical scales, declining
what does not fit, and observables on the record's time grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core import Parametrized, param
from problems.propagator import STENCILS, grid_memory_bytes, plan_grid, propagate

from .base import Budget, Clock, Observables, Solver

__all__ = ["CrankNicolson"]

MAX_D = 3


class CrankNicolson(Solver):
    """Crank–Nicolson in time, centred finite differences in space, Dirichlet walls.

    The grid comes from the problem's :class:`~problems.base.GridHint`: a box where |psi| is
    negligible throughout, ``points_per_wavelength`` points on the shortest wavelength, and a
    step that turns the energy spread's phase by ``phase_step`` radians.  The defaults reach
    relative errors of a few 1e-4 in means and variances on the packet problems.
    """

    name = "crank_nicolson"
    description = "Crank–Nicolson finite differences on a grid (d <= 3)"
    quick_params = {"points_per_wavelength": 2.5, "phase_step": 0.03, "order": 4}
    anytime = "ladder"
    #: Resolutions of the ladder's coarser rungs (the run's own resolution is the last rung).
    LADDER = (0.35, 0.5, 0.7)

    @dataclass(frozen=True)
    class Params(Parametrized):
        points_per_wavelength: float = param(
            3.5, "grid points on the shortest wavelength 2 pi / k_max", lo=1.0)
        phase_step: float = param(
            0.008, "radians the energy spread turns per step (sets dt)", lo=0.0, lo_open=True, hi=1.0)
        order: int = param(8, "order of the finite-difference Laplacian", choices=tuple(STENCILS))
        n: int = param(0, "points per coordinate (0: from points_per_wavelength)", lo=0, hi=100000)
        dt: float = param(0.0, "time step (0: from phase_step)", lo=0.0)
        resolution: float = param(
            1.0, "refinement factor: 2 halves both the spacing and the step", lo=0.0, lo_open=True)
        box_scale: float = param(1.0, "widen (>1) or narrow the problem's box", lo=0.25, hi=10.0)
        linear_solver: str = param(
            "auto", "splu (direct) or bicgstab; auto: splu in 1-D, bicgstab above",
            choices=("auto", "splu", "bicgstab"))
        rtol: float = param(1e-9, "relative tolerance of the iterative solve", lo=0.0,
                            lo_open=True, hi=1e-3)
        memory_limit_gb: float = param(8.0, "decline grids whose estimate exceeds this", lo=0.0,
                                       lo_open=True)

    def _settings(self, problem):
        p = self.params
        return plan_grid(problem, points_per_wavelength=p.points_per_wavelength,
                         phase_step=p.phase_step, order=p.order, n=p.n, dt=p.dt,
                         resolution=p.resolution, box_scale=p.box_scale,
                         linear_solver=p.linear_solver, rtol=p.rtol)

    def skip(self, problem) -> str | None:
        if problem.d > MAX_D:
            return (f"a grid has n^d points: Crank–Nicolson is limited to d <= {MAX_D}, "
                    f"and this problem has d={problem.d}")
        if not problem.static_potential:
            return "the potential depends on time, and this solver factorises its matrix once"
        settings = self._settings(problem)
        need = grid_memory_bytes(settings) / 1e9
        if need > self.params.memory_limit_gb:
            return (f"a grid of {settings.n}^{settings.d} points needs about {need:.1f} GB, over "
                    f"memory_limit_gb={self.params.memory_limit_gb:g}")
        return None

    def setup(self, problem, *, times, device="cpu", seed=0, budget: Budget | None = None,
              workdir=None):
        self.problem = problem
        self.times = np.asarray(times, dtype=float)
        self.settings = self._settings(problem)
        self.budget = budget or Budget()

    def ladder(self):
        return [{"resolution": self.params.resolution * r} for r in self.LADDER]

    def run(self, clock: Clock) -> None:
        self.solution = propagate(self.problem, self.settings, self.times,
                                  time_limit_s=self.budget.seconds)
        self.iterations = self.solution.info["steps"]

    def evaluate(self) -> Observables:
        sol = self.solution
        return Observables(
            times=sol.times, mean=sol.mean, var=sol.var, com_var=sol.com_var,
            energy=sol.energy, cdf=sol.marginal_cdf,
            pair_cdf=sol.pair_cdf if self.problem.d >= 2 else None,
            diagnostics=dict(sol.info, norm_drift=sol.info["max_norm_drift"]),
        )
