"""Grid machinery below the solvers: settings, the two engines, observables, cached references.

``problems`` may not import ``solvers``, yet problems without a closed form need grid
solutions as references, so both grid engines live here and the solvers ``crank_nicolson`` and
``split_operator`` are thin adapters of them.

* :mod:`.settings` -- :class:`GridSettings` (Crank–Nicolson), :class:`SplitSettings`
  (split-operator), :func:`plan_grid`, :func:`plan_split_grid`, :func:`grid_memory_bytes`.
* :mod:`.observe` -- :class:`GridSolution` and every observable computed from psi on a grid.
* :mod:`.crank_nicolson` -- finite differences, Crank–Nicolson in time, Dirichlet walls.
* :mod:`.split_operator` -- Fourier in space, Strang or 4th-order splitting, periodic box.
* :mod:`.reference` -- :class:`GridReference`, a cached grid solution checked by the other engine.
"""

from __future__ import annotations

from . import crank_nicolson, split_operator
from .observe import GridSolution, cdf_from_density, grid_values
from .settings import (STENCILS, SPLIT_ORDERS, GridSettings, SplitSettings, grid_memory_bytes,
                       plan_grid, plan_split_grid)

__all__ = ["GridSettings", "SplitSettings", "GridSolution", "plan_grid", "plan_split_grid",
           "grid_memory_bytes", "cdf_from_density", "grid_values", "propagate", "plan",
           "ENGINES", "ENGINE_VERSIONS", "STENCILS", "SPLIT_ORDERS", "crank_nicolson",
           "split_operator"]

#: The engines by method name: each has ``propagate(problem, settings, times, progress,
#: time_limit_s) -> GridSolution`` and an ``ENGINE_VERSION``.
ENGINES = {"crank_nicolson": crank_nicolson, "split_operator": split_operator}
#: Versions of the engines' numerics (cache keys include them).
ENGINE_VERSIONS = {name: mod.ENGINE_VERSION for name, mod in ENGINES.items()}
#: The planner of each method's settings.
PLANNERS = {"crank_nicolson": plan_grid, "split_operator": plan_split_grid}


def plan(problem, method: str, **options):
    """Settings of ``method`` for ``problem`` (see :func:`plan_grid`, :func:`plan_split_grid`)."""
    if method not in PLANNERS:
        raise ValueError(f"unknown grid method {method!r}; expected one of {sorted(PLANNERS)}")
    return PLANNERS[method](problem, **options)


def propagate(problem, settings, times, progress=None, time_limit_s=None) -> GridSolution:
    """Solve on ``settings`` with the engine of their method (Crank–Nicolson or split-operator)."""
    return ENGINES[settings.method].propagate(problem, settings, times, progress=progress,
                                              time_limit_s=time_limit_s)
