"""Variational ansätze for the t-VMC engine (JAX/Flax; imported only by the engine's process).

Every ansatz returns log psi(x) (complex) for configurations x of shape (..., d).  Three kinds:

``gaussian``
    log psi = -x^T A x + b . x with complex A (symmetric) and b: exact for every Gaussian packet
    in a harmonic (or free) potential, since such packets stay Gaussian.
``hermite``
    The Jastrow form of the original paper's t-VMC baseline,
    log psi = sum_i f(x_i) + sum_{i<j} g(x_i - x_j), with
    f(x) = a1 x + a2 x^2 + sum_{n<=n_max} c_n phi_n(x / s1) and
    g(r) = b2 r^2 + sum_{n<=n_max, n even} e_n phi_n(r / s2),
    where phi_n are the normalised Hermite functions H_n(z) exp(-z^2/2) / sqrt(2^n n! sqrt(pi)).
    The quadratic terms set the Gaussian envelope; the Hermite functions are bounded corrections,
    so psi stays normalisable as long as the envelope's quadratic form is (its real part is
    negative definite).  g is even in r, so psi is symmetric under exchange (bosons).
``neural``
    A Gaussian envelope (as ``gaussian``, in its permutation-symmetric form for bosons) plus a
    one-body MLP summed over coordinates and a pair MLP of (x_i - x_j)^2 summed over pairs, each
    with two real outputs (log-amplitude and phase).  The MLPs' last layers start at zero, so the
    ansatz starts at its envelope.

``gaussian`` and ``hermite`` are linear in their complex parameters: log psi = F(x) . theta with
real features F.  So psi0 is matched by a least-squares fit of log psi0 on samples of |psi0|^2
(exact to rounding for the suite's Gaussian initial states), and the model is holomorphic.

``symmetric`` (bosons): features are sums over coordinates and pairs, so every ansatz is
invariant under permutations of the coordinates.  Without it (a general d-dimensional problem)
every coordinate and every pair has its own coefficients.

``even`` (parity): where V(-x, t) = V(x, t) and psi0(-x) = psi0(x), psi stays even for all t, and
the odd features (linear terms, odd Hermite functions of one coordinate) are left out: in exact
dynamics their coefficients stay 0, and under Monte Carlo noise they would only add noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

__all__ = ["AnsatzSpec", "hermite_functions", "linear_features", "n_features", "LinearLogPsi",
           "NeuralLogPsi", "build"]


def hermite_functions(z, n_max: int):
    """phi_0 .. phi_{n_max} at ``z`` (any shape), stacked on a new last axis.

    Uses the three-term recurrence of the normalised functions, which stays finite where the
    polynomials H_n alone would overflow.
    """
    phi0 = math.pi ** -0.25 * jnp.exp(-0.5 * z * z)
    out = [phi0]
    if n_max >= 1:
        out.append(math.sqrt(2.0) * z * phi0)
    for n in range(1, n_max):
        out.append(math.sqrt(2.0 / (n + 1)) * z * out[n] - math.sqrt(n / (n + 1)) * out[n - 1])
    return jnp.stack(out, axis=-1)


@dataclass(frozen=True)
class AnsatzSpec:
    """The static description of an ansatz (hashable: it is part of the Flax module).

    Attributes
    ----------
    kind : str
        ``gaussian``, ``hermite`` or ``neural``.
    d : int
        Number of coordinates.
    symmetric : bool
        Permutation-symmetric features (identical bosons).
    even : bool
        Only parity-even features (psi(-x) = psi(x)).
    n_max : int
        Highest Hermite order (``hermite``).
    s_one, s_pair : float
        Length scales of the one-body and pair Hermite functions (``hermite``), or of the MLPs'
        inputs (``neural``).
    hidden : tuple of int
        Hidden widths of each MLP (``neural``).
    """

    kind: str
    d: int
    symmetric: bool = True
    even: bool = False
    n_max: int = 8
    s_one: float = 1.0
    s_pair: float = 1.0
    hidden: tuple[int, ...] = (16, 16)

    @property
    def linear(self) -> bool:
        return self.kind in ("gaussian", "hermite")


def _pairs(d: int) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.triu_indices(d, k=1)
    return i, j


def _gaussian_features(x, symmetric: bool, even: bool):
    """Quadratic and (unless even) linear monomials; the constant is left out (TDVP cannot
    see it)."""
    d = x.shape[-1]
    if symmetric:
        s1 = x.sum(-1)
        s2 = (x * x).sum(-1)
        feats = [s2]
        if d > 1:
            # sum_{i<j} x_i x_j = ((sum x)^2 - sum x^2) / 2
            feats.append(0.5 * (s1 * s1 - s2))
        if not even:
            feats.append(s1)
        return jnp.stack(feats, axis=-1)
    i, j = np.triu_indices(d)
    quad = x[..., i] * x[..., j]
    return quad if even else jnp.concatenate([quad, x], axis=-1)


def _hermite_features(x, spec: AnsatzSpec):
    d = x.shape[-1]
    herm = hermite_functions(x / spec.s_one, spec.n_max)
    if spec.even:
        one = jnp.concatenate([(x * x)[..., None], herm[..., 0::2]], axis=-1)  # (..., d, K1)
    else:
        one = jnp.concatenate([x[..., None], (x * x)[..., None], herm], axis=-1)
    if spec.symmetric:
        feats = [one.sum(-2)]
    else:
        feats = [one.reshape(one.shape[:-2] + (-1,))]
    if d > 1:
        i, j = _pairs(d)
        r = x[..., i] - x[..., j]  # (..., P)
        # bosons: g is even in r; an even psi needs only g(r) + g(-r), so even orders again
        orders = np.arange(0, spec.n_max + 1, 2 if (spec.symmetric or spec.even) else 1)
        pair = jnp.concatenate([(r * r)[..., None],
                                hermite_functions(r / spec.s_pair, spec.n_max)[..., orders]],
                               axis=-1)  # (..., P, K2)
        if spec.symmetric:
            feats.append(pair.sum(-2))
        else:
            feats.append(pair.reshape(pair.shape[:-2] + (-1,)))
    return jnp.concatenate(feats, axis=-1)


def linear_features(x, spec: AnsatzSpec):
    """The real features F(x), shape (..., K), of a linear ansatz (or of the neural envelope)."""
    if spec.kind == "hermite":
        return _hermite_features(x, spec)
    return _gaussian_features(x, spec.symmetric, spec.even)


def n_features(spec: AnsatzSpec) -> int:
    return int(linear_features(jnp.zeros((1, spec.d)), spec).shape[-1])


class LinearLogPsi(nn.Module):
    """log psi = F(x) . theta, with complex theta (holomorphic in theta)."""

    spec: AnsatzSpec

    @nn.compact
    def __call__(self, x):
        feats = linear_features(x, self.spec)
        theta = self.param("theta", nn.initializers.zeros, (feats.shape[-1],), jnp.complex128)
        return feats @ theta


class _MLP(nn.Module):
    """tanh MLP with two real outputs whose last layer (without bias) starts at zero."""

    hidden: tuple[int, ...]

    @nn.compact
    def __call__(self, z):
        h = z
        for width in self.hidden:
            h = jnp.tanh(nn.Dense(width, param_dtype=jnp.float64)(h))
        return nn.Dense(2, use_bias=False, kernel_init=nn.initializers.zeros,
                        param_dtype=jnp.float64)(h)


class NeuralLogPsi(nn.Module):
    """Gaussian envelope + one-body MLP + pair (Jastrow) MLP, real parameters, complex output.

    The envelope's complex coefficients are stored as real pairs (``env_re``, ``env_im``) so
    that every parameter is real.  The MLPs' last layers have no bias: a constant in log psi is
    the normalisation and the global phase, which TDVP does not see.
    """

    spec: AnsatzSpec

    @nn.compact
    def __call__(self, x):
        spec = self.spec
        env_spec = AnsatzSpec("gaussian", spec.d, spec.symmetric, spec.even)
        feats = linear_features(x, env_spec)
        k = feats.shape[-1]
        re = self.param("env_re", nn.initializers.zeros, (k,), jnp.float64)
        im = self.param("env_im", nn.initializers.zeros, (k,), jnp.float64)
        out = feats @ (re + 1j * im)
        z = x / spec.s_one
        one = _MLP(spec.hidden, name="one_body")((z * z if spec.even else z)[..., None])  # (..., d, 2)
        total = one.sum(-2)
        if spec.d > 1:
            i, j = _pairs(spec.d)
            r = (x[..., i] - x[..., j]) / spec.s_pair
            pair = _MLP(spec.hidden, name="pair")((r * r)[..., None])  # (..., P, 2)
            total = total + pair.sum(-2)
        return out + total[..., 0] + 1j * total[..., 1]


def build(spec: AnsatzSpec) -> nn.Module:
    if spec.kind in ("gaussian", "hermite"):
        return LinearLogPsi(spec)
    if spec.kind == "neural":
        return NeuralLogPsi(spec)
    raise ValueError(f"unknown ansatz {spec.kind!r}: choose gaussian, hermite or neural")


def fit_linear(spec: AnsatzSpec, log_psi0: Callable, x: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares coefficients theta (complex) with F(x) . theta + c ~ log psi0(x) on ``x``.

    Returns theta and the RMS residual relative to the RMS of log psi0 - mean (0 when psi0 is in
    the ansatz's span, e.g. a Gaussian).
    """
    feats = np.asarray(linear_features(jnp.asarray(x), spec))
    target = np.asarray(log_psi0(x))
    design = np.concatenate([feats, np.ones((len(x), 1))], axis=1)
    # scale the columns so that the solve is well conditioned whatever the units
    norms = np.linalg.norm(design, axis=0)
    norms[norms == 0] = 1.0
    coef, *_ = np.linalg.lstsq(design / norms, target, rcond=None)
    coef = coef / norms
    resid = design @ coef - target
    spread = np.sqrt(np.mean(np.abs(target - target.mean()) ** 2))
    rel = float(np.sqrt(np.mean(np.abs(resid) ** 2)) / max(spread, 1e-300))
    return coef[:-1], rel
