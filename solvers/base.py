"""The Solver contract shared by every method in the suite.

A solver is a class with a ``name``, a frozen ``Params`` dataclass of declared parameters (see
:mod:`core.parameters`) and four steps the harness calls in order:

``skip(problem)``
    A reason (str) to decline the problem, or None.  Cheap; nothing is built.
``setup(problem, times=..., device=..., seed=..., budget=..., workdir=...)``
    Untimed preparation: networks, grids, factorisations.  ``times`` is the record's time grid;
    ``workdir`` (or None) is a directory the solver may keep checkpoints in across runs.
``run(clock)``
    The timed solve or training.  ``clock`` (a :class:`Clock`) is the harness's: it measures
    training seconds, and a solver that trains iteratively calls ``clock(iteration)`` at its
    natural checkpoints (between iterations).  At a due checkpoint the harness stops the clock,
    asks the solver for a cheap evaluation (:meth:`Solver.anytime_evaluate`), computes the same
    metrics as for the final result and restarts the clock; ``clock(...)`` returns True when the
    training budget is spent, and the solver then stops.
``evaluate()``
    The final observables on ``times`` (:class:`Observables`), timed separately.

How a solver's cost-accuracy curve arises is its :attr:`Solver.anytime` kind: ``"checkpoints"``
(iterative training, evaluated at the clock's schedule), ``"ladder"`` (a grid method: the harness
solves again at the coarser settings of :meth:`Solver.ladder`, each rung one point) or ``"none"``
(one point, the final result).  The harness, not the solver, compares observables with the
reference.
"""

from __future__ import annotations

import abc
import functools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np

from core import Parametrized

if TYPE_CHECKING:  # solvers import problems, never the other way round
    from problems.base import Problem

__all__ = ["Solver", "Observables", "Budget", "Clock", "LimitedClock", "FreeClock",
           "SolverStateError", "ANYTIME_KINDS", "empirical_cdf"]

ANYTIME_KINDS = ("checkpoints", "ladder", "none")


@dataclass(frozen=True)
class Budget:
    """The limit the harness imposes on one run: ``seconds`` of wall clock for the whole solve
    (a run over it fails with ``TimeoutError``).  A training budget is a solver parameter
    (``max_seconds``), so that it is part of what the run is."""

    seconds: float | None = None


class Clock(abc.ABC):
    """The harness's clock of training seconds, handed to :meth:`Solver.run`."""

    @abc.abstractmethod
    def elapsed(self) -> float:
        """Training seconds so far (anytime evaluations excluded)."""

    @abc.abstractmethod
    def __call__(self, iteration: int) -> bool:
        """A natural checkpoint after ``iteration`` iterations: the harness may evaluate (with
        the clock stopped).  Returns True when the solver must stop (its budget is spent)."""

    @abc.abstractmethod
    def seconds_to_next(self) -> float:
        """Training seconds until the next call would evaluate or stop (0: due now).  Solvers
        whose checkpoints cost something to reach (the PINN's weights live in another process)
        use it to decide when to reach one."""

    def due(self) -> bool:
        return self.seconds_to_next() <= 0.0

    def limited(self, seconds: float | None) -> "Clock":
        """This clock, also stopping the solver after ``seconds`` training seconds."""
        return LimitedClock(self, seconds)


class LimitedClock(Clock):
    """``clock`` that also stops the solver after ``seconds`` training seconds (its own
    ``max_seconds``; None: no limit of its own)."""

    def __init__(self, clock: Clock, seconds: float | None):
        self.clock = clock
        self.seconds = seconds if seconds else None

    def elapsed(self) -> float:
        return self.clock.elapsed()

    def spent(self) -> bool:
        return self.seconds is not None and self.clock.elapsed() >= self.seconds

    def __call__(self, iteration: int) -> bool:
        stop = self.clock(iteration)
        return stop or self.spent()

    def seconds_to_next(self) -> float:
        inner = self.clock.seconds_to_next()
        if self.seconds is None:
            return inner
        return min(inner, max(self.seconds - self.clock.elapsed(), 0.0))


