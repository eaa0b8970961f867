"""A physics-informed neural network for psi, trained with DeepXDE (PyTorch backend).

psi = a + i b is the output pair of a fully connected network of (x, t) on the problem's box
x [0, T].  The loss is the mean square of the two Schrödinger residuals at collocation points
(:func:`solvers.pinn.physics.residual`), plus zero Dirichlet values on the walls and psi0 at
t = 0, each either a loss term or built into the output (parameters ``walls`` and
``initial_condition``).  Adam runs for ``iterations`` steps or ``max_seconds``, whichever comes
first, then optionally L-BFGS.

The training techniques of the time-dependent PINN literature are options, each a recorded
parameter (defaults chosen by measurement on harmonic_1d; the ablation in results/pinn_ablation
shows each one's effect):

- hard initial conditions, additive (psi0 + t A NN) or multiplicative (psi0 exp(t NN), the
  default: the network learns the change of log psi, which is smooth where psi oscillates),
  with the last layer started at zero (psi starts as psi0 frozen in time);
- input scaling by the problem's own length (rho0's standard deviation) and time scale
  (:meth:`Problem.time_scale`), optional Fourier features up to the problem's k_max;
- causal training (Wang, Sankaran and Perdikaris 2022): time-slice weights of the residual;
- soft constraints int |psi|^2 = 1 and <H> conserved, by the quadrature of the observables;
- gradient-norm loss balancing (Wang, Teng and Perdikaris 2021; Wang et al. 2023);
- residual-based adaptive collocation, RAD or RAR-D (Wu et al. 2023);
- an L-BFGS finish, optionally in float64, with a share of the budget kept for it;
- ``energy_shift``: the global phase e^{-i E0 t / hbar} factored out (on by default).

DeepXDE runs only in a separate training process (:mod:`solvers.pinn.worker`), never in the
caller's: its import and its float setting change torch's global default device and dtype.  The
trained weights come back and the network is rebuilt here as a plain torch module
(:class:`~solvers.pinn.physics.PsiNet`), checked against the training process's own outputs.

Observables come from the learned psi on the record's time grid (:mod:`solvers.pinn.observe`):
tensor-product trapezoid quadrature for d <= 2, scrambled Sobol points for d >= 3; the density
is normalised by its own integral at every time, and the integral's worst distance from 1 is
``diagnostics["norm_drift"]``.  u and v come from psi's autograd gradients.

Time limits: ``max_seconds`` ends training early and is reported (``diagnostics["stopped"]``);
the harness's ``--time-limit`` (``budget.seconds``) fails the run with ``TimeoutError``, as it
does for every solver.
"""

from __future__ import annotations

import importlib.util
import math
import uuid
from pathlib import Path

import numpy as np
import torch

from ..base import Budget, Clock, Observables, Solver
from ..isolated import get_process
from .observe import moments, quadrature_rule, velocity
from .params import DTYPES, PinnParams
from .physics import (Ansatz, PsiNet, amplitude_scale, fourier_wavenumbers, input_scales,
                      phase_rate, residual, residual_scale)

__all__ = ["Pinn"]

#: Largest dimension accepted (see ``skip``).
MAX_D = 16
#: Extra seconds the parent waits for the training process beyond the run's time limit.
GRACE_S = 120.0
#: The module the training process serves, and its environment.
WORKER = "solvers.pinn.worker"
WORKER_ENV = {"DDE_BACKEND": "pytorch"}


def training_process():
    """The PINN's training process (started on first use, reused by later runs)."""
    return get_process(WORKER, WORKER_ENV)


