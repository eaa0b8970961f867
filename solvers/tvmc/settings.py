"""The t-VMC engine's settings, and what they decide from the problem alone (symmetry, parity).

Plain Python and NumPy: the solver's own process builds and validates settings without importing
JAX or NetKet; :mod:`solvers.tvmc.engine` uses them in the engine's process.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Callable

import numpy as np

__all__ = ["Settings", "log_psi0_of", "symmetric", "parity_even"]


@dataclass(frozen=True)
class Settings:
    """The engine's settings (all JSON-serialisable scalars or tuples).

    Attributes
    ----------
    ansatz : str
        ``gaussian``, ``hermite`` or ``neural`` (see :mod:`solvers.tvmc.ansatz`).
    symmetry : str
        ``auto`` (bosons for the ``bosons`` problem, else none), ``bosons`` or ``none``.
    parity : str
        ``auto`` (even where V(-x, t) = V(x, t) and psi0(-x) = psi0(x), checked on samples),
        ``even`` or ``none``: an even psi needs no odd features.
    n_max : int
        Hermite order of the ``hermite`` ansatz.
    scale_one, scale_pair : float or None
        Length scales of the one-body / pair functions; None derives them from the problem's box
        (``hermite``: the n_max-th Hermite function reaches the box edge, and twice that for
        pairs; ``neural``: a third of the box half-width).
    hidden : tuple of int
        Hidden widths of the ``neural`` ansatz's MLPs.
    integrator : str
        ``rk4`` (fixed ``dt``) or ``rk45`` (adaptive Dormand–Prince, tolerances ``rtol``,
        ``atol``, first step ``dt``).
    dt, rtol, atol : float
    diag_shift : float
        Constant added to the QGT's diagonal.
    diag_scale : float or None
        Fraction of the QGT's own diagonal added to it (scale-free regularisation).
    linear_solver : str
        ``normalized_pinv`` (pseudo-inverse of the QGT scaled to unit diagonal, cutting
        eigenvalues below ``rcond`` times the largest: the cut does not depend on the
        parameters' units), ``cholesky``, ``pinv_smooth`` (NetKet's smooth pseudo-inverse with
        ``rcond_smooth = rcond``) or ``svd`` (NetKet's, with ``rcond``).
    rcond : float
    diag_floor : float
        ``normalized_pinv`` only: QGT diagonal entries below this fraction of the largest are
        raised to it before scaling (see :func:`normalized_pinv`).
    n_samples : int
        Samples per TDVP evaluation (each Runge–Kutta stage draws its own).
    n_chains : int
        Markov chains (persistent through the run).
    n_discard : int
        Metropolis sweeps discarded per chain before each set of samples.
    sweep_size : int or None
        Metropolis steps per recorded sample (None: max(8, 2 d)).
    step_factor : float
        Proposal covariance = (step_factor * 2.38)^2 / d * (the state's covariance), from psi0
        at the start and re-estimated at every record time when ``adapt_step``.
    adapt_step : bool
    n_samples_obs : int or None
        Samples drawn at every record time for the observables (None: ``n_samples``).
    n_samples_energy : int or None
        How many of the record-time samples <H> is estimated from (None: all of them; at large
        d the local energies dominate the cost of a record).
    n_discard_obs : int
        Sweeps discarded per chain before the record-time samples.
    keep_samples : int or None
        How many of the record-time samples of coordinates 0 and 1 to return (None: all).
    chunk_size : int or None
        NetKet's chunk size (samples per vectorised batch), to bound memory.
    qgt : str
        ``dense`` (QGTJacobianDense) or ``onthefly`` (QGTOnTheFly).
    fit_samples : int
        Samples of |psi0|^2 for the least-squares fit of log psi0 (linear ansätze and the
        neural envelope).
    """

    ansatz: str = "hermite"
    symmetry: str = "auto"
    parity: str = "auto"
    n_max: int = 8
    scale_one: float | None = None
    scale_pair: float | None = None
    hidden: tuple[int, ...] = (16, 16)
    integrator: str = "rk4"
    dt: float = 0.01
    rtol: float = 1e-3
    atol: float = 1e-4
    diag_shift: float = 0.0
    diag_scale: float | None = None
    linear_solver: str = "normalized_pinv"
    rcond: float = 1e-4
    diag_floor: float = 1e-3
    n_samples: int = 8192
    n_chains: int = 1024
    n_discard: int = 2
    sweep_size: int | None = None
    step_factor: float = 1.0
    adapt_step: bool = True
    n_samples_obs: int | None = 32768
    n_samples_energy: int | None = None
    n_discard_obs: int = 4
    keep_samples: int | None = None
    chunk_size: int | None = None
    qgt: str = "dense"
    fit_samples: int = 4096

    def __post_init__(self):
        choices = {"ansatz": ("gaussian", "hermite", "neural"),
                   "symmetry": ("auto", "bosons", "none"), "parity": ("auto", "even", "none"),
                   "integrator": ("rk4", "rk45"),
                   "linear_solver": ("normalized_pinv", "cholesky", "pinv_smooth", "svd"),
                   "qgt": ("dense", "onthefly")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"tvmc setting {name}={getattr(self, name)!r}: choose one of "
                                 f"{', '.join(allowed)}")
        for name in ("dt", "n_samples", "n_chains", "step_factor", "fit_samples"):
            if not getattr(self, name) > 0:
                raise ValueError(f"tvmc setting {name} must be > 0, got {getattr(self, name)!r}")
        if self.n_samples % self.n_chains:
            raise ValueError(f"tvmc: n_samples ({self.n_samples}) must be a multiple of "
                             f"n_chains ({self.n_chains})")
        if self.n_samples_obs is not None and self.n_samples_obs % self.n_chains:
            raise ValueError(f"tvmc: n_samples_obs ({self.n_samples_obs}) must be a multiple of "
                             f"n_chains ({self.n_chains})")
        if self.n_max < 0:
            raise ValueError(f"tvmc setting n_max must be >= 0, got {self.n_max}")

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> "Settings":
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown tvmc settings {unknown}; known: {sorted(known)}")
        if "hidden" in values:
            values["hidden"] = tuple(int(h) for h in values["hidden"])
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["hidden"] = list(self.hidden)
        return out


def log_psi0_of(problem) -> Callable[[np.ndarray], np.ndarray]:
    """log psi0 = log(rho0) / 2 + i phase0, as a function of points (n, d)."""
    def f(x):
        x = np.asarray(x, dtype=float)
        return 0.5 * np.asarray(problem.log_rho0(x)) + 1j * np.asarray(problem.phase0(x))
    return f


def symmetric(problem, setting: str) -> bool:
    """Whether the ansatz is made symmetric under exchange of coordinates (bosons)."""
    if setting == "auto":
        return problem.name == "bosons"
    return setting == "bosons"


def parity_even(problem, setting: str, x: np.ndarray) -> bool:
    """Whether psi stays even: V(-x, t) = V(x, t) at a few times and psi0(-x) = psi0(x), on the
    points ``x`` and twice them (relative tolerance 1e-10)."""
    if setting != "auto":
        return setting == "even"
    pts = np.concatenate([x, 2.0 * x])
    log_psi0 = log_psi0_of(problem)
    a, b = log_psi0(pts), log_psi0(-pts)
    if not np.allclose(a, b, rtol=1e-10, atol=1e-10 * max(1.0, float(np.max(np.abs(a))))):
        return False
    for t in np.linspace(0.0, float(problem.t_final), 5):
        va = np.asarray(problem.potential(pts, float(t)))
        vb = np.asarray(problem.potential(-pts, float(t)))
        if not np.allclose(va, vb, rtol=1e-10, atol=1e-10 * max(1.0, float(np.max(np.abs(va))))):
            return False
    return True
