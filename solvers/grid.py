"""What the two grid solvers share: declining, setup, the timed solve, observables, the ladder.

The numerics live in :mod:`problems.grid` (below the solvers, because problem references use
them); a grid solver is an adapter that turns its declared parameters into grid settings
(:meth:`GridSolver.settings_for`), runs the engine inside the harness's timed ``run``, and turns
the engine's :class:`~problems.grid.GridSolution` into :class:`~solvers.base.Observables`.

A grid method has no training iterations to checkpoint; its cost-accuracy points come from a
ladder of resolutions (``anytime = "ladder"``): :meth:`GridSolver.ladder` returns the parameter
overrides of coarser rungs, coarsest first, and the harness solves again at each of them.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import numpy as np

from problems.grid import GridSolution, grid_memory_bytes, propagate

from .base import Budget, Clock, Observables, Solver

__all__ = ["GridSolver", "LADDER", "threads_from_environment"]

#: Resolutions of the ladder's coarser rungs, relative to the solver's own (coarsest first).
LADDER = (0.25, 0.5)


def threads_from_environment() -> int:
    """The thread cap the harness gives a run (``OMP_NUM_THREADS``), else 1."""
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "1")))
    except ValueError:
        return 1


class GridSolver(Solver):
    """Base class of grid solvers (see the module docstring).

    Subclasses set ``max_d`` and implement :meth:`settings_for` (grid settings from
    ``self.params`` for a problem); ``Params`` must declare ``n``, ``dt``, ``resolution`` and
    ``memory_limit_gb``.
    """

    anytime = "ladder"
    #: The largest dimension the solver accepts.
    max_d: ClassVar[int] = 3

    def settings_for(self, problem):
        """Grid settings for ``problem`` from the solver's parameters."""
        raise NotImplementedError

    # --- the contract -----------------------------------------------------------------------
    def skip(self, problem) -> str | None:
        reason = super().skip(problem)
        if reason:
            return reason
        if problem.d > self.max_d:
            return (f"a grid has n^d points: {self.name} is limited to d <= {self.max_d}, "
                    f"and this problem has d={problem.d}")
        settings = self.settings_for(problem)
        need = grid_memory_bytes(settings, problem.static_potential) / 1e9
        if need > self.params.memory_limit_gb:
            return (f"a grid of {settings.n}^{settings.d} points needs about {need:.1f} GB, over "
                    f"memory_limit_gb={self.params.memory_limit_gb:g}")
        return None

    def setup(self, problem, *, times, device="cpu", seed=0, budget: Budget | None = None,
              workdir=None):
        self.problem = problem
        self.times = np.asarray(times, dtype=float)
        self.settings = self.settings_for(problem)
        self.budget = budget or Budget()

    def run(self, clock: Clock | None = None) -> None:
        # The solve is one call of the engine, so there is no checkpoint to hand the clock;
        # the wall limit is the budget's, enforced by the engine after every step.
        self.solution: GridSolution = propagate(self.problem, self.settings, self.times,
                                                time_limit_s=self.budget.seconds)
        self.iterations = int(self.solution.info["steps"])

    def evaluate(self) -> Observables:
        sol = self.solution
        return Observables(
            times=sol.times, mean=sol.mean, var=sol.var, com_var=sol.com_var,
            energy=sol.energy, cdf=sol.marginal_cdf,
            pair_cdf=sol.pair_cdf if self.problem.d >= 2 else None,
            diagnostics=dict(sol.info, norm_drift=sol.info["max_norm_drift"]),
        )

    def ladder(self) -> list[dict[str, Any]]:
        """Coarser rungs: the spacing and the step scaled by 1/4 and 1/2 of the solver's own
        refinement (explicit ``n`` and ``dt`` are scaled the same way), coarsest first."""
        p = self.params
        rungs = []
        for f in LADDER:
            rung: dict[str, Any] = {"resolution": p.resolution * f}
            if p.n > 0:
                rung["n"] = max(4, int(round(p.n * f)))
            if p.dt > 0:
                rung["dt"] = p.dt / f
            rungs.append(rung)
        return rungs
