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

__all__ = ["Ansatz", "PsiNet", "ACTIVATIONS", "derivatives", "residual", "amplitude_scale",
           "input_scales", "fourier_wavenumbers", "phase_rate", "causal_weights"]

#: Bound of the change of log |psi| in the ``exp`` ansatz (e^15: squared residuals stay far
#: from float32 overflow during line searches).
EXP_BOUND = 15.0
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

    ``features(xt)``: x' = (x - x_shift) / x_scale and t' = (t - t_shift) / t_scale (by default
    the box lo..hi and [0, T] onto [-1, 1]; :func:`input_scales` gives the problem's own
    length and time scales instead), followed, when ``fourier`` is not empty, by
    sin(k_j (x_i - x_shift_i)) and cos(k_j (x_i - x_shift_i)) for every wavenumber k_j
    (1/length) and coordinate i.  ``output(xt, raw)``:

    - ``initial_condition="transform"``: psi = psi0(x) + (t / T) * A * raw, so psi(x, 0) = psi0
      exactly; ``"exp"``: psi = psi0(x) exp((t / T) (raw_a + i raw_b)), also exact at t = 0,
      with the network learning the change of log psi (smooth where psi itself oscillates: a
      WKB-like, multiplicative hard constraint; psi keeps the zeros of psi0), NN scaled by
      ``rate`` (the phase the run turns: :func:`phase_rate`);
      ``"loss"``: psi = A * raw and psi0 is a loss term.
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
    x_shift: tuple[float, ...] | None = None
    x_scale: tuple[float, ...] | None = None
    t_shift: float | None = None
    t_scale: float | None = None
    fourier: tuple[float, ...] = ()
    rate: float = 1.0

    @property
    def d(self) -> int:
        return len(self.lo)

    @property
    def feature_dim(self) -> int:
        """Inputs of the first layer: d + 1 scaled coordinates and 2 d per Fourier wavenumber."""
        return self.d + 1 + 2 * self.d * len(self.fourier)

    def scales(self) -> tuple[tuple[float, ...], tuple[float, ...], float, float]:
        """(x_shift, x_scale, t_shift, t_scale), the box's where none were given."""
        lo, hi = np.asarray(self.lo, dtype=float), np.asarray(self.hi, dtype=float)
        x_shift = self.x_shift if self.x_shift is not None else tuple(0.5 * (lo + hi))
        x_scale = self.x_scale if self.x_scale is not None else tuple(0.5 * (hi - lo))
        t_shift = self.t_shift if self.t_shift is not None else 0.5 * self.t_final
        t_scale = self.t_scale if self.t_scale is not None else 0.5 * self.t_final
        return tuple(map(float, x_shift)), tuple(map(float, x_scale)), float(t_shift), float(t_scale)

    def _lo_hi(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lo = torch.as_tensor(self.lo, dtype=like.dtype, device=like.device)
        hi = torch.as_tensor(self.hi, dtype=like.dtype, device=like.device)
        return lo, hi

    def features(self, xt: torch.Tensor) -> torch.Tensor:
        x_shift, x_scale, t_shift, t_scale = self.scales()
        shift = torch.as_tensor(x_shift, dtype=xt.dtype, device=xt.device)
        scale = torch.as_tensor(x_scale, dtype=xt.dtype, device=xt.device)
        dx = xt[:, : self.d] - shift
        parts = [dx / scale, (xt[:, self.d:] - t_shift) / t_scale]
        if self.fourier:
            k = torch.as_tensor(self.fourier, dtype=xt.dtype, device=xt.device)
            phase = (dx[:, :, None] * k).reshape(len(xt), -1)  # (n, d * K), coordinate-major
            parts += [torch.sin(phase), torch.cos(phase)]
        return torch.cat(parts, dim=1)

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
        if self.initial_condition == "exp":
            out = self.rate * raw
            out = out * self.bubble(x) if self.walls == "transform" else out
            # psi0 exp(s (p + i q)) with s = t / T: modulus e^{s p}, phase turned by s q
            a0, b0 = self.psi0(x)
            s = t / self.t_final
            # the change of log |psi| is bounded smoothly by EXP_BOUND (identity far below it):
            # an L-BFGS line search's trial steps must not overflow the exponential
            grow = torch.exp(s * EXP_BOUND * torch.tanh(out[:, 0:1] / EXP_BOUND))
            c, sn = torch.cos(s * out[:, 1:2]), torch.sin(s * out[:, 1:2])
            return torch.cat([grow * (a0 * c - b0 * sn), grow * (a0 * sn + b0 * c)], dim=1)
        out = self.amplitude * raw
        if self.walls == "transform":
            out = out * self.bubble(x)
        if self.initial_condition == "transform":
            a0, b0 = self.psi0(x)
            out = torch.cat([a0, b0], dim=1) + (t / self.t_final) * out
        return out


def phase_rate(problem) -> float:
    """T e_spread / hbar: the relative phase that the spread of occupied energies turns over the
    run, the scale of log psi's change (the ``exp`` ansatz's output scale)."""
    rate = float(problem.t_final) * float(problem.grid_hint().e_spread) / float(problem.hbar)
    if not (np.isfinite(rate) and rate > 0):
        raise ValueError(f"initial_condition='exp': T e_spread / hbar = {rate}; it must be finite "
                         "and positive")
    return rate


def input_scales(problem, n: int = 4096, seed: int = 0) -> dict[str, Any]:
    """The problem's own scales for the network's inputs: x centred on the mean of rho0 and
    divided by its standard deviation per coordinate (from ``n`` samples of rho0), t divided by
    the shortest of the problem's time scales over [0, T] (:meth:`Problem.time_scale`)."""
    x = np.asarray(problem.sample_x0(n, np.random.default_rng(seed)), dtype=float)
    sd = np.std(x, axis=0)
    if not np.all(np.isfinite(sd)) or np.any(sd <= 0):
        raise ValueError(f"input_scaling='problem': rho0's samples have standard deviations {sd}; "
                         "they must be finite and positive")
    tau = float(np.min(problem.time_scale(np.linspace(0.0, float(problem.t_final), 201))))
    if not (np.isfinite(tau) and tau > 0):
        raise ValueError(f"input_scaling='problem': the problem's time scale is {tau}; it must be "
                         "finite and positive")
    return {"x_shift": tuple(map(float, np.mean(x, axis=0))), "x_scale": tuple(map(float, sd)),
            "t_shift": 0.0, "t_scale": tau}


def fourier_wavenumbers(problem, n: int, scale: float = 1.0, lowest: float | None = None) -> tuple:
    """``n`` wavenumbers spaced geometrically from ``lowest`` (default: 2 pi over the box's widest
    side) to ``scale`` times the problem's k_max (its largest wavenumber with non-negligible
    amplitude on [0, T], :class:`~problems.base.GridHint`)."""
    if n <= 0:
        return ()
    hint = problem.grid_hint()
    top = scale * float(hint.k_max)
    width = float(np.max(np.asarray(hint.hi) - np.asarray(hint.lo)))
    low = lowest if lowest is not None else 2 * np.pi / width
    if not (np.isfinite(top) and top > 0):
        raise ValueError(f"fourier_features: the problem's k_max is {hint.k_max}; it must be "
                         "finite and positive")
    low = min(low, top)
    return tuple(map(float, np.geomspace(low, top, n))) if n > 1 else (top,)


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
    # V at each collocation point's own time (a driven problem's potential changes with t)
    pot = ((problem.potential(xt[:, :d], xt[:, d]) - energy_shift) / problem.hbar)[:, None]
    r_re = a_t + kin * der["lap_b"] - pot * b
    r_im = b_t - kin * der["lap_a"] + pot * a
    return [scale * r_re, scale * r_im]


def causal_weights(t: torch.Tensor, r2: torch.Tensor, t_final: float, slices: int,
                   eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The causal weights of Wang, Sankaran and Perdikaris ("Respecting causality is all you
    need", 2022): [0, T] is cut into ``slices`` equal slices, L_k is the mean of the squared
    residuals ``r2`` (n, 1) of the points of slice k (0 for an empty slice), and every point of
    slice i gets w_i = exp(-eps sum_{k<i} L_k), so a slice trains only once the slices before
    it are fitted.  Returns the per-point weights (n, 1) and the per-slice weights (slices,),
    without gradients.
    """
    with torch.no_grad():
        idx = torch.clamp((t.reshape(-1) / t_final * slices).long(), 0, slices - 1)
        flat = r2.reshape(-1)
        total = torch.zeros(slices, dtype=flat.dtype, device=flat.device).index_add_(0, idx, flat)
        count = torch.zeros(slices, dtype=flat.dtype, device=flat.device).index_add_(
            0, idx, torch.ones_like(flat))
        loss = total / torch.clamp(count, min=1.0)
        before = torch.cumsum(loss, 0) - loss
        w_slice = torch.exp(-eps * before)
        return w_slice[idx][:, None], w_slice


def residual_scale(t_final: float, amplitude: float) -> float:
    """The factor T / A that makes residuals dimensionless (see the module docstring)."""
    return t_final / amplitude


def as_tensor(x, dtype: torch.dtype, device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=dtype, device=device)


def with_time(x: torch.Tensor, t: float) -> torch.Tensor:
    return torch.cat([x, torch.full((x.shape[0], 1), float(t), dtype=x.dtype, device=x.device)], 1)
