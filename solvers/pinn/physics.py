"""The PINN's physics in plain torch: the ansatz for psi, the network, the Schrödinger residual
and the derivatives every observable needs.

Nothing here imports DeepXDE.  The training process hands :meth:`Ansatz.features`,
:meth:`Ansatz.output` and :func:`residual` to DeepXDE; the parent process rebuilds the trained
network as a :class:`PsiNet` from its weights and evaluates it with the same functions, so the
function that was trained is the function that is measured.

Conventions.  psi = a + i b, and the network maps (x, t) to (a, b).  With
i hbar d_t psi = -(hbar^2 / 2m) Lap psi + V psi, the real and imaginary parts read

    hbar d_t a = -(hbar^2 / 2m) Lap b + V b,
    hbar d_t b =  (hbar^2 / 2m) Lap a - V a,

and :func:`residual` returns both, divided by hbar and made dimensionless by T / A (T the final
time, A the amplitude scale of psi0), so that a residual of 1 means "psi drifts by its own size
over the whole run".  The Laplacian is sum_i d^2/dx_i^2, taken by d reverse-mode passes over
the first derivatives (``torch.autograd.grad`` with ``create_graph``), the same computation as
DeepXDE's ``dde.grad.hessian`` but usable without DeepXDE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["Ansatz", "PsiNet", "ACTIVATIONS", "derivatives", "residual", "amplitude_scale"]

#: Activation functions by name (the same functions DeepXDE's ``activations.get`` returns).
ACTIVATIONS = {"tanh": torch.tanh, "sin": torch.sin}


def amplitude_scale(problem, n: int = 256, seed: int = 0) -> float:
    """The largest |psi0| seen at the origin and at samples of rho0: the network's output scale."""
    x = problem.sample_x0(n, np.random.default_rng(seed))
    x = np.vstack([np.zeros((1, problem.d)), x])
    return float(np.exp(0.5 * np.max(problem.log_rho0(x))))


