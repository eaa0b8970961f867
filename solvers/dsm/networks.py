"""The two velocity networks of DSM, u_theta(x, t) and v_theta(x, t), evaluated together.

Both MLPs have the same shape, so their weights are stacked along a leading axis of size 2 and
one batched matrix product evaluates both: the simulation loop and every derivative pass launch
half the operations two separate networks would.  Row 0 of every stacked tensor is the osmotic
network u, row 1 the current network v.

Each network reads its own copy of the input (``xu`` for u, ``xv`` for v).  The copies hold the
same values; keeping them separate lets one reverse pass differentiate div u + div v and return
grad div u and grad div v apart (see :mod:`solvers.dsm.equations`).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

__all__ = ["TwinMLP", "ACTIVATIONS"]

#: Smooth activations only: the losses need second derivatives of the networks.
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "silu": torch.nn.functional.silu,
    "softplus": torch.nn.functional.softplus,
}


class TwinMLP(nn.Module):
    """Two MLPs R^{d+1} -> R^d (u and v) with stacked weights.

    Parameters
    ----------
    d : int
        Dimension of x.
    width, depth : int
        Hidden width and number of hidden layers.
    activation : str
        One of :data:`ACTIVATIONS`.
    x_shift, x_scale, t_scale : float
        Inputs are (x - x_shift) / x_scale and the time feature s(t): t / t_scale, or with
        ``t_fast`` log(1 + t / t_fast) / log(1 + t_scale / t_fast), which gives the first
        t_fast of a fast start (a narrow packet's spreading) as much of [0, 1] as the rest.
    t_fast : float or None
        The time scale of a fast start (None: the linear feature).
    t_rate : (float, sequence of float) or None
        The time feature as the problem's own clock: ``(h, w)`` with w_k = 1 / tau(k h) the
        rate of its dynamics on a uniform grid of step h over [0, t_scale]; the feature is
        the integral of the piecewise-linear rate, int_0^t w / int_0^T w, so equal shares of
        [0, 1] hold equal numbers of time scales (a squeeze mid-run as much of [0, 1] as the
        slow rest).  Its derivative is continuous, so du/dt has no jumps.  Excludes t_fast.
    u_cap : float or None
        When given, the osmotic velocity is u_cap tanh(u / u_cap): smooth, unchanged where
        |u| << u_cap, bounded by u_cap near a node of the density, where the true
        u = (hbar/2m) grad log rho diverges.
    out_scale : float
        The networks' raw outputs are multiplied by this (a typical velocity).
    initial : callable or None
        ``initial(xu, xv) -> (u0, v0)``: when given, the initial condition is built in,
        u = u0(x) + s(t) * NN_u(x, t) and likewise v, so it holds exactly at t = 0 (with
        ``path_norm``, u0 is carried along the paths' affine motion, see :meth:`forward`).
    generator : torch.Generator or None
        Draws the initial weights (the run's own stream, not torch's global one).
    path_norm : int
        0: the fixed input scaling above.  k > 0: inputs are (x - mu(t)) / s(t), with mu and
        log s smooth (Chebyshev polynomials of degree k in the time feature) fitted to the
        training trajectories' own mean and spread at every time (:meth:`update_norm`), so a
        packet that widens 50-fold is seen at unit width throughout, and the steep u of its
        narrow start is a slope of order one for the network.
    """

    def __init__(self, d: int, width: int, depth: int, activation: str = "tanh",
                 x_shift: float = 0.0, x_scale: float = 1.0, t_scale: float = 1.0,
                 out_scale: float = 1.0, initial=None, dtype=torch.float32,
                 t_fast: float | None = None, u_cap: float | None = None,
                 generator: torch.Generator | None = None, path_norm: int = 0,
                 t_rate: tuple[float, "list[float]"] | None = None):
        super().__init__()
        if t_rate is not None and t_fast:
            raise ValueError("t_rate and t_fast are two time features: give one")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}")
        self.d, self.width, self.depth = d, width, depth
        self.act = ACTIVATIONS[activation]
        self.x_shift, self.x_scale, self.t_scale = float(x_shift), float(x_scale), float(t_scale)
        self.t_fast = float(t_fast) if t_fast else None
        self.u_cap = float(u_cap) if u_cap else None
        self._log_norm = math.log1p(self.t_scale / self.t_fast) if self.t_fast else 1.0
        self.out_scale = float(out_scale)
        self.t_rate_step = None
        if t_rate is not None:
            step, rate = float(t_rate[0]), torch.as_tensor(t_rate[1], dtype=torch.float64)
            if rate.dim() != 1 or len(rate) < 2 or not bool((rate > 0).all()) or step <= 0:
                raise ValueError("t_rate: a step > 0 and at least two positive rates")
            # the integral at the grid points (trapezoids), normalised to 1 at the end
            cum = torch.cat([rate.new_zeros(1), torch.cumsum(0.5 * step * (rate[1:] + rate[:-1]), 0)])
            self.t_rate_step = step
            self.register_buffer("rate", (rate / cum[-1]).to(dtype))
            self.register_buffer("rate_cum", (cum / cum[-1]).to(dtype))
        self.initial = initial
        sizes = [d + 1] + [width] * depth + [d]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            # Glorot-uniform per network, the usual choice for tanh
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            w = torch.empty(2, fan_in, fan_out, dtype=dtype)
            w.uniform_(-bound, bound, generator=generator)
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(2, 1, fan_out, dtype=dtype)))
        self.path_norm = int(path_norm)
        if self.path_norm:
            # the fitted coefficients of mu and log s (buffers: saved with the weights)
            k = self.path_norm + 1
            coef_mu = torch.zeros(k, d, dtype=dtype)
            coef_mu[0] = self.x_shift
            coef_log_s = torch.zeros(k, d, dtype=dtype)
            coef_log_s[0] = math.log(self.x_scale)
            self.register_buffer("coef_mu", coef_mu)
            self.register_buffer("coef_log_s", coef_log_s)
        #: the running path statistics (N+1, 2, d): mean and spread per time (the solver's
        #: checkpoints keep them)
        self.stats: torch.Tensor | None = None

    def forward(self, xu: torch.Tensor, xv: torch.Tensor, t: torch.Tensor):
        """u(xu, t), v(xv, t) for points of shape (n, d) and times (n,); returns two (n, d).

        Also works per point (shapes (d,) and ()), as torch.func.vmap calls it.
        """
        single = xu.dim() == 1
        if single:
            xu, xv, t = xu[None], xv[None], t[None]
        t_in = self.time_feature(t)[:, None]
        if self.path_norm:
            basis = self._basis(t_in[:, 0])
            shift, scale = basis @ self.coef_mu, torch.exp(basis @ self.coef_log_s)
        else:
            shift, scale = self.x_shift, self.x_scale
        z = torch.stack([torch.cat([(xu - shift) / scale, t_in], -1),
                         torch.cat([(xv - shift) / scale, t_in], -1)])
        n_layers = len(self.weights)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            z = torch.baddbmm(b, z, w)
            if i < n_layers - 1:
                z = self.act(z)
        u, v = z[0] * self.out_scale, z[1] * self.out_scale
        if self.initial is not None and self.path_norm:
            # the initial u carried along the paths' affine motion: a density that only moves
            # and widens, rho_t(x) = rho_0(a(x)) (s0/s)^d with a(x) = mu0 + (x - mu) s0 / s,
            # has grad log rho_t = (s0/s) grad log rho_0(a(x)); the network learns the rest
            basis0 = self._basis(torch.zeros_like(t_in[:1, 0]))
            ratio = torch.exp(basis0 @ self.coef_log_s) / scale
            u0, v0 = self.initial(basis0 @ self.coef_mu + (xu - shift) * ratio, xv)
            u, v = ratio * u0 + t_in * u, v0 + t_in * v
        elif self.initial is not None:
            u0, v0 = self.initial(xu, xv)
            u, v = u0 + t_in * u, v0 + t_in * v
        if self.u_cap is not None:
            u = self.u_cap * torch.tanh(u / self.u_cap)
        if single:
            return u[0], v[0]
        return u, v

    def time_feature(self, t: torch.Tensor) -> torch.Tensor:
        """s(t) in [0, 1] (see the class docstring)."""
        if self.t_rate_step is not None:
            # the exact integral of the linear rate within the cell k (floor and indexing,
            # not searchsorted, so that torch.func.vmap batches it)
            h = self.t_rate_step
            k = torch.clamp(torch.floor(t.detach() / h).long(), 0, len(self.rate) - 2)
            dt = t - k.to(t.dtype) * h
            w0, w1 = self.rate[k], self.rate[k + 1]
            return self.rate_cum[k] + w0 * dt + 0.5 * (w1 - w0) * dt * dt / h
        if self.t_fast is None:
            return t / self.t_scale
        return torch.log1p(t / self.t_fast) / self._log_norm

    def _basis(self, s: torch.Tensor) -> torch.Tensor:
        """Chebyshev polynomials T_0 .. T_k of 2 s - 1 (n, k + 1) by their recurrence."""
        y = 2.0 * s - 1.0
        polys = [torch.ones_like(y), y]
        for _ in range(self.path_norm - 1):
            polys.append(2.0 * y * polys[-1] - polys[-2])
        return torch.stack(polys[:self.path_norm + 1], -1)

    @torch.no_grad()
    def update_norm(self, times: torch.Tensor, xs: torch.Tensor, momentum: float = 0.9) -> None:
        """Fold the trajectories ``xs`` (N+1, B, d) at ``times`` (N+1,) into the running mean
        and spread per time (an exponential average over updates, ``momentum`` the old share;
        the first update takes them as they are) and refit mu(t), log s(t) by least squares.

        The spread is floored at 1e-6 of the fixed scale, so a collapsed set of paths cannot
        divide by zero.  (A polynomial fit, not an interpolation table: the residuals
        differentiate the inputs in t, and a table's kinks would become jumps in du/dt.)
        """
        x = xs.double()
        now = torch.stack([x.mean(1), x.std(1).clamp_min(1e-6 * self.x_scale)], 1)
        if self.stats is not None and self.stats.shape == now.shape:
            self.stats = momentum * self.stats + (1.0 - momentum) * now
        else:
            self.stats = now
        basis = self._basis(self.time_feature(times.double()))
        target = torch.cat([self.stats[:, 0], self.stats[:, 1].log()], -1)
        coef = torch.linalg.lstsq(basis.cpu(), target.cpu()).solution.to(self.coef_mu)
        self.coef_mu.copy_(coef[:, :self.d])
        self.coef_log_s.copy_(coef[:, self.d:])

    @torch.no_grad()
    def drift(self, x: torch.Tensor, t: torch.Tensor, nu: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(v + nu u)(x, t) and u for the simulation; no graph is built."""
        u, v = self.forward(x, x, t)
        return v + nu * u, u
