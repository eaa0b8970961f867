"""Loss balancing and residual-based adaptive collocation for the PINN (no DeepXDE import).

The training process (:mod:`solvers.pinn.worker`) calls these from DeepXDE callbacks; DeepXDE
has neither (its examples write the loops by hand), so they are hand-written here, split from
the process's plumbing so that each piece can be read and tested alone.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

__all__ = ["every", "grad_norms", "balanced_weights", "residual_sample"]

#: clip of a balanced weight, in multiples of the term's given weight
WEIGHT_CLIP = (1e-3, 1e3)


def every(callback_base: type, steps: int, action: Callable[[], object]):
    """A callback (subclass of ``callback_base``, DeepXDE's ``Callback``) that calls
    ``action()`` after every ``steps``-th training step."""

    class Every(callback_base):
        def __init__(self):
            super().__init__()
            self.count = 0

        def on_batch_end(self):
            self.count += 1
            if self.count % steps == 0:
                action()

    return Every()


def grad_norms(losses: Sequence[torch.Tensor], params: list[torch.Tensor],
               current: Sequence[float], base: Sequence[float]) -> list[float]:
    """|g_i|: the gradient norm over ``params`` of each *unweighted* loss term (DeepXDE's losses
    arrive multiplied by their current weight, which is divided out).  0 for a term that is off
    (given or current weight 0)."""
    norms = []
    for i, loss in enumerate(losses):
        if base[i] == 0 or current[i] == 0:
            norms.append(0.0)
            continue
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        g = torch.sqrt(sum(torch.sum(q**2) for q in grads if q is not None))
        norms.append(float(g) / current[i])
    return norms


def balanced_weights(norms: Sequence[float], current: Sequence[float], base: Sequence[float],
                     alpha: float) -> list[float]:
    """Gradient-norm loss balancing (Wang, Teng and Perdikaris 2021, in the form of Wang et al.
    2023's "expert's guide"): the target weight of term i is base_i * sum_j |g_j| / |g_i|,
    clipped to :data:`WEIGHT_CLIP` times base_i, and the weight moves there as an exponential
    average, w_i <- alpha w_i + (1 - alpha) target_i.  Terms that are off, or whose gradient
    norm is 0 or not finite, keep their weight."""
    total = sum(norms)
    out = []
    for w, b, g in zip(current, base, norms):
        if b == 0 or g <= 0 or not np.isfinite(g) or total <= 0:
            out.append(w)
            continue
        target = float(np.clip(b * total / g, WEIGHT_CLIP[0] * b, WEIGHT_CLIP[1] * b))
        out.append(alpha * w + (1 - alpha) * target)
    return out


def residual_sample(err: np.ndarray, size: int, *, k: float, c: float,
                    rng: np.random.Generator) -> np.ndarray:
    """Indices of ``size`` candidates drawn without replacement with probability
    p ~ e^k / mean(e^k) + c, where e is each candidate's squared residual (Wu, Zhu, Tan, Kartha
    and Lu 2023: RAD with k = 1, c = 1 by default).  Non-finite residuals count as the largest
    finite one, so that a blown-up region is sampled, not skipped."""
    err = np.asarray(err, dtype=float)
    finite = np.isfinite(err)
    err = np.where(finite, err, np.max(err[finite]) if finite.any() else 1.0)
    ek = err**k
    prob = ek / max(float(ek.mean()), np.finfo(float).tiny) + c
    prob /= prob.sum()
    return rng.choice(len(err), size=size, replace=False, p=prob)
