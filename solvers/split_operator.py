"""The spectral grid method: split-step Fourier on a periodic box (d <= 4).

The numerics live in :mod:`problems.grid.split_operator` (the engine of the cached grid
references too); this module declares the parameters and turns them into grid settings;
declining, the timed solve, the observables and the ladder are :class:`~solvers.grid.GridSolver`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

from core import Parametrized, param
from problems.grid import SPLIT_ORDERS, plan_split_grid

from .grid import GridSolver, threads_from_environment

__all__ = ["SplitOperator"]


class SplitOperator(GridSolver):
    """Strang splitting (or its 4th-order triple jump) with exact kinetic steps by FFT.

    The grid spans the problem's :class:`~problems.base.GridHint` box, made periodic, with
    ``points_per_wavelength`` points on the shortest wavelength 2 pi / k_max (2 is the Nyquist
    limit; the default 2.2 keeps a 10 % margin) rounded up to an FFT-friendly size; the step
    turns the energy spread's phase by ``phase_step`` radians, at most T/50.  The defaults reach
    relative errors of about 1e-6 in means and variances on the packet problems (the box's
    truncation of the Gaussian tails is then the larger part).  A time-dependent potential is
    evaluated at the times each sub-step reaches (see the engine's docstring).
    """

    name = "split_operator"
    description = "split-step Fourier (Strang / 4th-order triple jump) on a periodic box (d <= 4)"
    quick_params = {"points_per_wavelength": 2.0, "phase_step": 0.4, "order": 2}
    max_d = 4

    @dataclass(frozen=True)
    class Params(Parametrized):
        points_per_wavelength: float = param(
            2.2, "grid points on the shortest wavelength 2 pi / k_max (2: Nyquist)", lo=1.0)
        phase_step: float = param(
            0.4, "radians the energy spread turns per step (sets dt)", lo=0.0, lo_open=True,
            hi=10.0)
        order: int = param(4, "order of the splitting: 2 (Strang) or 4 (triple jump)",
                           choices=SPLIT_ORDERS)
        n: int = param(0, "points per coordinate (0: from points_per_wavelength)", lo=0, hi=100000)
        dt: float = param(0.0, "time step (0: from phase_step)", lo=0.0)
        resolution: float = param(
            1.0, "refinement factor: 2 halves both the spacing and the step", lo=0.0, lo_open=True)
        box_scale: float = param(1.0, "widen (>1) or narrow the problem's box", lo=0.25, hi=10.0)
        workers: int = param(0, "FFT threads (0: the run's thread cap, OMP_NUM_THREADS)", lo=0,
                             hi=1024)
        memory_limit_gb: float = param(8.0, "decline grids whose estimate exceeds this", lo=0.0,
                                       lo_open=True)

    def settings_for(self, problem):
        p = self.params
        return plan_split_grid(problem, points_per_wavelength=p.points_per_wavelength,
                               phase_step=p.phase_step, order=p.order, n=p.n, dt=p.dt,
                               resolution=p.resolution, box_scale=p.box_scale,
                               workers=p.workers or threads_from_environment())