class FreeClock(Clock):
    """A clock without evaluations: it only measures, and stops at ``budget_s`` training seconds
    (for running a solver outside the harness: tests, the scaling command)."""

    def __init__(self, budget_s: float | None = None):
        self.budget_s = budget_s
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def __call__(self, iteration: int) -> bool:
        return self.budget_s is not None and self.elapsed() >= self.budget_s

    def seconds_to_next(self) -> float:
        return float("inf") if self.budget_s is None else max(self.budget_s - self.elapsed(), 0.0)


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
        S, the number of samples behind mean/var.
    effective_samples : (T,) array or None
        The effective sample size at each time, for correlated samples (Markov chains); None
        means the S samples at each time are independent of each other.  Statistical floors
        use it in place of S.
    sample_kind : str or None
        How the samples arise: ``"paths"`` (whole trajectories of the stochastic-mechanics
        diffusion, correlated in time), ``"independent"`` (fresh draws at every time) or
        ``"chains"`` (Markov chains, see ``effective_samples``).  Floors are computed from exact
        samples with the same structure.
    diffusion_nu : float
        For ``sample_kind="paths"``: the nu of the diffusion the paths follow.
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
    effective_samples: np.ndarray | None = None
    sample_kind: str | None = None
    diffusion_nu: float = 1.0
    velocity: Callable[[np.ndarray, float], tuple[np.ndarray, np.ndarray]] | None = None
    pair_cdf: Callable[[np.ndarray], np.ndarray] | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.samples is not None and self.n_samples is None:
            self.n_samples = int(self.samples.shape[1])
        if self.n_samples and self.sample_kind is None:
            self.sample_kind = "chains" if self.effective_samples is not None else "independent"

    def marginal_cdf(self, coord: int, x: np.ndarray) -> np.ndarray | None:
        """The marginal CDF of coordinate ``coord`` at ``x``, shape (T, len(x)), or None."""
        if self.cdf is not None:
            return self.cdf(coord, x)
        if self.samples is not None:
            return empirical_cdf(self.samples[:, :, coord], x)
        return None

    def pair_distance_cdf(self, z: np.ndarray) -> np.ndarray | None:
        """The CDF of x_0 - x_1 at ``z``, shape (T, len(z)), or None (d = 1, or not given)."""
        if self.pair_cdf is not None:
            return self.pair_cdf(z)
        if self.samples is not None and self.samples.shape[2] >= 2:
            return empirical_cdf(self.samples[:, :, 0] - self.samples[:, :, 1], z)
        return None


