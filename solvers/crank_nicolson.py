"""The classical reference method: Crank–Nicolson finite differences on a grid (d <= 3).

The numerics live in :mod:`problems.grid.crank_nicolson` (shared with cached grid references);
this module declares the parameters and turns them into grid settings; declining, the timed
solve, the observables and the ladder are :class:`~solvers.grid.GridSolver`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

from core import Parametrized, param
from problems.grid import STENCILS, plan_grid

from .grid import GridSolver

__all__ = ["CrankNicolson"]


class CrankNicolson(GridSolver):
    """Crank–Nicolson in time, centred finite differences in space, Dirichlet walls.

    The grid comes from the problem's :class:`~problems.base.GridHint`: a box where |psi| is
    negligible throughout, ``points_per_wavelength`` points on the shortest wavelength, and a
    step that turns the energy spread's phase by ``phase_step`` radians.  The defaults reach
    relative errors of a few 1e-5 to 1e-4 in means and variances on the packet problems.  A
    time-dependent potential is evaluated at each step's midpoint (second order).
    """

    name = "crank_nicolson"
    description = "Crank–Nicolson finite differences on a grid (d <= 3)"
    quick_params = {"points_per_wavelength": 2.5, "phase_step": 0.03, "order": 4}
    max_d = 3

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

    def settings_for(self, problem):
        p = self.params
        return plan_grid(problem, points_per_wavelength=p.points_per_wavelength,
                         phase_step=p.phase_step, order=p.order, n=p.n, dt=p.dt,
                         resolution=p.resolution, box_scale=p.box_scale,
                         linear_solver=p.linear_solver, rtol=p.rtol)
