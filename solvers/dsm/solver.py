"""Deep Stochastic Mechanics as a solver of the suite (the method of DESIGN.md section 2)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core import ParameterError, Parametrized, param

from ..base import Budget, Clock, Observables, Solver
from . import checkpoint, evaluation
from .equations import DERIVATIVES, DIVERGENCES, EQUATIONS, residuals
from .networks import ACTIVATIONS, TwinMLP
from .sampling import SCHEMES, select_points, simulate, time_grid

__all__ = ["DSM"]


class DSM(Solver):
    """Deep Stochastic Mechanics: two networks u_theta, v_theta trained on their own trajectories.

    Each iteration simulates ``batch`` trajectories of dX = (v + nu u) dt + sqrt(nu hbar/m) dW
    with the current networks (Euler–Maruyama, ``steps`` steps, no gradient), takes training
    points from them (``sampling``), and takes an Adam step on

        w_u E|r_u|^2 + w_v E|r_v|^2 + w_0 E(|u(X0, 0) - u0|^2 + |v(X0, 0) - v0|^2)

    (the last term only with ``initial_condition="loss"``).  After training, ``eval_samples``
    fresh trajectories (stochastic Heun, ``eval_steps`` steps) give the observables.
    """

    name = "dsm"
    description = "Deep Stochastic Mechanics: neural osmotic/current velocities on trajectories"
    iterations_param = "iterations"
    budget_param = "max_seconds"
    anytime = "checkpoints"
    quick_params = {"iterations": 20, "width": 32, "batch": 16, "steps": 40, "points": 8,
                    "eval_samples": 2000, "eval_steps": 40, "anytime_samples": 1000,
                    "anytime_steps": 40, "max_steps": 200}

    @dataclass(frozen=True)
    class Params(Parametrized):
        # networks
        width: int = param(64, "hidden width of each network", lo=1, hi=8192)
        depth: int = param(2, "hidden layers of each network", lo=1, hi=16)
        activation: str = param("tanh", "activation (smooth)", choices=tuple(ACTIVATIONS))
        initial_condition: str = param(
            "built_in", "built_in: u = u0 + t NN (exact at t=0); loss: an initial-condition loss "
                        "term", choices=("built_in", "loss"))
        # equations and derivatives
        equations: str = param("divergence", "divergence (DSM) or nelson (vector Laplacian)",
                               choices=EQUATIONS)
        derivatives: str = param("func", "func: torch.func; loop: one autograd pass per dimension",
                                 choices=DERIVATIVES)
        divergence: str = param("exact", "exact, hutchinson (stochastic trace), or auto: "
                                         "hutchinson from d = hutchinson_from on, else exact",
                                choices=DIVERGENCES + ("auto",))
        hutchinson_from: int = param(16, "divergence=auto: the smallest d given Hutchinson's "
                                         "estimate (measured: exact costs 1.8x at d = 16)", lo=1)
        probes: int = param(1, "Hutchinson probes per residual factor", lo=1, hi=1024)
        # trajectories and training points
        nu: float = param(1.0, "diffusion nu of the training process (0: deterministic flow)",
                          lo=0.0, hi=100.0)
        steps: int = param(100, "Euler–Maruyama steps over [0, T] where the dynamics is slow "
                                "(the step is at most T / steps)", lo=1, hi=100000)
        steps_per_scale: int = param(30, "steps per time scale of the problem's own dynamics "
                                         "(Problem.time_scale), where that is faster: a finer, "
                                         "non-uniform grid (0: the uniform grid)", lo=0)
        max_steps: int = param(2000, "at most this many steps (a coarser grid, recorded, "
                                     "beyond it)", lo=1)
        u_cap: float = param(0.0, "bound the osmotic velocity smoothly at u_cap times the "
                                  "velocity scale (u_cap tanh(u / u_cap)), for densities with "
                                  "nodes where u diverges (0: no bound)", lo=0.0)
        time_feature: str = param("auto", "the networks' time input: linear t/T; log: "
                                          "log(1 + t/tau0) stretching a fast start of time scale "
                                          "tau0; rate: the problem's own clock, the integral of "
                                          "1/tau(t), for a squeeze mid-run (two squeezing "
                                          "packets: 0.24 and 0.078 against linear's 0.26 and "
                                          "0.085, so auto does not choose it); auto: log where "
                                          "tau0 < T / 20",
                                  choices=("auto", "linear", "log", "rate"))
        x_norm: str = param("auto", "the networks' space input: box: (x - c) / L from the "
                                    "problem's grid box; paths: (x - mu(t)) / s(t) from the "
                                    "training paths' own mean and spread at each time (for a "
                                    "width that changes many-fold); auto: paths where the time "
                                    "feature is log (a fast start)",
                            choices=("auto", "box", "paths"))
        norm_degree: int = param(8, "x_norm=paths: degree of the polynomials in the time "
                                    "feature fitted to the paths' mean and log spread", lo=1,
                                 hi=32)
        norm_momentum: float = param(0.99, "x_norm=paths: share of the old path statistics "
                                           "in each update (an exponential average over "
                                           "iterations; measured on singular_1d: 0.9 gave "
                                           "var_rel_l2 0.096, 0.99 gave 0.024)",
                                     lo=0.0, hi=1.0, hi_open=True)
        batch: int = param(100, "trajectories B per simulation", lo=1, hi=10**7)
        sampling: str = param("random", "grid: all N+1 points; random: M jittered points each",
                              choices=SCHEMES)
        points: int = param(10, "training points M per trajectory (sampling=random)", lo=1)
        refresh: int = param(1, "simulate new trajectories every k iterations", lo=1)
        # loss and optimiser
        residual_weight: str = param("none", "time_scale: weight each point's squared residual "
                                             "by (tau(t) / max tau)^2, the problem's time scale; "
                                             "none: equal weights",
                                     choices=("none", "time_scale"))
        w_u: float = param(1.0, "weight of the u-equation loss", lo=0.0)
        w_v: float = param(1.0, "weight of the v-equation loss", lo=0.0)
        w_0: float = param(1.0, "weight of the initial-condition loss", lo=0.0)
        lr: float = param(5e-3, "Adam learning rate", lo=0.0, lo_open=True, hi=1.0)
        schedule: str = param("cosine", "learning-rate schedule: cosine over the training's "
                                        "progress (iterations done or seconds spent, whichever "
                                        "is further), or constant", choices=("cosine", "constant"))
        lr_final: float = param(0.1, "final learning rate / lr (cosine)", lo=0.0, hi=1.0)
        iterations: int = param(3000, "training iterations (the budget)", lo=0)
        max_seconds: float = param(0.0, "stop training after this many training seconds on the "
                                        "harness's clock (0: no limit)", lo=0.0)
        checkpoint_every: int = param(0, "save a checkpoint every K iterations (0: never)", lo=0)
        resume: bool = param(False, "continue from the run's checkpoint if there is one")
        chunk_points: int = param(5000, "training points per forward/backward pass; gradients "
                                        "of the chunks are accumulated (0: all at once)", lo=0)
        # evaluation
        eval_samples: int = param(40000, "trajectories S for the observables", lo=2)
        eval_steps: int = param(200, "stochastic Heun steps for evaluation (at least one per "
                                     "record interval)", lo=1, hi=100000)
        eval_nu: float = param(1.0, "diffusion nu of the evaluation process", lo=0.0, hi=100.0)
        eval_chunk: int = param(20000, "trajectories simulated at once in evaluation", lo=1)
        keep_coords: int = param(2, "coordinates whose samples are kept in the observables",
                                 lo=1)
        anytime_samples: int = param(4000, "trajectories of the cheap evaluation at each anytime "
                                           "checkpoint", lo=2)
        anytime_steps: int = param(100, "stochastic Heun steps of the cheap evaluation (at least "
                                        "one per record interval)", lo=1, hi=100000)
        # numerics
        dtype: str = param("float32", "floating-point precision", choices=("float32", "float64"))
        device: str = param("auto", "auto (the harness's choice), cpu or cuda",
                            choices=("auto", "cpu", "cuda"))

        def validate(self) -> None:
            if self.sampling == "random" and self.points > self.steps:
                raise ParameterError(f"solver dsm: points={self.points} exceeds steps={self.steps}"
                                     " (M distinct steps per trajectory)")
            if self.max_steps < self.steps:
                raise ParameterError(f"solver dsm: max_steps={self.max_steps} is below "
                                     f"steps={self.steps}")
            if self.divergence == "hutchinson" and (self.derivatives != "func"
                                                    or self.equations != "divergence"):
                raise ParameterError("solver dsm: divergence=hutchinson needs derivatives=func "
                                     "and equations=divergence")

    # --- setup ------------------------------------------------------------------------------
    def setup(self, problem, *, times, device="cpu", seed=0, budget: Budget | None = None,
              workdir: Path | None = None):
        p = self.params
        self.problem = problem
        self.times = np.asarray(times, dtype=float)
        self.budget = budget or Budget()
        self.workdir = Path(workdir) if workdir is not None else None
        dev = device if p.device == "auto" else p.device
        if dev.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError("solver dsm: device=cuda requested but CUDA is not available")
        self.device = torch.device(dev)
        self.dtype = torch.float64 if p.dtype == "float64" else torch.float32
        self.divergence = p.divergence
        if p.divergence == "auto":
            self.divergence = ("hutchinson" if problem.d >= p.hutchinson_from
                               and p.derivatives == "func" and p.equations == "divergence"
                               else "exact")
        self.seed = seed
        # the run's own random streams: training, and the weights' initialisation
        self.gen = torch.Generator(device=self.device).manual_seed(seed)
        init = torch.Generator().manual_seed(seed + 1)

        hint = problem.grid_hint()
        centre = 0.5 * (np.array(hint.lo) + np.array(hint.hi))
        half = 0.5 * (np.array(hint.hi) - np.array(hint.lo))
        initial = None
        if p.initial_condition == "built_in":
            initial = lambda xu, xv: (problem.u0(xu), problem.v0(xv))  # noqa: E731
        probe = np.linspace(0.0, problem.t_final, 4001)
        scales = problem.time_scale(probe)
        grid = self._time_grid(problem, probe, scales)
        tau0 = float(scales[0])
        scale = self._velocity_scale(problem)
        feature = self._time_feature(problem, tau0)
        t_fast = tau0 if feature == "log" else None
        t_rate = (float(probe[1]), (1.0 / scales).tolist()) if feature == "rate" else None
        x_norm = p.x_norm
        if x_norm == "auto":
            x_norm = "paths" if t_fast else "box"
        if x_norm == "paths" and p.batch < 2:
            raise ParameterError(f"solver dsm: x_norm=paths (resolved from {p.x_norm}) needs the "
                                 f"paths' spread, so batch >= 2; got batch={p.batch} (or set "
                                 "x_norm=box)")
        self.net = TwinMLP(
            problem.d, p.width, p.depth, p.activation,
            x_shift=float(centre.mean()), x_scale=float(half.mean()) / 3.0,
            t_scale=problem.t_final, out_scale=scale,
            initial=initial, dtype=self.dtype, generator=init, t_fast=t_fast, t_rate=t_rate,
            u_cap=p.u_cap * scale if p.u_cap else None,
            path_norm=p.norm_degree if x_norm == "paths" else 0).to(self.device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=p.lr)
        self.train_times = torch.tensor(grid, dtype=self.dtype, device=self.device)
        self._tau = None
        if p.residual_weight == "time_scale":
            probe = np.linspace(0.0, problem.t_final, 2001)
            tau = problem.time_scale(probe)
            self._tau = (torch.tensor(probe, dtype=self.dtype, device=self.device),
                         torch.tensor((tau / tau.max()) ** 2, dtype=self.dtype,
                                      device=self.device))
        self.resolved = {"steps": len(grid) - 1, "min_dt": float(np.min(np.diff(grid))),
                         "time_scale_0": tau0, "time_feature": feature,
                         "divergence": self.divergence, "velocity_scale": self.net.out_scale,
                         "x_norm": x_norm}
        self.prior_train_s = 0.0  # training seconds before a resume
        self.history = {"loss": [], "loss_u": [], "loss_v": [], "loss_0": [], "lr": []}
        if p.resume:
            self._load_checkpoint()

    def _time_feature(self, problem, tau0: float) -> str:
        """The time feature ``time_feature`` resolves to (see its parameter)."""
        p = self.params
        if p.time_feature != "auto":
            return p.time_feature
        return "log" if tau0 < problem.t_final / 20 else "linear"

    def _time_grid(self, problem, probe: np.ndarray, scales: np.ndarray) -> list[float]:
        """The training grid resolving the problem's time scale ``scales`` at times ``probe``
        (see :func:`time_grid`), with at most ``max_steps`` steps."""
        p = self.params
        tau = float(np.min(scales))
        per = p.steps_per_scale
        grid = time_grid(problem.t_final, p.steps, tau if per else None, per,
                         local=lambda t: float(np.interp(t, probe, scales)))
        while len(grid) - 1 > p.max_steps and per > 1:  # coarser, within the cap
            per = max(1, int(per * p.max_steps / (len(grid) - 1)))
            grid = time_grid(problem.t_final, p.steps, tau, per,
                             local=lambda t: float(np.interp(t, probe, scales)))
        return grid

    def _velocity_scale(self, problem) -> float:
        """A typical speed: sqrt(2 E / (m d)) with E the initial energy (Monte Carlo)."""
        gen = np.random.default_rng(12345)
        x = problem.sample_x0(4000, gen)
        kinetic = 0.5 * problem.mass * ((problem.u0(x) ** 2).sum(-1) + (problem.v0(x) ** 2).sum(-1))
        energy = float(np.mean(kinetic + problem.potential(x)))
        energy = max(energy, float(np.mean(kinetic)), 1e-12)
        return math.sqrt(2.0 * energy / (problem.mass * problem.d))

    # --- the loss ---------------------------------------------------------------------------
    def _uv(self, xu, xv, t):
        return self.net(xu, xv, t)

    def residual_loss(self, x, t):
        """w_u E|r_u|^2 + w_v E|r_v|^2 at training points (x, t), and the two terms."""
        p, prob = self.params, self.problem
        res = residuals(self._uv, x, t, prob.grad_potential(x, t), hbar=prob.hbar,
                        mass=prob.mass, equations=p.equations, derivatives=p.derivatives,
                        divergence=self.divergence, probes=p.probes, generator=self.gen)
        weight = self._residual_weight(t)
        loss_u = (weight * (res["ru1"] * res["ru2"]).sum(-1)).mean()
        loss_v = (weight * (res["rv1"] * res["rv2"]).sum(-1)).mean()
        return p.w_u * loss_u + p.w_v * loss_v, {"loss_u": loss_u, "loss_v": loss_v}

    def _residual_weight(self, t):
        """Per point: (tau(t) / tau_max)^2 with tau the problem's time scale, for
        ``residual_weight="time_scale"`` (a residual du/dt ~ u / tau is then O(u / tau_max)
        everywhere, so a fast start does not drown the rest of [0, T] in the loss); else 1."""
        if self._tau is None:
            return 1.0
        grid, values = self._tau
        idx = torch.clamp(torch.searchsorted(grid, t.detach()), 0, len(grid) - 1)
        return values[idx]

    def initial_loss(self, x0):
        """w_0 E(|u(X0, 0) - u0|^2 + |v(X0, 0) - v0|^2) (zero when the condition is built in)."""
        p, prob = self.params, self.problem
        if p.initial_condition != "loss" or p.w_0 == 0:
            return torch.zeros((), dtype=self.dtype, device=self.device)
        zero = torch.zeros(x0.shape[0], dtype=self.dtype, device=self.device)
        u, v = self.net(x0, x0, zero)
        return p.w_0 * (((u - prob.u0(x0)) ** 2).sum(-1).mean()
                        + ((v - prob.v0(x0)) ** 2).sum(-1).mean())

    def _step_gradients(self, x, t, x0, iteration: int) -> tuple[float, dict[str, float]]:
        """Accumulate the loss's gradient over chunks of points; return the loss and its terms.

        Chunks bound memory and keep the derivative tensors small enough for the CPU's caches
        (measured at width 400, d = 4, 15000 points: 3.8 s per pass in chunks of 5000 against
        5.2 s all at once); the gradient is that of the whole mean.
        """
        n = x.shape[0]
        size = self.params.chunk_points or n
        sums = {"loss_u": 0.0, "loss_v": 0.0}
        total = 0.0
        for xc, tc in zip(torch.split(x, size), torch.split(t, size)):
            part, terms = self.residual_loss(xc, tc)
            self._check_finite(part, terms, iteration)
            (part * (xc.shape[0] / n)).backward()
            total += float(part.detach()) * xc.shape[0] / n
            for k in sums:
                sums[k] += float(terms[k].detach()) * xc.shape[0] / n
        loss_0 = self.initial_loss(x0)
        self._check_finite(loss_0, {"loss_0": loss_0}, iteration)
        if loss_0.requires_grad:
            loss_0.backward()
        sums["loss_0"] = float(loss_0.detach())
        return total + sums["loss_0"], sums

    @staticmethod
    def _check_finite(value, terms, iteration: int) -> None:
        if not torch.isfinite(value):
            raise FloatingPointError(
                f"non-finite loss at iteration {iteration}: "
                + ", ".join(f"{k}={float(v.detach()):.3g}" for k, v in terms.items()))

    def _diffusion(self, nu: float) -> float:
        return math.sqrt(nu * self.problem.hbar / self.problem.mass)

    def _x0(self, n: int) -> torch.Tensor:
        return self.problem.sample_x0(n, self.gen, dtype=self.dtype)

    # --- training ---------------------------------------------------------------------------
    def _learning_rate(self, iteration: int, train_s: float) -> float:
        """The cosine schedule over the training's progress: the fraction of the iterations
        done or of ``max_seconds`` spent, whichever is further.  (torch's schedulers count
        steps only; a training budget in seconds needs the clock's progress too.)"""
        p = self.params
        if p.schedule == "constant":
            return p.lr
        progress = iteration / max(p.iterations, 1)
        if p.max_seconds:
            progress = max(progress, train_s / p.max_seconds)
        low = p.lr * p.lr_final
        return low + 0.5 * (p.lr - low) * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    def run(self, clock: Clock) -> None:
        from tqdm.auto import tqdm

        p = self.params
        started = time.perf_counter()
        cuda = self.device.type == "cuda"
        diffusion = self._diffusion(p.nu)
        budget = p.max_seconds - self.prior_train_s if p.max_seconds else None
        if budget is not None and budget <= 0:
            return
        clock = clock.limited(budget)
        self.iterations = self.resumed_from
        bar = tqdm(total=p.iterations, initial=self.resumed_from, desc=f"dsm d={self.problem.d}",
                   unit="it", leave=False, disable=None)
        try:
            for it in range(self.resumed_from, p.iterations):
                t_it = time.perf_counter()
                for group in self.opt.param_groups:
                    group["lr"] = self._learning_rate(it, self.prior_train_s + clock.elapsed())
                if (it - self.resumed_from) % p.refresh == 0:
                    xs, drifts = simulate(self.net, self._x0(p.batch), self.train_times, p.nu,
                                          diffusion, self.gen)
                    if self.net.path_norm:
                        self.net.update_norm(self.train_times, xs, p.norm_momentum)
                x, t = select_points(xs, drifts, self.train_times, p.sampling, p.points,
                                     diffusion, self.gen)
                self.opt.zero_grad(set_to_none=True)
                total, terms = self._step_gradients(x, t, self._x0(p.batch), it + 1)
                self.opt.step()
                if cuda:
                    torch.cuda.synchronize()
                self.iteration_times.append(time.perf_counter() - t_it)
                self.iterations = it + 1
                self._record(total, terms)
                if it % 10 == 0 or it + 1 == p.iterations:
                    bar.set_postfix({k: f"{v[-1]:.3g}" for k, v in self.history.items()
                                     if k != "lr"}, refresh=False)
                bar.update(1)
                if p.checkpoint_every and self.iterations % p.checkpoint_every == 0:
                    self._save_checkpoint(clock.elapsed())
                if self.budget.seconds is not None and \
                        time.perf_counter() - started > self.budget.seconds:
                    raise TimeoutError(f"dsm exceeded its time limit of {self.budget.seconds:g} s "
                                       f"at iteration {self.iterations}")
                if clock(self.iterations):
                    break
        finally:
            bar.close()
        if p.checkpoint_every:
            self._save_checkpoint(clock.elapsed())

    def _record(self, total: float, terms: dict[str, float]) -> None:
        self.history["loss"].append(total)
        for k, v in terms.items():
            self.history[k].append(v)
        self.history["lr"].append(self.opt.param_groups[0]["lr"])

    # --- checkpoints --------------------------------------------------------------------------
    def _checkpoint_path(self) -> Path | None:
        return self.workdir / checkpoint.FILENAME if self.workdir is not None else None

    def _save_checkpoint(self, train_s: float) -> None:
        path = self._checkpoint_path()
        if path is None:
            return
        checkpoint.save(path, {
            "iteration": self.iterations, "net": self.net.state_dict(),
            "opt": self.opt.state_dict(), "gen": self.gen.get_state(), "history": self.history,
            "train_s": self.prior_train_s + train_s, "params": self.params.params(),
            "norm_stats": self.net.stats,
            "problem": self.problem.spec(),
        })

    def _load_checkpoint(self) -> None:
        path = self._checkpoint_path()
        if path is None:
            return
        state = checkpoint.load(path, self.device, self.problem.spec(), self.params.params())
        if state is None:
            return
        self.net.load_state_dict(state["net"])
        self.net.stats = state.get("norm_stats")
        self.opt.load_state_dict(state["opt"])
        self.gen.set_state(state["gen"])
        self.history = state["history"]
        self.resumed_from = int(state["iteration"])
        self.prior_train_s = float(state.get("train_s", 0.0))

    # --- evaluation -------------------------------------------------------------------------
    def evaluate(self) -> Observables:
        return self._observe(self.params.eval_samples, self.seed + 7919)

    def anytime_evaluate(self) -> Observables:
        # the same fresh trajectories at every checkpoint (common random numbers), so that the
        # curve shows the training, not the sampling noise
        return self._observe(self.params.anytime_samples, self.seed + 104729,
                             self.params.anytime_steps)

    def anytime_settings(self) -> dict:
        return {"samples": self.params.anytime_samples, "eval_steps": self.params.anytime_steps,
                "integrator": "heun", "nu": self.params.eval_nu}

    def _observe(self, S: int, seed: int, steps: int | None = None,
                 field=None) -> Observables:
        """Observables from ``S`` fresh trajectories of the learned diffusion (stochastic Heun
        on a grid containing the record times, with ``steps`` or ``eval_steps`` steps).

        ``field`` replaces the networks by another velocity field with their calls (``field(xu,
        xv, t) -> (u, v)`` and ``field.drift(x, t, nu)``), integrated from the same initial
        points with the same noise for the same ``seed``: a paired comparison, in which the
        sampling noise cancels (tests/test_dsm_slow.py measures DSM's bias so)."""
        p = self.params
        grid, index = evaluation.eval_grid(self.times, self.train_times.cpu().numpy(),
                                           steps or p.eval_steps)
        grid = torch.tensor(grid, dtype=self.dtype, device=self.device)
        obs = evaluation.observe(self.net if field is None else field, self.problem,
                                 self.times, grid, index, S=S, seed=seed, nu=p.eval_nu,
                                 diffusion=self._diffusion(p.eval_nu), chunk=p.eval_chunk,
                                 keep_coords=p.keep_coords)
        obs.velocity = self.velocity if field is None else None
        obs.diagnostics.update({
            "final_loss": self.history["loss"][-1] if self.history["loss"] else None,
            "velocity_scale": self.net.out_scale, "divergence": self.divergence})
        return obs

    @torch.no_grad()
    def velocity(self, x: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        """u_theta(x, t), v_theta(x, t) for points x (n, d) as NumPy arrays."""
        xt = torch.as_tensor(np.asarray(x), dtype=self.dtype, device=self.device)
        us, vs = [], []
        for chunk in torch.split(xt, 65536):
            tcol = torch.full((chunk.shape[0],), float(t), dtype=self.dtype, device=self.device)
            u, v = self.net(chunk, chunk, tcol)
            us.append(u.cpu().numpy())
            vs.append(v.cpu().numpy())
        return np.concatenate(us), np.concatenate(vs)