def empirical_cdf(values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Empirical CDFs of the rows of ``values`` (T, S) at points ``x``: shape (T, len(x))."""
    ordered = np.sort(values, axis=1)
    n = ordered.shape[1]
    return np.stack([np.searchsorted(row, x, side="right") / n for row in ordered])


class SolverStateError(RuntimeError):
    """A solver's steps were called out of order (``evaluate()`` before ``run()``, ...)."""


#: The steps of a solver, in the order they may be called, and the state each one needs.
_STEPS = {"setup": None, "run": "set up", "evaluate": "ran", "anytime_evaluate": "trained"}
_AFTER = {"setup": "set up", "run": "ran"}


def _guard(step: str, method: Callable) -> Callable:
    """Wrap a step so that it checks the solver's state first and records it after."""
    need = _STEPS[step]

    @functools.wraps(method)
    def wrapped(self, *args, **kwargs):
        if step in self._in_steps:  # a subclass's step calling its parent's: checked once
            return method(self, *args, **kwargs)
        self._in_steps.add(step)
        try:
            return checked(self, *args, **kwargs)
        finally:
            self._in_steps.discard(step)

    def checked(self, *args, **kwargs):
        state = self._state
        if need == "set up" and state not in ("set up", "ran"):
            raise SolverStateError(f"{self.name}: run() before setup()")
        if need == "ran" and state != "ran":
            raise SolverStateError(f"{self.name}: {step}() before a successful run()")
        if need == "trained" and state not in ("running", "ran"):
            raise SolverStateError(f"{self.name}: {step}() before run()")
        if step == "run":
            self._state = "running"
            try:
                out = method(self, *args, **kwargs)
            except BaseException:
                self._state = "failed"
                raise
            self._state = "ran"
            return out
        out = method(self, *args, **kwargs)
        if step in _AFTER:
            self._state = _AFTER[step]
        return out

    wrapped._guarded = True
    return wrapped


class Solver(abc.ABC):
    """Base class of solvers (see the module docstring for the contract).

    Subclasses set ``name``, ``description`` and a nested frozen dataclass ``Params`` whose
    fields are declared with :func:`core.param`, and implement :meth:`setup`, :meth:`run` and
    :meth:`evaluate` (plus :meth:`anytime_evaluate` for ``anytime = "checkpoints"`` and
    :meth:`ladder` for ``anytime = "ladder"``).  The base class checks the order of the steps:
    ``evaluate()`` before a successful ``run()`` raises :class:`SolverStateError`.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Params: ClassVar[type[Parametrized]]
    #: Parameter overrides that make a run take seconds (registry-wide tests, smoke profiles).
    quick_params: ClassVar[dict[str, Any]] = {}
    #: The parameter that sets the number of iterations (``scaling --iterations`` sets it).
    iterations_param: ClassVar[str | None] = None
    #: How the solver's cost-accuracy points arise (see the module docstring).
    anytime: ClassVar[str] = "none"
    #: The parameter that sets a training budget in seconds (the profiles' ``budget_s`` sets it
    #: for every solver that has one, so that learned solvers train for the same seconds).
    budget_param: ClassVar[str | None] = None
    #: The optional package the solver needs (``pip install 'dsm-bench[EXTRA]'``), if any.
    extra: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "Params" in cls.__dict__:
            cls.Params.kind = "solver"
            cls.Params.name = cls.name
        if cls.anytime not in ANYTIME_KINDS:
            raise TypeError(f"{cls.__name__}.anytime must be one of {ANYTIME_KINDS}")
        for step in _STEPS:
            method = cls.__dict__.get(step)
            if method is not None and not getattr(method, "_guarded", False):
                setattr(cls, step, _guard(step, method))

    def __init__(self, params: Parametrized | dict[str, Any] | None = None):
        if params is None or isinstance(params, dict):
            params = self.Params.from_params(params or {})
        if not isinstance(params, self.Params):
            raise TypeError(f"{self.name}: params must be {self.Params.__name__} or a dict")
        self.params = params
        self._state = "new"
        self._in_steps: set[str] = set()
        #: The problem being solved (set by setup()).
        self.problem: Problem | None = None
        #: The record's time grid (set by setup()).
        self.times: np.ndarray | None = None
        #: Iterations (training steps, time steps) done, counting those before a resume.
        self.iterations = 0
        #: Iterations that a resumed run found already done (its seconds are not in this run's).
        self.resumed_from = 0
        #: Wall seconds of each iteration of this run (device synchronised), when the solver
        #: records them; the scaling command takes the median after warm-up.
        self.iteration_times: list[float] = []
        #: Per-iteration series (e.g. loss terms) stored beside the record as a side file.
        self.history: dict[str, list[float]] = {}
        #: Values the solver derived from the problem in setup (a grid, a step, a scale), so
        #: that the record says what actually ran (``record["resolved"]``).
        self.resolved: dict[str, Any] = {}

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "params": self.params.params()}

    @classmethod
    def missing_extra(cls) -> str | None:
        """Why the solver cannot run here (its optional package is absent), or None."""
        return None

    def skip(self, problem: Problem) -> str | None:
        """A reason to decline ``problem``, or None to accept it."""
        return self.missing_extra()

    @abc.abstractmethod
    def setup(self, problem: Problem, *, times: np.ndarray, device: str = "cpu", seed: int = 0,
              budget: Budget | None = None, workdir: Path | None = None) -> None:
        """Untimed preparation (see the module docstring)."""

    @abc.abstractmethod
    def run(self, clock: Clock) -> None:
        """The timed solve or training (see the module docstring)."""

    @abc.abstractmethod
    def evaluate(self) -> Observables:
        """The final observables on the record's time grid."""

    def anytime_evaluate(self) -> Observables:
        """Cheap observables at a checkpoint during :meth:`run` (fewer samples or a coarser
        quadrature than :meth:`evaluate`, the same at every checkpoint)."""
        raise NotImplementedError(f"{self.name} declares no anytime evaluation")

    def anytime_settings(self) -> dict[str, Any]:
        """What the anytime evaluation uses (recorded beside the curve)."""
        return {}

    def ladder(self) -> list[dict[str, Any]]:
        """For ``anytime = "ladder"``: parameter overrides of the coarser rungs, coarsest first;
        the solver's own parameters are the last rung."""
        return []
