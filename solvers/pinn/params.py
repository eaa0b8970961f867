"""The PINN's declared parameters: network, points, training techniques, budgets, evaluation."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core import ParameterError, Parametrized, param

__all__ = ["PinnParams", "DTYPES"]

#: The dtypes of training and evaluation, by name.
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass(frozen=True)
class PinnParams(Parametrized):
    """The PINN's parameters (:class:`solvers.pinn.solver.Pinn`), each recorded with its run."""

    width: int = param(32, "neurons per hidden layer", lo=1, hi=4096)
    depth: int = param(3, "hidden layers", lo=1, hi=64)
    activation: str = param("tanh", "activation of the hidden layers", choices=("tanh", "sin"))
    dtype: str = param("float32", "floating point type of training and evaluation",
                       choices=tuple(DTYPES))
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
        "auto", "residual-based adaptive collocation: 'rad' replaces the PDE points, 'rar-d' "
                "adds adaptive_points, every adaptive_every Adam steps; 'auto': 'rad' where the "
                "PDE points are sparse (see adaptive_below), else 'none' (or with "
                "resample_every)", choices=("auto", "none", "rad", "rar-d"))
    adaptive_below: float = param(
        20.0, "adaptive_sampling='auto' uses 'rad' below this many PDE points per space-time "
              "axis, num_domain^(1/(d+1)): 1000 fixed points overfit at d = 2 (10 per axis), "
              "not at d = 1 (32 per axis), measured", lo=0.0)
    adaptive_every: int = param(
        100, "Adam steps between two adaptive resamplings (every 500 never came within the "
             "default profile's 60 s at d = 2: 310 Adam steps; measured)", lo=1)
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

    def adaptive(self, d: int) -> str:
        """The adaptive collocation a run at dimension ``d`` uses (``auto`` resolved)."""
        if self.adaptive_sampling != "auto":
            return self.adaptive_sampling
        if self.resample_every > 0:
            return "none"
        return "rad" if self.num_domain ** (1.0 / (d + 1)) < self.adaptive_below else "none"

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
        if self.adaptive_sampling not in ("none", "auto") and self.resample_every > 0:
            raise ParameterError(
                "solver pinn: adaptive_sampling and resample_every both replace the PDE "
                "points; use one of them (adaptive_sampling='none' for uniform resampling)")
