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

DeepXDE runs only in a separate training process (:mod:`solvers.pinn.process`), never in the
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core import ParameterError, Parametrized, param

from ..base import Budget, Clock, Observables, Solver
from ..isolated import get_process
from .observe import moments, quadrature_rule, velocity
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
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


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

    @dataclass(frozen=True)
    class Params(Parametrized):
        width: int = param(32, "neurons per hidden layer", lo=1, hi=4096)
        depth: int = param(3, "hidden layers", lo=1, hi=64)
        activation: str = param("tanh", "activation of the hidden layers", choices=("tanh", "sin"))
        dtype: str = param("float32", "floating point type of training and evaluation",
                           choices=tuple(_DTYPES))
        initial_condition: str = param(
            "exp", "psi0 built into the output (transform: psi = psi0 + (t/T) A NN; exp: "
                         "psi = psi0 exp((t/T) (NN_a + i NN_b))) or a loss term",
            choices=("transform", "exp", "loss"))
        walls: str = param("transform", "zero Dirichlet walls as a loss term or built into the output",
                           choices=("loss", "transform"))
        num_domain: int = param(1000, "collocation points in box x [0, T]", lo=1, hi=10**7)
        num_boundary: int = param(400, "points on the walls x [0, T] (walls='loss')",
                                  lo=0, hi=10**7)
        num_initial: int = param(800, "points at t = 0 (initial_condition='loss')", lo=0, hi=10**7)
        distribution: str = param(
            "Hammersley", "how DeepXDE places the points (resampling needs 'pseudo')",
            choices=("Hammersley", "Halton", "Sobol", "LHS", "pseudo"))
        resample_every: int = param(0, "resample collocation points every N Adam iterations "
                                       "(0: never)", lo=0)
        output_init: str = param("zero", "initial weights of the last layer: DeepXDE's Glorot "
                                           "normal, or zero (psi starts as psi0 at all t)",
                                 choices=("glorot", "zero"))
        exp_scale: float = param(1.0, "initial_condition='exp': the network's output scale over "
                                      "T e_spread / hbar (the phase the energy spread turns)",
                                 lo=0.0, lo_open=True, hi=1e4)
        input_scaling: str = param(
            "problem", "network inputs: the box and [0, T] onto [-1, 1] ('box'), or x centred on rho0's "
                   "mean over its standard deviation and t over the problem's shortest time "
                   "scale ('problem')", choices=("box", "problem"))
        fourier_features: int = param(0, "spatial Fourier features: wavenumbers per coordinate, "
                                         "geometric from 2 pi / box width to fourier_scale k_max",
                                      lo=0, hi=256)
        fourier_scale: float = param(1.0, "the highest Fourier wavenumber over the problem's "
                                          "k_max", lo=0.0, lo_open=True, hi=100.0)
        causal_eps: float = param(0.0, "causal training: slice i of [0, T] weighted by "
                                       "exp(-eps sum_{k<i} L_k) (0: off)", lo=0.0)
        causal_slices: int = param(32, "time slices of the causal weights", lo=2, hi=10**5)
        norm_weight: float = param(1.0, "weight of the soft constraint int |psi|^2 = 1 at "
                                        "constraint_times times (0: off)", lo=0.0)
        energy_weight: float = param(0.0, "weight of the soft constraint <H>(t) = <H>(0), relative "
                                          "to max(|E0|, energy spread) (0: off)", lo=0.0)
        constraint_times: int = param(16, "times of the norm and energy constraints in (0, T]",
                                      lo=1, hi=4096)
        constraint_grid_points: int = param(64, "quadrature points per axis of the constraints "
                                                "(d <= 2)", lo=3, hi=100000)
        constraint_qmc_points: int = param(1024, "Sobol points of the constraints (d >= 3; a "
                                                 "power of 2)", lo=256, hi=2**24)
        loss_balance: str = param("none", "loss weights: fixed, or balanced by the terms' "
                                          "gradient norms ('grad_norm')",
                                  choices=("none", "grad_norm"))
        balance_every: int = param(100, "Adam steps between two updates of the balanced weights",
                                   lo=1)
        balance_alpha: float = param(0.9, "memory of the balanced weights' moving average",
                                     lo=0.0, hi=1.0, hi_open=True)
        adaptive_sampling: str = param(
            "none", "residual-based adaptive collocation: 'rad' replaces the PDE points, 'rar-d' "
                    "adds adaptive_points, every adaptive_every Adam steps",
            choices=("none", "rad", "rar-d"))
        adaptive_every: int = param(500, "Adam steps between two adaptive resamplings", lo=1)
        adaptive_k: float = param(1.0, "exponent k of p ~ |R|^(2k) / mean + c", lo=0.0)
        adaptive_c: float = param(1.0, "uniform part c of p ~ |R|^(2k) / mean + c", lo=0.0)
        adaptive_candidates: int = param(4, "candidates per PDE point of the adaptive sampling",
                                         lo=1, hi=1000)
        adaptive_points: int = param(200, "points 'rar-d' adds each time", lo=1, hi=10**6)
        lbfgs_share: float = param(0.25, "share of max_seconds kept for L-BFGS (Adam stops "
                                        "earlier; needs lbfgs_iterations > 0)", lo=0.0, hi=1.0,
                                   hi_open=True)
        lbfgs_dtype: str = param("float64", "dtype of the L-BFGS finish ('float64' converts the "
                                         "network after Adam)", choices=("same", "float64"))
        lr: float = param(3e-3, "Adam learning rate", lo=0.0, lo_open=True, hi=1.0)
        iterations: int = param(20000, "Adam iterations (at most; see max_seconds)", lo=0,
                                hi=10**8)
        lbfgs_iterations: int = param(100000, "L-BFGS iterations after Adam (0: none)", lo=0,
                                      hi=10**7)
        max_seconds: float = param(240.0, "training seconds on the harness's clock (anytime "
                                          "evaluations excluded); stops early and reports it",
                                   lo=0.0, lo_open=True)
        pde_weight: float = param(1.0, "weight of the residual loss terms", lo=0.0, lo_open=True)
        bc_weight: float = param(1.0, "weight of the wall loss terms", lo=0.0)
        ic_weight: float = param(1.0, "weight of the initial-condition loss terms", lo=0.0)
        energy_shift: bool = param(
            True, "train e^{i E0 t/hbar} psi, E0 = <H> at t=0 (a global phase; observables "
                   "unchanged)")
        box_scale: float = param(1.0, "widen (>1) or narrow the problem's box", lo=0.25, hi=10.0)
        threads: int = param(1, "torch threads of the training process (0: the caller's count)",
                             lo=0, hi=1024)
        log_every: int = param(100, "loss history every N iterations", lo=1)
        grid_points: int = param(201, "quadrature points per axis for observables (d <= 2)",
                                 lo=3, hi=100000)
        qmc_points: int = param(32768, "Sobol points for observables (d >= 3; a power of 2)",
                                lo=256, hi=2**26)
        anytime_grid_points: int = param(101, "quadrature points per axis of the cheap "
                                              "evaluation at anytime checkpoints (d <= 2)",
                                         lo=3, hi=100000)
        anytime_qmc_points: int = param(4096, "Sobol points of the cheap evaluation (d >= 3)",
                                        lo=256, hi=2**26)
        min_points_per_axis: float = param(
            2.0, "decline when num_domain^(1/(d+1)) is below this", lo=1.0)

        def validate(self) -> None:
            if self.resample_every > 0 and self.distribution != "pseudo":
                raise ParameterError(
                    f"solver pinn: resample_every={self.resample_every} needs "
                    f"distribution='pseudo' (the quasi-random sequences give the same points "
                    f"again), got {self.distribution!r}")
            for name in ("qmc_points", "anytime_qmc_points"):
                n = getattr(self, name)
                if n & (n - 1):
                    raise ParameterError(
                        f"solver pinn: parameter '{name}'={n} must be a power of 2 (Sobol "
                        "points are balanced only then)")
            if self.initial_condition == "loss" and self.num_initial == 0:
                raise ParameterError("solver pinn: initial_condition='loss' needs num_initial > 0")
            if self.walls == "loss" and self.num_boundary == 0:
                raise ParameterError("solver pinn: walls='loss' needs num_boundary > 0")
            if self.constraint_qmc_points & (self.constraint_qmc_points - 1):
                raise ParameterError(
                    f"solver pinn: parameter 'constraint_qmc_points'={self.constraint_qmc_points} "
                    "must be a power of 2 (Sobol points are balanced only then)")
            if self.lbfgs_share > 0 and self.lbfgs_iterations == 0:
                raise ParameterError(
                    f"solver pinn: lbfgs_share={self.lbfgs_share:g} keeps time for L-BFGS, but "
                    "lbfgs_iterations=0 runs none; set lbfgs_iterations > 0")
            if self.lbfgs_dtype == "float64" and self.lbfgs_iterations == 0:
                raise ParameterError("solver pinn: lbfgs_dtype='float64' needs lbfgs_iterations > 0")
            if self.adaptive_sampling != "none" and self.resample_every > 0:
                raise ParameterError(
                    "solver pinn: adaptive_sampling and resample_every both replace the PDE "
                    "points; use one of them")

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
        self.dtype = _DTYPES[p.dtype]
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
        self._spec = {"token": self.token, "params": p.params(), "problem": problem,
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
            "stopped": res["stopped"],
            "worker_train_s": res["train_s"],
            "final_loss": res["final_loss"],
            "final_residual_rms": res["final_residual_rms"],
            "fresh_residual_rms": self._fresh_residual_rms(),
            "param_dtype": res["param_dtype"],
            "rebuild_max_abs_diff": self.rebuild_diff,
            "loss_weights": dict(zip(res["loss_terms"], res["loss_weights"])),
            "causal_min_weight": res["causal_min_weight"],
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
