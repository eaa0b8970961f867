"""Trajectories of dX = (v + nu u)(X, t) dt + sqrt(nu hbar / m) dW: Euler–Maruyama for
training (:func:`simulate`, with the points trained on, :func:`select_points`) and stochastic
Heun for evaluation (:func:`heun`).

The training simulation runs without gradients (the loss never differentiates through it) and
keeps the drift of every step, so that the training points between grid times cost no extra
network evaluation.  Evaluation needs accuracy more than speed, and the noise is additive, for
which stochastic Heun is weak order 2 (Euler–Maruyama: 1).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

__all__ = ["simulate", "select_points", "heun", "time_grid", "SCHEMES"]

#: drift(x, t) -> (n, d): the drift of the diffusion at points x (n, d) and time t (float).
Drift = Callable[[torch.Tensor, float], torch.Tensor]

#: ``grid``: every simulated point at the grid times; ``random``: M points per trajectory at
#: random steps, each advanced by a random fraction of its step (jittered times).
SCHEMES = ("grid", "random")


def time_grid(t_final: float, steps: int, time_scale: float | None, per_scale: int,
              local=None) -> list[float]:
    """Times 0 = t_0 < ... < t_N = T whose steps resolve the dynamics' own time scale.

    The step at time t is min(T / ``steps``, tau(t) / ``per_scale``) with tau(t) the local time
    scale ``local(t)`` (default: the constant ``time_scale``): uniform where the dynamics is
    slow, ``per_scale`` steps per time scale where it is fast (a narrow packet's spreading start,
    a fast squeeze).  ``per_scale = 0`` or no time scale: the uniform grid of ``steps`` steps.
    """
    uniform = t_final / steps
    if not per_scale or time_scale is None or time_scale / per_scale >= uniform:
        return [t_final * k / steps for k in range(steps + 1)]
    tau = local or (lambda t: time_scale)
    times = [0.0]
    while times[-1] < t_final:
        t = times[-1]
        times.append(t + min(uniform, tau(t) / per_scale))
    # the last step ends at T: stretch the steps slightly rather than leave a sliver
    scale = t_final / times[-1]
    return [t * scale for t in times]


@torch.no_grad()
def simulate(net, x0: torch.Tensor, times: torch.Tensor, nu: float, diffusion: float,
             generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Euler–Maruyama from ``x0`` (B, d) over ``times`` (N+1,).

    Returns positions (N+1, B, d) and the drift used at each step (N, B, d).
    ``diffusion`` is sqrt(nu hbar / m).
    """
    n_steps = len(times) - 1
    B, d = x0.shape
    noise = torch.randn((n_steps, B, d), generator=generator, device=x0.device, dtype=x0.dtype)
    dts = (times[1:] - times[:-1]).to(x0.dtype)
    noise.mul_((diffusion * dts.sqrt())[:, None, None])
    xs = torch.empty((n_steps + 1, B, d), device=x0.device, dtype=x0.dtype)
    drifts = torch.empty((n_steps, B, d), device=x0.device, dtype=x0.dtype)
    xs[0] = x0
    tcol = torch.empty(B, device=x0.device, dtype=x0.dtype)
    for i in range(n_steps):
        tcol.fill_(float(times[i]))
        b, _ = net.drift(xs[i], tcol, nu)
        drifts[i] = b
        torch.addcmul(xs[i] + noise[i], b, dts[i], out=xs[i + 1])
    return xs, drifts


@torch.no_grad()
def select_points(xs: torch.Tensor, drifts: torch.Tensor, times: torch.Tensor, scheme: str,
                  points: int, diffusion: float, generator: torch.Generator | None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Training points (n, d) and their times (n,) from simulated trajectories.

    ``grid`` takes all (N+1) B simulated points.  ``random`` takes ``points`` distinct steps per
    trajectory and moves each by a uniform fraction s of its step with the step's drift and
    fresh noise of variance s dt: a point of the same process at a time between grid times.
    """
    n1, B, d = xs.shape
    if scheme == "grid":
        return xs.reshape(-1, d), times[:, None].expand(n1, B).reshape(-1).to(xs.dtype)
    if scheme != "random":
        raise ValueError(f"scheme must be one of {SCHEMES}")
    n_steps = n1 - 1
    if not 1 <= points <= n_steps:
        raise ValueError(f"points per trajectory must be in [1, {n_steps}], got {points}")
    dev = xs.device
    # M distinct steps per trajectory: the first M of a random permutation
    steps = torch.rand((B, n_steps), generator=generator, device=dev).argsort(dim=1)[:, :points]
    cols = torch.arange(B, device=dev)[:, None].expand(B, points)
    base, drift = xs[steps, cols], drifts[steps, cols]  # (B, M, d)
    t0 = times.to(dev)[steps].to(xs.dtype)
    dt = (times.to(dev)[steps + 1] - times.to(dev)[steps]).to(xs.dtype)
    s = torch.rand((B, points), generator=generator, device=dev, dtype=xs.dtype)
    noise = torch.randn((B, points, d), generator=generator, device=dev, dtype=xs.dtype)
    h = (s * dt)[..., None]
    x = base + drift * h + diffusion * h.sqrt() * noise
    return x.reshape(-1, d), (t0 + s * dt).reshape(-1)


@torch.no_grad()
def heun(drift: Drift, x0: torch.Tensor, grid: torch.Tensor, diffusion: float,
         generator: torch.Generator | None,
         observe: Callable[[int, torch.Tensor, float], None]) -> torch.Tensor:
    """Stochastic Heun from ``x0`` (n, d) over ``grid`` (K+1,), for additive noise
    ``diffusion`` dW; calls ``observe(i, x, t)`` at every grid point i (0 included) and returns
    the final positions.

    One step: b0 = drift(x, t), trial = x + b0 dt + dW, x' = x + (b0 + drift(trial, t')) dt/2
    + dW with the same dW (weak order 2 for additive noise).
    """
    x = x0
    observe(0, x, float(grid[0]))
    for i in range(len(grid) - 1):
        t0, t1 = float(grid[i]), float(grid[i + 1])
        dt = t1 - t0
        dw = diffusion * math.sqrt(dt) * torch.randn(x.shape, generator=generator,
                                                     dtype=x.dtype, device=x.device)
        b0 = drift(x, t0)
        trial = x + b0 * dt + dw
        x = x + 0.5 * (b0 + drift(trial, t1)) * dt + dw
        observe(i + 1, x, t1)
    return x