@dataclass(frozen=True)
class Ansatz:
    """How raw network outputs become psi, and how (x, t) are scaled into the network.

    ``features(xt)`` maps the box lo..hi and [0, T] onto [-1, 1].  ``output(xt, raw)``:

    - ``initial_condition="transform"``: psi = psi0(x) + (t / T) * A * raw, so psi(x, 0) = psi0
      exactly; ``"loss"``: psi = A * raw and psi0 is a loss term.
    - ``walls="transform"``: the raw part is multiplied by prod_i 4 (x_i - lo_i)(hi_i - x_i) /
      (hi_i - lo_i)^2, which vanishes on the walls (psi0 itself is ~0 there: the box holds it to
      many standard deviations); ``"loss"``: zero Dirichlet values are a loss term.
    """

    problem: Any
    lo: tuple[float, ...]
    hi: tuple[float, ...]
    t_final: float
    amplitude: float
    initial_condition: str = "transform"
    walls: str = "loss"

    @property
    def d(self) -> int:
        return len(self.lo)

    def _lo_hi(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lo = torch.as_tensor(self.lo, dtype=like.dtype, device=like.device)
        hi = torch.as_tensor(self.hi, dtype=like.dtype, device=like.device)
        return lo, hi

    def features(self, xt: torch.Tensor) -> torch.Tensor:
        lo, hi = self._lo_hi(xt)
        x = 2.0 * (xt[:, : self.d] - lo) / (hi - lo) - 1.0
        t = 2.0 * xt[:, self.d:] / self.t_final - 1.0
        return torch.cat([x, t], dim=1)

    def psi0(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(a0, b0) at points x (n, d), each (n, 1)."""
        amp = torch.exp(0.5 * self.problem.log_rho0(x))
        phase = self.problem.phase0(x)
        return (amp * torch.cos(phase))[:, None], (amp * torch.sin(phase))[:, None]

    def bubble(self, x: torch.Tensor) -> torch.Tensor:
        lo, hi = self._lo_hi(x)
        return torch.prod(4.0 * (x - lo) * (hi - x) / (hi - lo) ** 2, dim=1, keepdim=True)

    def output(self, xt: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        x, t = xt[:, : self.d], xt[:, self.d:]
        out = self.amplitude * raw
        if self.walls == "transform":
            out = out * self.bubble(x)
        if self.initial_condition == "transform":
            a0, b0 = self.psi0(x)
            out = torch.cat([a0, b0], dim=1) + (t / self.t_final) * out
        return out


class PsiNet(torch.nn.Module):
    """A fully connected network (x, t) -> (a, b) wrapped in an :class:`Ansatz`.

    Its parameter names (``linears.<i>.weight``/``bias``) and forward pass are those of DeepXDE's
    ``FNN`` with a feature and an output transform, so a state dict trained there loads here.
    """

    def __init__(self, layer_sizes: list[int], activation: str, ansatz: Ansatz,
                 dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"):
        super().__init__()
        self.ansatz = ansatz
        self.activation = ACTIVATIONS[activation]
        self.linears = torch.nn.ModuleList(
            torch.nn.Linear(n_in, n_out, dtype=dtype, device=device)
            for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:]))

    @property
    def dtype(self) -> torch.dtype:
        return self.linears[0].weight.dtype

    def forward(self, xt: torch.Tensor) -> torch.Tensor:
        h = self.ansatz.features(xt)
        for linear in self.linears[:-1]:
            h = self.activation(linear(h))
        return self.ansatz.output(xt, self.linears[-1](h))


def _grad(y: torch.Tensor, x: torch.Tensor, create_graph: bool) -> torch.Tensor:
    # every row of y depends only on the same row of x, so the gradient of the sum is the
    # per-row gradient; the graph is kept because a, b and their gradients are differentiated
    # several times
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=create_graph, retain_graph=True)
    return g


def derivatives(xt: torch.Tensor, y: torch.Tensor, d: int, *, laplacian: bool = True,
                create_graph: bool = True) -> dict[str, torch.Tensor]:
    """a, b, their gradients over (x, t) (n, d+1) and, if asked, their spatial Laplacians (n, 1).

    ``xt`` must require grad and ``y = psi(xt)`` be computed from it.
    """
    a, b = y[:, 0:1], y[:, 1:2]
    # the Laplacian differentiates the first derivatives again, so they need a graph
    ga = _grad(a, xt, create_graph or laplacian)
    gb = _grad(b, xt, create_graph or laplacian)
    out = {"a": a, "b": b, "grad_a": ga, "grad_b": gb}
    if laplacian:
        lap_a = sum(_grad(ga[:, i], xt, create_graph)[:, i:i + 1] for i in range(d))
        lap_b = sum(_grad(gb[:, i], xt, create_graph)[:, i:i + 1] for i in range(d))
        out["lap_a"], out["lap_b"] = lap_a, lap_b
    return out


def residual(problem, xt: torch.Tensor, y: torch.Tensor, scale: float = 1.0,
             energy_shift: float = 0.0, create_graph: bool = True) -> list[torch.Tensor]:
    """The Schrödinger residuals [R_re, R_im] at ``xt`` for ``y = (a, b)``, each (n, 1).

    R_re = scale * (d_t a + (hbar/2m) Lap b - ((V - E)/hbar) b),
    R_im = scale * (d_t b - (hbar/2m) Lap a + ((V - E)/hbar) a),

    with E = ``energy_shift`` (0 for the equation as stated; a constant E only rotates psi's
    global phase).  Both vanish exactly for solutions of i hbar d_t psi = H psi.
    """
    d = problem.d
    der = derivatives(xt, y, d, laplacian=True, create_graph=create_graph)
    a, b = der["a"], der["b"]
    a_t, b_t = der["grad_a"][:, d:], der["grad_b"][:, d:]
    kin = problem.hbar / (2.0 * problem.mass)
    pot = ((problem.potential(xt[:, :d]) - energy_shift) / problem.hbar)[:, None]
    r_re = a_t + kin * der["lap_b"] - pot * b
    r_im = b_t - kin * der["lap_a"] + pot * a
    return [scale * r_re, scale * r_im]


def residual_scale(t_final: float, amplitude: float) -> float:
    """The factor T / A that makes residuals dimensionless (see the module docstring)."""
    return t_final / amplitude


def as_tensor(x, dtype: torch.dtype, device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=dtype, device=device)


def with_time(x: torch.Tensor, t: float) -> torch.Tensor:
    return torch.cat([x, torch.full((x.shape[0], 1), float(t), dtype=x.dtype, device=x.device)], 1)
