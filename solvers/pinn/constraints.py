"""The PINN's norm and energy soft constraints, by the observables' own quadrature.

Imported by the training process (:mod:`solvers.pinn.worker`) and by tests; it needs torch and
NumPy only (no DeepXDE).
"""

from __future__ import annotations

import numpy as np
import torch

from .observe import quadrature_rule

__all__ = ["Constraints"]


class Constraints:
    """The norm (and energy) soft constraints, by the quadrature the observables use.

    At ``n_times`` times t_j = j T / n_times (j = 1..n; t = 0 is fixed by the hard initial
    condition) the network is evaluated on a quadrature rule of the box
    (:func:`~solvers.pinn.observe.quadrature_rule`: a trapezoid grid for d <= 2, scrambled Sobol
    points above), giving N_j = int |psi|^2 and, with ``energy``, <H>_j = int [(hbar^2/2m)
    |grad psi|^2 + V |psi|^2] / N_j.  The errors are N_j - 1 and (<H>_j - E0) / E_scale, with
    E0 the same quadrature's <H> of psi0 and E_scale = max(|E0|, the problem's energy spread).

    Hand-written in torch: DeepXDE has no loss term that integrates the network over space
    (its conditions are pointwise); the errors enter DeepXDE's loss as extra outputs of the PDE
    function (see :meth:`solvers.pinn.trainer.Trainer._pde`), so its loss weights, optimisers
    and history still serve.
    """

    def __init__(self, problem, ansatz, net, *, grid_points, qmc_points, n_times, energy, seed):
        self.problem, self.ansatz, self.net = problem, ansatz, net
        self.rule = quadrature_rule(ansatz.lo, ansatz.hi, grid_points=grid_points,
                                    qmc_points=qmc_points, seed=seed)
        self.times = ansatz.t_final * np.arange(1, n_times + 1) / n_times
        self.energy = energy
        self._cache: dict = {}
        self.e0 = self.e_scale = None
        if energy:
            self.e0 = float(self._evaluate(torch.float64, initial=True)[1][0].detach())
            spread = float(problem.grid_hint().e_spread)
            self.e_scale = max(abs(self.e0), spread)

    def _tensors(self, dtype):
        if dtype not in self._cache:
            n, d = len(self.rule.weights), self.problem.d
            x = np.repeat(self.rule.points[None], len(self.times), axis=0).reshape(-1, d)
            t = np.repeat(self.times, n)[:, None]
            V = np.asarray(self.problem.potential(self.rule.points), dtype=float)
            self._cache[dtype] = (torch.as_tensor(np.hstack([x, t]), dtype=dtype),
                                  torch.as_tensor(self.rule.weights, dtype=dtype),
                                  torch.as_tensor(V, dtype=dtype))
        return self._cache[dtype]

    def _evaluate(self, dtype, initial: bool = False):
        """(norms (n_times,), energies (n_times,) or None), with graphs to the weights."""
        xt, w, V = self._tensors(dtype)
        n_t, n = len(self.times), len(w)
        d = self.problem.d
        if initial:  # psi0 on the rule (the energy's reference), no network
            xt = xt[:n].clone()
        xt = xt.clone().requires_grad_(self.energy)
        if initial:
            y = torch.cat(self.ansatz.psi0(xt[:, :d]), dim=1)
            n_t = 1
        else:
            y = self.net(xt)
        rho = (y[:, 0] ** 2 + y[:, 1] ** 2).reshape(n_t, n)
        norms = rho @ w
        if not self.energy:
            return norms, None
        create = not initial
        ga = torch.autograd.grad(y[:, 0].sum(), xt, create_graph=create, retain_graph=True)[0]
        gb = torch.autograd.grad(y[:, 1].sum(), xt, create_graph=create, retain_graph=True)[0]
        grad_sq = (ga[:, :d] ** 2 + gb[:, :d] ** 2).sum(dim=1).reshape(n_t, n)
        kin = self.problem.hbar**2 / (2 * self.problem.mass)
        energies = ((kin * grad_sq + V * rho) @ w) / norms
        return norms, energies

    def errors(self, dtype) -> list[torch.Tensor]:
        norms, energies = self._evaluate(dtype)
        out = [norms - 1.0]
        if self.energy:
            out.append((energies - self.e0) / self.e_scale)
        return out
