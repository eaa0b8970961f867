"""The NetKet pieces of the t-VMC engine: the real-time generator H / hbar as a continuous
operator, the regularised solve of the quantum geometric tensor, and a Metropolis proposal whose
Gaussian shape is part of the sampler's state."""

from __future__ import annotations

import math
from functools import partial
from typing import Callable

import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
from netket.utils import struct

__all__ = ["Generator", "normalized_pinv", "AdaptiveGaussianRule", "proposal_factor"]

#: Optimal acceptance scaling of a random-walk Gaussian proposal in d dimensions.
PROPOSAL_SCALE = 2.38


# --- the generator H / hbar ------------------------------------------------------------------
class Generator(nk.operator.ContinuousOperator):
    """G = H / hbar = -(hbar/2m) Laplacian + V(x, t) / hbar, NetKet's real-time generator.

    ``potential(x, t)`` is the problem's V for one configuration x (d,) and a traced time t;
    ``time`` is a pytree leaf, so evaluating at a new time reuses the compiled kernel.
    """

    _potential: Callable = struct.static_field()
    _kinetic: float = struct.static_field()  # hbar / 2m
    _inv_hbar: float = struct.static_field()
    time: jax.Array = struct.field()

    def __init__(self, hilbert, potential: Callable, hbar: float, mass: float, time=0.0):
        self._potential = potential
        self._kinetic = float(hbar) / (2.0 * float(mass))
        self._inv_hbar = 1.0 / float(hbar)
        self.time = jnp.asarray(time, dtype=jnp.float64)
        super().__init__(hilbert, jnp.float64)

    @property
    def is_hermitian(self) -> bool:
        return True

    def at(self, t) -> "Generator":
        """The same generator at time ``t``."""
        return self.replace(time=jnp.asarray(t, dtype=jnp.float64))

    def _local_single(self, logpsi, params, x):
        def f(y):
            return logpsi(params, y[None, :])[0]

        # forward mode throughout (x is real, log psi complex): along each unit vector e_i a
        # first-order JVP gives d_i log psi, and a JVP of that JVP gives d_i^2 log psi, so the
        # Laplacian costs d second-order passes instead of the d^2 of a full Hessian
        def along(e):
            return jax.jvp(lambda y: jax.jvp(f, (y,), (e,))[1], (x,), (e,))

        grad, second = jax.vmap(along)(jnp.eye(x.shape[-1], dtype=x.dtype))
        lap = jnp.sum(second)
        kinetic = -self._kinetic * (lap + jnp.sum(grad * grad))
        return kinetic + self._inv_hbar * self._potential(x, self.time)

    def _expect_kernel(self, logpsi, params, x):
        return jax.vmap(partial(self._local_single, logpsi, params))(x)

    @struct.property_cached(pytree_ignore=True)
    def _attrs(self) -> tuple:
        return (self.hilbert, self._potential, self._kinetic, self._inv_hbar, self.dtype)

    def __repr__(self):
        return f"Generator(hbar/2m={self._kinetic}, 1/hbar={self._inv_hbar}, t={self.time})"


def normalized_pinv(A, b, *, rcond: float = 1e-4, diag_floor: float = 1e-3, x0=None):
    """Solve A x = b for the QGT A with a pseudo-inverse of D^-1/2 A D^-1/2 (D = diag A).

    Scaling to unit diagonal first makes the cut-off independent of how each parameter is
    scaled (a feature x^2 and a Hermite function differ by orders of magnitude); eigenvalues
    below ``rcond`` times the largest are dropped.  Monte Carlo noise lives mostly in those
    directions, where the estimated QGT is least accurate.  Returns (x, info=None), NetKet's
    solver convention.
    """
    from jax.flatten_util import ravel_pytree

    dense = A.to_dense()
    vec, unravel = ravel_pytree(b)
    # a parameter the state barely depends on (a hidden layer behind a last layer that starts
    # at zero) must not be scaled up to unit sensitivity: its diagonal is floored at a fraction
    # of the largest, so such directions fall below the cut instead of getting huge velocities
    raw = jnp.real(jnp.diag(dense))
    diag = jnp.sqrt(jnp.maximum(raw, diag_floor * jnp.max(raw)) + 1e-300)
    scaled = dense / diag[:, None] / diag[None, :]
    lam, vecs = jnp.linalg.eigh(scaled)
    keep = lam > rcond * lam[-1]
    inv = jnp.where(keep, 1.0 / jnp.where(keep, lam, 1.0), 0.0)
    x = (vecs @ (inv * (vecs.conj().T @ (vec / diag)))) / diag
    return unravel(x.astype(vec.dtype)), None


# --- a Gaussian proposal whose shape is part of the sampler's state -----------------------------
class AdaptiveGaussianRule(nk.sampler.rules.MetropolisRule):
    """Moves every coordinate at once by L z, z ~ N(0, I), with the (d, d) factor L kept in the
    sampler state (``rule_state``) so that it can follow the state's shape without recompiling.

    With L L^T = (2.38^2 / d) Cov (Haario's adaptive Metropolis) a Gaussian target is sampled at
    the optimal rate whatever its correlations: an interacting cloud is elongated along the
    pair distances and narrow along the centre of mass, which an isotropic step would sample
    at the narrow direction's pace.
    """

    factor0: tuple[tuple[float, ...], ...] = struct.static_field()

    def __init__(self, factor0):
        self.factor0 = tuple(tuple(float(v) for v in row) for row in np.asarray(factor0))

    def init_state(self, sampler, machine, params, key):
        return jnp.asarray(self.factor0, dtype=jnp.float64)

    def transition(self, sampler, machine, parameters, state, key, r):
        z = jax.random.normal(key, shape=r.shape, dtype=r.dtype)
        return r + z @ state.rule_state.T.astype(r.dtype), None

    def __repr__(self):
        return f"AdaptiveGaussianRule(d={len(self.factor0)})"


def proposal_factor(cov: np.ndarray, step_factor: float) -> np.ndarray:
    """L with L L^T = (step_factor * 2.38)^2 / d * cov (cov regularised to stay positive)."""
    cov = np.atleast_2d(np.asarray(cov, dtype=float))
    d = cov.shape[0]
    cov = 0.5 * (cov + cov.T)
    floor = 1e-6 * max(float(np.trace(cov)) / d, 1e-300)
    w, v = np.linalg.eigh(cov)
    cov = (v * np.maximum(w, floor)) @ v.T
    return (step_factor * PROPOSAL_SCALE / math.sqrt(d)) * np.linalg.cholesky(cov)