class Pinn(Solver):
    """Physics-informed network for psi = a + i b on DeepXDE (PyTorch backend)."""

    name = "pinn"
    description = "physics-informed network for psi (DeepXDE, PyTorch), trained in its own process"
    iterations_param = "iterations"
    budget_param = "max_seconds"
    anytime = "checkpoints"
    extra = "pinn"
    quick_params = {"width": 16, "depth": 2, "num_domain": 256, "num_boundary": 32,
                    "num_initial": 64, "iterations": 40, "log_every": 10, "grid_points": 41,
                    "qmc_points": 1024, "max_seconds": 20.0, "lbfgs_iterations": 0,
                    "lbfgs_share": 0.0, "lbfgs_dtype": "same", "anytime_grid_points": 21,
                    "anytime_qmc_points": 512}

    Params = PinnParams

    # --- contract ----------------------------------------------------------------------
    @classmethod
    def missing_extra(cls) -> str | None:
        if importlib.util.find_spec("deepxde") is None:
            return "not installed: DeepXDE is missing (pip install 'dsm-bench[pinn]')"
        return None

    def skip(self, problem) -> str | None:
        missing = self.missing_extra()
        if missing:
            return missing
        if not problem.static_potential and self.params.energy_weight > 0:
            return ("energy_weight > 0 asks for <H> to be conserved, but this problem's potential "
                    "depends on time (set energy_weight = 0)")
        d = problem.d
        if d > MAX_D:
            return (f"the PINN takes d+1 backward passes per Laplacian and covers its box with "
                    f"collocation points; it is limited to d <= {MAX_D}, and this problem has d={d}")
        per_axis = self.params.num_domain ** (1.0 / (d + 1))
        if per_axis < self.params.min_points_per_axis:
            return (f"{self.params.num_domain} collocation points give "
                    f"{per_axis:.2f} per axis of the {d + 1}-dimensional space-time box, below "
                    f"min_points_per_axis={self.params.min_points_per_axis:g}")
        return None

    def box(self, problem) -> tuple[tuple[float, ...], tuple[float, ...]]:
        hint = problem.grid_hint()
        lo, hi = np.asarray(hint.lo, dtype=float), np.asarray(hint.hi, dtype=float)
        mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo) * self.params.box_scale
        return tuple(map(float, mid - half)), tuple(map(float, mid + half))

    def setup(self, problem, *, times, device="cpu", seed=0, budget: Budget | None = None,
              workdir=None):
        p = self.params
        self.problem = problem
        self.times = np.asarray(times, dtype=float)
        self.device = device
        self.seed = int(seed)
        self.budget = budget or Budget()
        self.workdir = Path(workdir) if workdir is not None else None
        self.dtype = DTYPES[p.dtype]
        lo, hi = self.box(problem)
        scales = input_scales(problem, seed=self.seed) if p.input_scaling == "problem" else {}
        self.ansatz = Ansatz(problem=problem, lo=lo, hi=hi, t_final=float(problem.t_final),
                             amplitude=amplitude_scale(problem, seed=self.seed),
                             initial_condition=p.initial_condition, walls=p.walls,
                             fourier=fourier_wavenumbers(problem, p.fourier_features,
                                                         p.fourier_scale),
                             rate=(p.exp_scale * phase_rate(problem)
                                   if p.initial_condition == "exp" else 1.0),
                             **scales)
        self.energy_shift = self._initial_energy() if p.energy_shift else 0.0
        self.token = uuid.uuid4().hex
        # the worker trains with 'auto' resolved for this problem's dimension
        self.adaptive = p.adaptive(problem.d)
        self._spec = {"token": self.token,
                      "params": dict(p.params(), adaptive_sampling=self.adaptive),
                      "problem": problem,
                      "ansatz": self.ansatz, "seed": self.seed, "device": device,
                      "threads": p.threads or torch.get_num_threads(), "energy_shift": self.energy_shift}
        self.worker_info = self._prepare(training_process())
        self.net = None

    def _prepare(self, worker):
        info = worker.request("setup", self._spec, timeout=600.0)
        worker.token = self.token
        return dict(info, worker_pid=worker.info["pid"], deepxde=worker.info["deepxde"],
                    backend=worker.info["backend"])

    def _initial_energy(self) -> float:
        """<H> of psi0 by the same quadrature as the observables (for ``energy_shift``)."""
        ansatz = self.ansatz

        def psi0(xt):
            return torch.cat(ansatz.psi0(xt[:, :-1]), dim=1)

        rule = self._rule()
        return float(moments(psi0, self.problem, [0.0], rule).energy[0])

    def _rule(self, anytime: bool = False):
        p = self.params
        return quadrature_rule(self.ansatz.lo, self.ansatz.hi,
                               grid_points=p.anytime_grid_points if anytime else p.grid_points,
                               qmc_points=p.anytime_qmc_points if anytime else p.qmc_points,
                               seed=self.seed)

    def run(self, clock: Clock) -> None:
        p = self.params
        worker = training_process()
        if worker.token != self.token:  # another PINN used the process since setup: rebuild
            self.worker_info = self._prepare(worker)
        clock = clock.limited(p.max_seconds)

        def on_checkpoint(data) -> bool:
            # the weights of the training process at one of its iterations: rebuilt here so
            # that the harness can evaluate them (with its clock stopped)
            self.net = self._rebuild(data, check=False)
            self.iterations = int(data["iteration"])
            return clock(self.iterations)

        timeout = None if self.budget.seconds is None else self.budget.seconds + GRACE_S
        res = worker.request("train", {"token": self.token, "time_limit_s": self.budget.seconds},
                             timeout=timeout, clock=clock, on_checkpoint=on_checkpoint)
        worker.token = None
        self.result = res
        self.iterations = res["adam_iterations"] + res["lbfgs_iterations"]
        self.iteration_times = list(res["iteration_times"])
        self.history = res["history"]
        if res["stopped"] == "time_limit":
            raise TimeoutError(f"pinn exceeded its time limit of {self.budget.seconds:g} s after "
                               f"{self.iterations} iterations")
        if res["stopped"] == "nan":
            raise FloatingPointError(f"pinn: the loss became NaN or infinite after "
                                     f"{self.iterations} iterations")
        self.net = self._rebuild(res)
        if self.workdir is not None:
            self.workdir.mkdir(parents=True, exist_ok=True)
            np.savez(self.workdir / "pinn_weights.npz", **res["state_dict"])

    def _rebuild(self, res, check: bool = True) -> PsiNet:
        """The trained network as a plain torch module, checked against the worker's outputs
        (at the end of training; anytime checkpoints carry the weights only)."""
        state = {k: torch.as_tensor(v) for k, v in res["state_dict"].items()}
        # an L-BFGS finish in float64 returns float64 weights: evaluated in float64
        dtype = next(iter(state.values())).dtype if state else self.dtype
        if dtype == torch.float64:
            self.dtype = torch.float64
        net = PsiNet(res["layer_sizes"], self.params.activation, self.ansatz, dtype=dtype,
                     device=self.device)
        net.load_state_dict(state, strict=True)
        net.requires_grad_(False)
        net.eval()
        if not check:
            return net
        with torch.no_grad():
            y = net(torch.as_tensor(res["check_x"], dtype=self.dtype, device=self.device))
        ref = res["check_y"]
        diff = float(np.max(np.abs(y.cpu().numpy() - ref))) if ref.size else 0.0
        tol = (1e-5 if self.dtype == torch.float32 else 1e-12) * max(1.0, float(np.max(np.abs(ref))))
        self.rebuild_diff = diff
        if not diff <= tol:
            raise RuntimeError(f"pinn: the rebuilt network differs from the trained one by {diff:.3g}"
                               f" (tolerance {tol:.1g})")
        return net

    # --- observables -------------------------------------------------------------------
    def psi(self, xt: torch.Tensor) -> torch.Tensor:
        """The learned (a, b) at points (n, d+1), with the energy shift's phase put back."""
        y = self.net(xt)
        if not self.energy_shift:
            return y
        angle = -self.energy_shift * xt[:, -1:] / self.problem.hbar
        c, s = torch.cos(angle), torch.sin(angle)
        a, b = y[:, 0:1], y[:, 1:2]
        return torch.cat([a * c - b * s, a * s + b * c], dim=1)

    def anytime_evaluate(self) -> Observables:
        rule = self._rule(anytime=True)
        mom = moments(self.psi, self.problem, self.times, rule, dtype=self.dtype,
                      device=self.device)
        return self._observables(mom, rule, {"norm_drift": mom.norm_drift})

    def anytime_settings(self) -> dict:
        p = self.params
        return {"grid_points": p.anytime_grid_points, "qmc_points": p.anytime_qmc_points}

    def _observables(self, mom, rule, diagnostics) -> Observables:
        problem = self.problem

        def vel(x, t):
            return velocity(self.psi, problem, x, t, dtype=self.dtype, device=self.device)

        return Observables(times=self.times, mean=mom.mean, var=mom.var, com_var=mom.com_var,
                           energy=mom.energy, cdf=mom.marginal_cdf, velocity=vel,
                           pair_cdf=mom.pair_cdf if problem.d >= 2 else None,
                           diagnostics=diagnostics)

    def evaluate(self) -> Observables:
        rule = self._rule()
        mom = moments(self.psi, self.problem, self.times, rule, dtype=self.dtype,
                      device=self.device)

        res = self.result
        diagnostics = {
            "norm_drift": mom.norm_drift,
            "norm": mom.norm.tolist(),
            "quadrature": {"kind": rule.kind, "points": int(len(rule.weights))},
            "box": {"lo": list(self.ansatz.lo), "hi": list(self.ansatz.hi)},
            "amplitude": self.ansatz.amplitude,
            "residual_scale": residual_scale(self.ansatz.t_final, self.ansatz.amplitude),
            "energy_shift": self.energy_shift,
            "adam_iterations": res["adam_iterations"],
            "lbfgs_iterations": res["lbfgs_iterations"],
            "lbfgs_s": res["lbfgs_s"],
            "stopped": res["stopped"],
            "worker_train_s": res["train_s"],
            "final_loss": res["final_loss"],
            "final_residual_rms": res["final_residual_rms"],
            "fresh_residual_rms": self._fresh_residual_rms(),
            "param_dtype": res["param_dtype"],
            "rebuild_max_abs_diff": self.rebuild_diff,
            "loss_weights": dict(zip(res["loss_terms"], res["loss_weights"])),
            "causal_min_weight": res["causal_min_weight"],
            "adaptive_sampling": self.adaptive,
            "adaptive_resamplings": res["adapted"],
            "final_train_points": res["final_train_points"],
            "adam_stopped_for_lbfgs": res["adam_stopped_for_lbfgs"],
            "constraint_e0": res["constraint_e0"],
            "input_scales": dict(zip(("x_shift", "x_scale", "t_shift", "t_scale"),
                                     self.ansatz.scales())),
            "fourier_wavenumbers": list(self.ansatz.fourier),
            "worker_peak_rss_mb": res["peak_rss_mb"],
            "worker": {k: self.worker_info[k] for k in
                       ("worker_pid", "deepxde", "backend", "train_points", "domain_points",
                        "condition_points", "loss_terms", "parameters")},
        }
        return self._observables(mom, rule, diagnostics)

    def _fresh_residual_rms(self, n: int = 2048) -> float:
        """RMS of the scaled residuals at uniform points the network was not trained on."""
        rng = np.random.default_rng(self.seed + 1)
        lo, hi = np.asarray(self.ansatz.lo), np.asarray(self.ansatz.hi)
        xt = np.hstack([lo + rng.random((n, len(lo))) * (hi - lo),
                        rng.random((n, 1)) * self.ansatz.t_final])
        x = torch.as_tensor(xt, dtype=self.dtype, device=self.device).requires_grad_(True)
        r = residual(self.problem, x, self.net(x),
                     scale=residual_scale(self.ansatz.t_final, self.ansatz.amplitude),
                     energy_shift=self.energy_shift, create_graph=False)
        value = float(torch.sqrt(torch.mean(torch.cat(r).detach() ** 2)))
        return value if math.isfinite(value) else float("nan")
