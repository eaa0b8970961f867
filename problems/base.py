"""The Problem contract: what every problem offers to solvers and to the harness.

A problem is a frozen dataclass of validated parameters (see :mod:`core.parameters`).  Its
methods accept either NumPy arrays or torch tensors of shape ``(..., d)`` and answer in the same
library, so a grid solver, a neural solver and the harness all evaluate the same formulas.
"""

from __future__ import annotations

import numbers
import sys
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator

import numpy as np
import torch

from core import Parametrized, param

__all__ = ["Problem", "GridHint", "Invariants", "Reference", "xp_of", "as_time", "dim_param"]


def xp_of(x: Any):
    """The array library of ``x``: ``torch`` for tensors, ``jax.numpy`` for JAX arrays (traced
    ones included), else ``numpy``.

    JAX is recognised without importing it here: a JAX array can only exist once JAX has been
    imported (by the t-VMC solver's own process), so ``jax.numpy`` is then in ``sys.modules``.
    """
    if isinstance(x, torch.Tensor):
        return torch
    if type(x).__module__.startswith("jax"):
        jnp = sys.modules.get("jax.numpy")
        if jnp is not None:
            return jnp
    return np


def as_time(t: Any, like: Any):
    """A time argument ready to combine with points ``like``: a float stays a float; an array
    (or tensor) becomes one of ``like``'s library (and, for torch, of its dtype and device), so
    that per-point times of shape ``like.shape[:-1]`` broadcast against the batch shape."""
    if isinstance(t, numbers.Real) or (isinstance(t, np.ndarray) and t.ndim == 0):
        return float(t)
    xp = xp_of(like)
    if xp is torch:
        if isinstance(t, torch.Tensor):
            return t.to(dtype=like.dtype, device=like.device)
        return torch.as_tensor(t, dtype=like.dtype, device=like.device)
    if xp is np:
        return np.asarray(t, dtype=float)
    return xp.asarray(t)


def dim_param(default: int, fixed: bool = False, hint: str = "") -> Any:
    """The dimension parameter ``d``, optionally fixed for one-dimensional presets."""
    return param(default, "dimension of configuration space", lo=1, hi=4096,
                 fixed=fixed, fixed_hint=hint)


@dataclass(frozen=True)
class GridHint:
    """Physical scales a grid-based method needs; physics only, no solver settings.

    Attributes
    ----------
    lo, hi : tuple of float
        A box per coordinate outside which |psi|^2 stays negligible on [0, T] (margin included).
    k_max : float
        The largest wavenumber (1/length) with non-negligible amplitude on [0, T].
    e_spread : float
        The spread of occupied energies, which sets how fast relative phases turn.
    time_scale : float or None
        The fastest time on which the density and the velocity fields change over [0, T] (a
        trap period, a packet's spreading time, hbar / e_spread, whichever is shortest; None:
        hbar / e_spread).  :meth:`Problem.time_scale` gives it as a function of t.
    """

    lo: tuple[float, ...]
    hi: tuple[float, ...]
    k_max: float
    e_spread: float
    time_scale: float | None = None


@dataclass(frozen=True)
class Invariants:
    """Exact statements a solution must satisfy, usable where no reference solution exists.

    ``zero_mean``: every <x_i> is 0 at all times.  ``com_var``: the exact, constant variance of
    the mean coordinate (1/d) sum_i x_i.  ``energy``: the exact energy <H> at t = 0, if known;
    it is the energy at every t when ``energy_conserved`` (a time-independent potential).
    """

    zero_mean: bool = False
    com_var: float | None = None
    energy: float | None = None
    energy_conserved: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {"zero_mean": self.zero_mean, "com_var": self.com_var, "energy": self.energy,
                "energy_conserved": self.energy_conserved}


