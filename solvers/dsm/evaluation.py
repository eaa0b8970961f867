"""DSM's evaluation: fresh trajectories of the learned diffusion, integrated by stochastic Heun
on a grid that contains every record time, reduced to the record's observables on the fly."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..base import Observables
from .sampling import heun

__all__ = ["eval_grid", "observe"]


def eval_grid(times: np.ndarray, train_times: np.ndarray, steps: int) -> tuple[np.ndarray, list[int]]:
    """A time grid containing every record time, with >= ``steps`` steps in all, and at least two
    steps per training step where the training grid is finer (a fast start); with the index of
    each record time in it."""
    per = max(1, math.ceil(steps / max(len(times) - 1, 1)))
    pieces, index = [np.array([times[0]])], [0]
    for a, b in zip(times[:-1], times[1:]):
        # training nodes that are a record time up to rounding (a float32 grid against a float64
        # one) are not inside the interval: counting them would halve steps for nothing
        tol = 1e-5 * (b - a)
        inside = train_times[(train_times > a + tol) & (train_times < b - tol)]
        if b <= a:
            nodes = np.array([])
        elif inside.size:  # the training nodes, each step halved, and >= per steps
            nodes = np.union1d(inside, np.linspace(a, b, per + 1))
            nodes = np.union1d(nodes, 0.5 * (nodes[1:] + nodes[:-1]))[1:]
        else:
            nodes = np.linspace(a, b, per + 1)[1:]
        pieces.append(nodes)
        index.append(index[-1] + len(nodes))
    return np.concatenate(pieces), index


@torch.no_grad()
def observe(net, problem, times: np.ndarray, grid: torch.Tensor, index: list[int], *, S: int,
            seed: int, nu: float, diffusion: float, chunk: int, keep_coords: int) -> Observables:
    """Observables of ``S`` trajectories of dX = (v + nu u) dt + diffusion dW with the twin
    network ``net``, from the problem's initial density, in chunks of ``chunk`` (the grid's
    dtype and device are the network's); ``keep_coords`` coordinates of every sample are kept."""
    dtype, device = grid.dtype, grid.device
    at_record = {i: j for j, i in enumerate(index)}
    T, d = len(times), problem.d
    k = min(keep_coords, d)
    s1, s2 = np.zeros((T, d)), np.zeros((T, d))
    c1, c2, energy = np.zeros(T), np.zeros(T), np.zeros(T)
    kept = np.empty((T, S, k), dtype=np.float32 if dtype == torch.float32 else np.float64)
    gen = torch.Generator(device=device).manual_seed(seed)
    done = 0
    while done < S:
        n = min(chunk, S - done)
        tcol = torch.empty(n, dtype=dtype, device=device)

        def drift(x, t):
            tcol.fill_(t)
            return net.drift(x, tcol, nu)[0]

        def record(i, x, t):
            j = at_record.get(i)
            if j is None:
                return
            x64 = x.double()
            s1[j] += x64.sum(0).cpu().numpy()
            s2[j] += (x64 * x64).sum(0).cpu().numpy()
            xb = x64.mean(1)
            c1[j] += float(xb.sum())
            c2[j] += float((xb * xb).sum())
            tcol.fill_(t)
            u, v = net(x, x, tcol)
            e = 0.5 * problem.mass * ((u.double() ** 2).sum(1) + (v.double() ** 2).sum(1)) \
                + problem.potential(x64, t)
            energy[j] += float(e.sum())
            kept[j, done:done + n] = x[:, :k].cpu().numpy()

        heun(drift, problem.sample_x0(n, gen, dtype=dtype), grid, diffusion, gen, record)
        done += n
    mean = s1 / S
    var = (s2 / S - mean**2) * S / (S - 1)
    com_var = (c2 / S - (c1 / S) ** 2) * S / (S - 1)
    return Observables(
        times=times, mean=mean, var=var, com_var=com_var, energy=energy / S, samples=kept,
        n_samples=S, sample_kind="paths", diffusion_nu=nu,
        diagnostics={"eval_steps": len(grid) - 1, "eval_integrator": "heun", "eval_nu": nu})
