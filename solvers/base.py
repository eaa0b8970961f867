"""The Solver contract shared by every method in the suite.

A solver is a class with a ``name``, a frozen ``Params`` dataclass of declared parameters (see
:mod:`core.parameters`) and four steps the harness calls in order:

``skip(problem)``
    A reason (str) to decline the problem, or None.  Cheap; nothing is built.
``setup(problem, times=..., device=..., seed=..., budget=..., workdir=...)``
    Untimed preparation: networks, grids, factorisations.  ``times`` is the record's time grid;
    ``workdir`` (or None) is a directory the solver may keep checkpoints in across runs.
``run()``
    The timed solve or training.
``evaluate()``
    Observables on ``times`` (:class:`Observables`), timed separately.

The harness, not the solver, compares observables with the reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from core import Parametrized

__all__ = ["Solver", "Observables", "Budget"]


@dataclass(frozen=True)
class Budget:
    """Limits the harness imposes on one run: wall-clock seconds for ``run()``, memory in GB."""

    seconds: float | None = None
    memory_gb: float | None = None


@dataclass
class Observables:
    """What every solver reports, whatever its method, on the record's time grid.

    Attributes
    ----------
    times : (T,) array
    mean, var : (T, d) arrays
        Per-coordinate mean and variance.
    com_var : (T,) array or None
        Variance of the mean coordinate (1/d) sum_i x_i.
    energy : (T,) array or None
        <H> over time.
    cdf : callable or None
        ``cdf(coord, x) -> (T, len(x))``: the marginal CDF of a coordinate.  Sample-based solvers
        may leave it None and give ``samples``; :meth:`marginal_cdf` then uses the empirical CDF.
    samples : (T, S, k) array or None
        Samples of |psi(., t)|^2 (sample-based solvers), for the first k <= d coordinates (a
        solver may keep fewer than d to bound memory at large d).  ``mean``, ``var`` and
        ``com_var`` are still over all S samples and all coordinates.
    n_samples : int or None
        S, the number of samples behind mean/var (statistical floors use it).
    velocity : callable or None
        ``velocity(x, t) -> (u, v)`` for points ``x`` of shape (n, d) at time ``t``: the method's
        osmotic and current velocities, compared with the reference's in L2(rho).
    pair_cdf : callable or None
        ``pair_cdf(z) -> (T, len(z))``: the CDF of the pair distance x_0 - x_1 (d >= 2), the
        interaction's fingerprint.  Sample-based solvers may leave it None when ``samples``
        keeps at least two coordinates.
    diagnostics : dict
        Method-specific numbers worth recording (grid, wall mass, norm drift, ...).
    """

    times: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    com_var: np.ndarray | None = None
    energy: np.ndarray | None = None
    cdf: Callable[[int, np.ndarray], np.ndarray] | None = None
    samples: np.ndarray | None = None
    n_samples: int | None = None
    velocity: Callable[[np.ndarray, float], tuple[np.ndarray, np.ndarray]] | None = None
    pair_cdf: Callable[[np.ndarray], np.ndarray] | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.samples is not None and self.n_samples is None:
            self.n_samples = int(self.samples.shape[1])

    def marginal_cdf(self, coord: int, x: np.ndarray) -> np.ndarray | None:
        """The marginal CDF of coordinate ``coord`` at ``x``, shape (T, len(x)), or None."""
        if self.cdf is not None:
            return self.cdf(coord, x)
        if self.samples is not None:
            sorted_ = np.sort(self.samples[:, :, coord], axis=1)
            n = sorted_.shape[1]
            return np.stack([np.searchsorted(row, x, side="right") / n for row in sorted_])
        return None

    def pair_distance_cdf(self, z: np.ndarray) -> np.ndarray | None:
        """The CDF of x_0 - x_1 at ``z``, shape (T, len(z)), or None (d = 1, or not given)."""
        if self.pair_cdf is not None:
            return self.pair_cdf(z)
        if self.samples is not None and self.samples.shape[2] >= 2:
            diff = np.sort(self.samples[:, :, 0] - self.samples[:, :, 1], axis=1)
            n = diff.shape[1]
            return np.stack([np.searchsorted(row, z, side="right") / n for row in diff])
        return None


class Solver:
    """Base class of solvers (see the module docstring for the contract).

    Subclasses set ``name``, ``description`` and a nested frozen dataclass ``Params`` whose
    fields are declared with :func:`core.parameters.param`.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Params: ClassVar[type[Parametrized]]
    #: True for methods whose observables are Monte Carlo estimates from samples.
    sample_based: ClassVar[bool] = False
    #: Parameter overrides that make a run take seconds (registry-wide tests, smoke profiles).
    quick_params: ClassVar[dict[str, Any]] = {}
    #: The parameter that sets the number of iterations (``scaling --iterations`` sets it).
    iterations_param: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "Params" in cls.__dict__:
            cls.Params.kind = "solver"
            cls.Params.name = cls.name

    def __init__(self, params: Parametrized | dict[str, Any] | None = None):
        if params is None or isinstance(params, dict):
            params = self.Params.from_params(params or {})
        if not isinstance(params, self.Params):
            raise TypeError(f"{self.name}: params must be {self.Params.__name__} or a dict")
        self.params = params
        #: Iterations (training steps, time steps) done by run(); the harness records it.
        self.iterations = 0
        #: Wall seconds of each iteration (device synchronised), when the solver records them;
        #: the scaling command takes the median after warm-up.
        self.iteration_times: list[float] = []
        #: Per-iteration series (e.g. loss terms) stored beside the record as a side file.
        self.history: dict[str, list[float]] = {}

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "params": self.params.params()}

    def skip(self, problem) -> str | None:
        """A reason to decline ``problem``, or None to accept it."""
        return None

    def setup(self, problem, *, times: np.ndarray, device: str = "cpu", seed: int = 0,
              budget: Budget | None = None, workdir: Path | None = None) -> None:
        raise NotImplementedError

    def run(self) -> None:
        raise NotImplementedError

    def evaluate(self) -> Observables:
        raise NotImplementedError