class Reference:
    """What is known about a problem's true solution.

    ``kind`` is ``"exact"`` (closed form), ``"grid"`` (a converged cached grid solution) or
    ``"invariants"`` (no solution, only :attr:`invariants`).  Observable methods take a 1-D array
    of times and return arrays over those times; they exist when :attr:`has_observables`.
    Velocities ``u``, ``v``, exact samples and exact paths exist when :attr:`has_velocities`,
    :attr:`has_samples`, :attr:`has_paths`.
    """

    kind: str = "invariants"
    has_observables: bool = False
    has_velocities: bool = False
    has_samples: bool = False
    #: Whether :meth:`sample_paths` gives whole paths of the stochastic-mechanics diffusion.
    has_paths: bool = False

    def __init__(self, problem: "Problem", invariants: Invariants):
        self.problem = problem
        self.invariants = invariants

    def _missing(self, what: str):
        raise NotImplementedError(f"a reference of kind {self.kind!r} has no {what}")

    def describe(self) -> dict[str, Any]:
        """What the record stores about the reference: its kind, invariants and provenance."""
        return {"kind": self.kind, "invariants": self.invariants.as_dict()}

    def mean(self, times: np.ndarray) -> np.ndarray:
        """Per-coordinate means, shape ``(T, d)``."""
        self._missing("means")

    def var(self, times: np.ndarray) -> np.ndarray:
        """Per-coordinate variances, shape ``(T, d)``."""
        self._missing("variances")

    def com_var(self, times: np.ndarray) -> np.ndarray:
        """Variance of the mean coordinate (1/d) sum_i x_i, shape ``(T,)``."""
        self._missing("centre-of-mass variance")

    def marginal_cdf(self, coord: int, x: np.ndarray, times: np.ndarray) -> np.ndarray:
        """CDF of coordinate ``coord``'s marginal at points ``x``, shape ``(T, len(x))``."""
        self._missing("marginals")

    def pair_cdf(self, z: np.ndarray, times: np.ndarray) -> np.ndarray:
        """CDF of the pair distance x_0 - x_1 at points ``z``, shape (T, len(z)); d >= 2."""
        self._missing("pair-distance distribution")

    @property
    def has_pair(self) -> bool:
        """Whether :meth:`pair_cdf` is available (observables in d >= 2)."""
        return self.has_observables and self.problem.d >= 2

    def u(self, x, t: float):
        """Osmotic velocity (hbar/2m) grad log rho at points ``x`` (..., d)."""
        self._missing("osmotic velocity")

    def v(self, x, t: float):
        """Current velocity (hbar/m) grad S at points ``x`` (..., d)."""
        self._missing("current velocity")

    def sample(self, n: int, times: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Exact samples of |psi(., t)|^2, independent between times, shape ``(T, n, d)``."""
        self._missing("samples")

    def sample_paths(self, n: int, times: np.ndarray, rng: np.random.Generator,
                     nu: float = 1.0) -> Iterator[np.ndarray]:
        """Exact paths of dX = (v + nu u) dt + sqrt(nu hbar/m) dW with X_0 ~ |psi0|^2: yields
        the ``n`` positions (n, d) at each of ``times`` in turn (one time in memory at once).

        Paths have the same marginals as :meth:`sample` but are correlated in time, as a
        sample-based solver's trajectories are; statistical floors of metrics over time use
        them when they exist.
        """
        self._missing("paths")


class Problem(Parametrized):
    """Base class of problems: subclasses are frozen dataclasses declaring ``d``, ``hbar``,
    ``mass``, ``t_final`` and their own parameters with :func:`~core.parameters.param`.

    Subclasses implement the potential and its gradient, the initial state (``log_rho0``,
    ``phase0``, ``u0``, ``v0``, ``sample_x0``), :meth:`grid_hint` and :meth:`reference`.
    """

    kind: ClassVar[str] = "problem"
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: False when V depends on t.
    static_potential: ClassVar[bool] = True
    #: ``(coord, x)``: the probability past x in that coordinate at T is a headline observable
    #: (a barrier's transmission); every record then has ``crossed`` and ``crossed_err``.
    crossing: ClassVar[tuple[int, float] | None] = None

    d: int
    hbar: float
    mass: float
    t_final: float

    def spec(self) -> dict[str, Any]:
        """A stable, JSON-serialisable description: the name and every parameter."""
        return {"name": self.name, "params": self.params()}

    # --- the equation -------------------------------------------------------------------
    # ``x`` is a NumPy array, a torch tensor or a JAX array of shape (..., d), and the answer is
    # in the same library.  ``t`` is a float or an array of the same library broadcastable
    # against the batch shape (...), so that points with their own times (collocation points,
    # DSM's training points) are evaluated in one call.
    def potential(self, x, t=0.0):
        """V(x, t) for points ``x`` of shape (..., d) at times ``t``; returns shape (...)."""
        raise NotImplementedError

    def grad_potential(self, x, t=0.0):
        """grad V(x, t), shape (..., d)."""
        raise NotImplementedError

    # --- the initial state ----------------------------------------------------------------
    def log_rho0(self, x):
        """log |psi0(x)|^2 (normalised), shape (...)."""
        raise NotImplementedError

    def phase0(self, x):
        """S0(x) with psi0 = sqrt(rho0) exp(i S0), shape (...)."""
        raise NotImplementedError

    def psi0(self, x):
        """The initial wave function, complex, shape (...)."""
        xp = xp_of(x)
        return xp.exp(0.5 * self.log_rho0(x) + 1j * self.phase0(x))

    def u0(self, x):
        """Initial osmotic velocity (hbar/2m) grad log rho0, shape (..., d)."""
        raise NotImplementedError

    def v0(self, x):
        """Initial current velocity (hbar/m) grad S0, shape (..., d)."""
        raise NotImplementedError

    def sample_x0(self, n: int, rng, dtype=None):
        """``n`` samples of |psi0|^2, shape (n, d).

        ``rng`` is a ``numpy.random.Generator`` (returns NumPy) or a ``torch.Generator``
        (returns a tensor on the generator's device, of ``dtype`` or torch's default).
        """
        raise NotImplementedError

    # --- what is known about the solution ------------------------------------------------
    def grid_hint(self) -> GridHint:
        """Box and scales for grids (see :class:`GridHint`)."""
        raise NotImplementedError

    def time_scale(self, t: np.ndarray) -> np.ndarray:
        """The fastest time on which the density and the velocity fields change at times ``t``
        (an array): methods that step in time or learn a function of t resolve it.  Default:
        the grid hint's ``time_scale``, else hbar / e_spread, at every t."""
        hint = self.grid_hint()
        scale = hint.time_scale if hint.time_scale else self.hbar / hint.e_spread
        return np.full(np.shape(t), float(scale))

    def invariants(self) -> Invariants:
        """Exact statements about the solution that hold without a reference solution."""
        return Invariants()

    def reference(self) -> Reference:
        """The exact or cached solution, or the invariants that hold."""
        raise NotImplementedError


def _draws(kind: str, n: int, k: int, rng, dtype):
    if isinstance(rng, torch.Generator):
        draw = torch.randn if kind == "normal" else torch.rand
        return draw((n, k), generator=rng, device=rng.device,
                    dtype=dtype or torch.get_default_dtype())
    if isinstance(rng, np.random.Generator):
        return rng.standard_normal((n, k)) if kind == "normal" else rng.random((n, k))
    raise TypeError(f"rng must be a numpy.random.Generator or torch.Generator, got {type(rng)!r}")


def standard_normal(n: int, d: int, rng, dtype=None):
    """Standard normal draws of shape (n, d) from a NumPy or torch generator."""
    return _draws("normal", n, d, rng, dtype)


def uniform(n: int, k: int, rng, dtype=None):
    """Uniform draws on [0, 1) of shape (n, k) from a NumPy or torch generator."""
    return _draws("uniform", n, k, rng, dtype)
