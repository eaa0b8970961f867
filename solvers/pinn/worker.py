"""The PINN's training process: the only place DeepXDE is imported.

Served by :mod:`solvers.isolated` (:func:`hello` greets, :func:`make_handler` answers):

``setup``
    Set dtype, device, seeds and threads; build DeepXDE's geometry, data (collocation, wall and
    initial points), network and model; answer a summary.
``train``
    Adam, then optional L-BFGS, until the iterations are done, the parent says stop at a
    checkpoint (its clock: the training budget) or the run's time limit passes; at every
    checkpoint the parent asks for, the current weights go to the parent, which evaluates them.
    Answers the weights, the loss history, per-iteration times and counters.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import torch

from core.memory import peak_rss_mb, reset_peak_rss

from .physics import Ansatz, causal_weights, residual, residual_scale

__all__ = ["hello", "make_handler", "import_deepxde"]

#: L-BFGS iterations between two checks of the clock.
LBFGS_CHUNK = 50


def import_deepxde():
    """Import DeepXDE with the PyTorch backend, and check that it is the one that loaded.

    ``DDE_BACKEND`` is set to ``pytorch`` unconditionally (not ``setdefault``): this solver is
    the PyTorch one, and this process's environment is its own.  If DeepXDE was already
    imported with another backend, the check below says so instead of training on it.
    """
    os.environ["DDE_BACKEND"] = "pytorch"
    try:
        import deepxde
    except ImportError as exc:  # pragma: no cover - skip() declines first
        raise ImportError("the pinn solver needs DeepXDE: pip install 'dsm-bench[pinn]'") from exc
    from deepxde import backend

    if backend.backend_name != "pytorch":
        raise RuntimeError(f"DeepXDE loaded the backend {backend.backend_name!r}, but the pinn "
                           "solver needs 'pytorch' (set DDE_BACKEND=pytorch before importing it)")
    return deepxde


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
    function (see :meth:`Trainer._pde`), so its loss weights, optimisers and history still serve.
    """

    def __init__(self, problem, ansatz, net, *, grid_points, qmc_points, n_times, energy, seed):
        from .observe import quadrature_rule

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


class Trainer:
    """One PINN: DeepXDE's data, network and model for a problem and parameters."""

    def __init__(self, dde, spec: dict[str, Any]):
        self.dde = dde
        self.spec = spec
        self.token = spec["token"]
        p = self.p = spec["params"]
        reset_peak_rss()
        torch.set_num_threads(spec["threads"])
        dde.config.set_default_float(p["dtype"])  # torch's default dtype, in this process only
        # DeepXDE's import made CUDA the default device where it exists.  For the CPU, clear
        # the default instead of setting "cpu": a set default device intercepts every torch
        # call in Python (measured: 30 % slower training steps).
        device = torch.device(spec["device"])
        torch.set_default_device(None if device.type == "cpu" else device)
        dde.config.set_random_seed(spec["seed"])  # Python, NumPy and torch generators
        problem = self.problem = spec["problem"]
        self.ansatz: Ansatz = spec["ansatz"]
        d = problem.d
        lo, hi, T = self.ansatz.lo, self.ansatz.hi, self.ansatz.t_final
        space = (dde.geometry.Interval(lo[0], hi[0]) if d == 1
                 else dde.geometry.Hypercube(list(lo), list(hi)))
        self.geomtime = geomtime = dde.geometry.GeometryXTime(space, dde.geometry.TimeDomain(0.0, T))

        self.scale = residual_scale(T, self.ansatz.amplitude)
        self.causal = {"active": p["causal_eps"] > 0, "min_weight": 1.0, "eps": p["causal_eps"]}
        self.n_bc = 0  # condition points in front of the PDE points (set once the data exist)

        conditions, weights = [], [p["pde_weight"], p["pde_weight"]]
        self.loss_names = ["pde_re", "pde_im"]
        if p["walls"] == "loss":
            def zero(xt):
                return np.zeros((len(xt), 1))

            for comp, part in ((0, "re"), (1, "im")):
                conditions.append(dde.icbc.DirichletBC(
                    geomtime, zero, lambda _, on_boundary: on_boundary, component=comp))
                weights.append(p["bc_weight"])
                self.loss_names.append(f"walls_{part}")
        if p["initial_condition"] == "loss":
            def psi0_part(comp):
                def f(xt):
                    x = np.asarray(xt[:, :d], dtype=float)
                    psi = problem.psi0(x)
                    return (psi.real if comp == 0 else psi.imag)[:, None]
                return f

            for comp, part in ((0, "re"), (1, "im")):
                conditions.append(dde.icbc.IC(
                    geomtime, psi0_part(comp), lambda _, on_initial: on_initial, component=comp))
                weights.append(p["ic_weight"])
                self.loss_names.append(f"initial_{part}")
        self.data = dde.data.TimePDE(
            geomtime, self._pde, conditions,
            num_domain=p["num_domain"],
            num_boundary=p["num_boundary"] if p["walls"] == "loss" else 0,
            num_initial=p["num_initial"] if p["initial_condition"] == "loss" else 0,
            train_distribution=p["distribution"])
        self.n_bc = int(sum(self.data.num_bcs))
        self.layer_sizes = [self.ansatz.feature_dim] + [p["width"]] * p["depth"] + [2]
        self.net = dde.nn.FNN(self.layer_sizes, p["activation"], "Glorot normal")
        if p["output_init"] == "zero":
            # the last layer starts at 0, so that psi starts as psi0 frozen in time (exactly,
            # with a hard initial condition) instead of a random function of the size of psi0
            # (with 'exp' a random one is exp of a random phase rate, of norm up to e^rate)
            torch.nn.init.zeros_(self.net.linears[-1].weight)
            torch.nn.init.zeros_(self.net.linears[-1].bias)
        self.net.apply_feature_transform(self.ansatz.features)
        self.net.apply_output_transform(self.ansatz.output)
        # the PDE function's extra outputs (norm, energy) are one error per constraint time,
        # padded with zeros: their loss is the sum of squares over the number of times
        self.constraints = None
        self.pde_terms = 2
        losses: list = ["MSE", "MSE"]
        if p["norm_weight"] > 0 or p["energy_weight"] > 0:
            self.constraints = Constraints(
                problem, self.ansatz, self.net, grid_points=p["constraint_grid_points"],
                qmc_points=p["constraint_qmc_points"], n_times=p["constraint_times"],
                energy=p["energy_weight"] > 0, seed=spec["seed"])
            n_t = p["constraint_times"]

            def sum_sq(_, err):
                return torch.sum(err**2) / n_t

            for name, w in (("norm", p["norm_weight"]), ("energy", p["energy_weight"])):
                if name == "energy" and not self.constraints.energy:
                    continue
                losses.append(sum_sq)
                self.pde_terms += 1
                self.loss_names.insert(self.pde_terms - 1, name)
                weights.insert(self.pde_terms - 1, w)
        losses += ["MSE"] * len(conditions)
        self.losses = losses
        self.model = dde.Model(self.data, self.net)
        self.weights = weights
        self.model.compile("adam", lr=p["lr"], loss=losses, loss_weights=list(weights))
        self.info = {
            "pid": os.getpid(),
            "train_points": int(len(self.data.train_x)),
            "domain_points": int(len(self.data.train_x_all)),
            "condition_points": [int(n) for n in self.data.num_bcs],
            "loss_terms": list(self.loss_names),
            "parameters": int(sum(v.numel() for v in self.net.parameters())),
            "default_dtype_in_worker": str(torch.get_default_dtype()).replace("torch.", ""),
            "initial_energy_of_constraint": (self.constraints.e0 if self.constraints else None),
        }

    # --- the loss ------------------------------------------------------------------------
    def causal_weights(self, t: torch.Tensor, r2: torch.Tensor) -> torch.Tensor:
        """Per-point causal weights (:func:`~solvers.pinn.physics.causal_weights`).

        Hand-written: DeepXDE weights whole loss terms, not points by their time; the weights
        multiply the residual inside the PDE function so that DeepXDE's MSE is the causal loss.
        """
        w, w_slice = causal_weights(t, r2, self.ansatz.t_final, self.p["causal_slices"],
                                    self.causal["eps"])
        self.causal["min_weight"] = float(w_slice.min())
        return w

    def _pde(self, xt, y):
        r = residual(self.problem, xt, y, scale=self.scale, energy_shift=self.spec["energy_shift"])
        if self.causal["active"]:
            n_bc = self.n_bc
            r2 = (r[0] ** 2 + r[1] ** 2)[n_bc:]
            w = self.causal_weights(xt[n_bc:, -1:].detach(), r2.detach())
            w = torch.cat([torch.ones((n_bc, 1), dtype=w.dtype), w]) if n_bc else w
            r = [ri * torch.sqrt(w) for ri in r]
        if self.constraints is None:
            return r
        pad = len(xt) - self.n_bc
        extra = []
        for err in self.constraints.errors(y.dtype):
            col = torch.zeros((len(xt), 1), dtype=y.dtype)
            if len(err) > pad:
                raise ValueError(f"pinn: {len(err)} constraint times need at least as many PDE "
                                 f"points, got {pad}")
            col = torch.cat([col[: self.n_bc], err[:, None], col[self.n_bc + len(err):]])
            extra.append(col)
        return list(r) + extra

    def state_dict(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy() for k, v in self.net.state_dict().items()}

    # --- callbacks ---------------------------------------------------------------------
    def _balance_callback(self):
        """Loss balancing by gradient norms (Wang, Teng and Perdikaris 2021, in the form of Wang
        et al. 2023's "expert's guide"): every ``balance_every`` Adam steps, with g_i the
        gradient of unweighted loss term i over the weights, the target weight is
        lambda_i = sum_j |g_j| / |g_i| (times the term's given weight), and the weights move
        there as an exponential average (``balance_alpha``), clipped to [1e-3, 1e3] times the
        given weight.  Terms of weight 0 stay off.

        Hand-written: DeepXDE has no loss balancing; this callback updates the model's
        ``loss_weights``, which DeepXDE's PyTorch loss reads at every step.
        """
        return self._every(self.p["balance_every"], self.rebalance)

    def rebalance(self) -> list[float]:
        model, p = self.model, self.p
        state = model.train_state
        _, losses = model.outputs_losses_train(state.X_train, state.y_train, state.train_aux_vars)
        params = [q for q in self.net.parameters() if q.requires_grad]
        current = list(model.loss_weights)
        norms = []
        for i, loss in enumerate(losses):
            if self.weights[i] == 0 or current[i] == 0:
                norms.append(0.0)
                continue
            grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
            g = torch.sqrt(sum(torch.sum(q**2) for q in grads if q is not None))
            norms.append(float(g) / current[i])  # the unweighted term's gradient norm
        total = sum(norms)
        alpha = p["balance_alpha"]
        new = []
        for i, (w, base) in enumerate(zip(current, self.weights)):
            if base == 0 or norms[i] <= 0 or not np.isfinite(norms[i]) or total <= 0:
                new.append(w)
                continue
            target = base * total / norms[i]
            target = float(np.clip(target, 1e-3 * base, 1e3 * base))
            new.append(alpha * w + (1 - alpha) * target)
        model.loss_weights = new
        return new

    def _adaptive_callback(self):
        """Residual-based adaptive collocation (Wu, Zhu, Tan, Kartha and Lu 2023): every
        ``adaptive_every`` Adam steps, draw ``adaptive_candidates`` x ``num_domain`` uniform
        points of the space-time box, evaluate the (unweighted) residual there and sample
        points with probability p ~ e^k / mean(e^k) + c (e = |R|^2, k = ``adaptive_k``,
        c = ``adaptive_c``).  ``"rad"`` replaces the PDE points by ``num_domain`` of them;
        ``"rar-d"`` adds ``adaptive_points`` of them to the current ones.  The wall and initial
        points stay.  DeepXDE's geometry samples the candidates and its
        ``replace_with_anchors`` installs the points; DeepXDE has no RAD/RAR-D callback itself
        (its examples write the loop by hand, as here).
        """
        return self._every(self.p["adaptive_every"], self.adapt_points)

    def _every(self, steps: int, action):
        """A DeepXDE callback that calls ``action()`` after every ``steps``-th training step."""

        class Every(self.dde.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.count = 0

            def on_batch_end(self):
                self.count += 1
                if self.count % steps == 0:
                    action()

        return Every()

    def adapt_points(self) -> None:
        p, data = self.p, self.data
        n_cand = p["adaptive_candidates"] * p["num_domain"]
        cand = self.geomtime.random_points(n_cand).astype(data.train_x_all.dtype)
        err = np.empty(len(cand))
        chunk = 8192
        for start in range(0, len(cand), chunk):
            x = torch.as_tensor(cand[start:start + chunk]).requires_grad_(True)
            r = residual(self.problem, x, self.net(x), scale=self.scale,
                         energy_shift=self.spec["energy_shift"], create_graph=False)
            err[start:start + chunk] = (r[0] ** 2 + r[1] ** 2).detach().cpu().numpy().ravel()
        err = np.where(np.isfinite(err), err, np.nanmax(np.where(np.isfinite(err), err, 0)))
        ek = err ** p["adaptive_k"]
        prob = ek / max(float(ek.mean()), np.finfo(float).tiny) + p["adaptive_c"]
        prob /= prob.sum()
        rng = np.random.default_rng(self.rng.integers(2**63))
        fixed = self._condition_points()
        if p["adaptive_sampling"] == "rad":
            pick = rng.choice(len(cand), size=p["num_domain"], replace=False, p=prob)
            domain = cand[pick]
        else:  # rar-d: the current PDE points plus the new ones
            pick = rng.choice(len(cand), size=p["adaptive_points"], replace=False, p=prob)
            domain = np.vstack([self._domain_points(), cand[pick]])
        data.replace_with_anchors(np.vstack([fixed, domain]) if len(fixed) else domain)
        self.adapted += 1

    def _split_points(self):
        x = self.data.train_x_all
        on_cond = (self.geomtime.on_boundary(x) | self.geomtime.on_initial(x))
        return x[on_cond], x[~on_cond]

    def _condition_points(self):
        return self._fixed_points

    def _domain_points(self):
        return self._split_points()[1]

    # --- training ------------------------------------------------------------------------
    def _to_float64(self) -> None:
        """Switch the model, its points and DeepXDE's float to float64 (the L-BFGS finish)."""
        self.dde.config.set_default_float("float64")
        self.net.double()
        data = self.data
        for name in ("train_x_all", "train_x", "train_x_bc", "anchors", "test_x"):
            v = getattr(data, name, None)
            if isinstance(v, np.ndarray):
                setattr(data, name, v.astype(np.float64))

    def train(self, limits: dict[str, Any], channel) -> dict[str, Any]:
        dde, model = self.dde, self.model
        p = self.p
        started = time.perf_counter()
        hard = started + limits["time_limit_s"] if limits.get("time_limit_s") else None
        trainer = self
        state = {"stopped": "completed", "waited": 0.0}
        iteration_times: list[float] = []
        extra_history: dict[str, list] = {"step": [], "causal_min_weight": [], "loss_weights": []}
        self.rng = np.random.default_rng(self.spec["seed"] + 7)
        self.adapted = 0
        self._fixed_points = self._split_points()[0]
        # Adam's share of the training seconds when an L-BFGS finish follows: the worker's own
        # seconds (the parent's anytime evaluations excluded, as on the parent's clock)
        adam_seconds = None
        if p["lbfgs_iterations"] > 0 and p["lbfgs_share"] > 0:
            adam_seconds = (1.0 - p["lbfgs_share"]) * p["max_seconds"]

        def own_seconds(now):
            return now - started - state["waited"]

        class Clock(dde.callbacks.Callback):
            """Times every iteration and stops training at the wall-clock limits."""

            def __init__(self, record: bool, lbfgs_until: int | None = None,
                         stop_after: float | None = None):
                super().__init__()
                self.record = record
                self.lbfgs_until = lbfgs_until
                self.stop_after = stop_after
                self.t0 = 0.0

            def on_batch_begin(self):
                self.t0 = time.perf_counter()

            def on_batch_end(self):
                now = time.perf_counter()
                if self.record:
                    iteration_times.append(now - self.t0)
                step = int(self.model.train_state.step)
                if step % p["log_every"] == 0:
                    extra_history["step"].append(step)
                    extra_history["causal_min_weight"].append(trainer.causal["min_weight"])
                    extra_history["loss_weights"].append(list(map(float, self.model.loss_weights)))
                if hard is not None and now >= hard:
                    state["stopped"] = "time_limit"
                    self.model.stop_training = True
                elif channel.poll() == "checkpoint":
                    t_wait = time.perf_counter()
                    if channel.checkpoint({"iteration": step, "layer_sizes": trainer.layer_sizes,
                                           "state_dict": trainer.state_dict()}):
                        state["stopped"] = "max_seconds"
                        self.model.stop_training = True
                    state["waited"] += time.perf_counter() - t_wait
                if (self.stop_after is not None and state["stopped"] == "completed"
                        and own_seconds(time.perf_counter()) >= self.stop_after):
                    state["adam_budget"] = True
                    self.model.stop_training = True
                if self.lbfgs_until is not None:
                    # DeepXDE runs whole chunks; the last one must not overshoot the count
                    left = self.lbfgs_until - int(self.model.train_state.step)
                    group = self.model.opt.param_groups[0]
                    group["max_iter"] = max(1, min(group["max_iter"], left))
                    group["max_eval"] = int(1.25 * group["max_iter"])

        callbacks = [Clock(record=True, stop_after=adam_seconds)]
        if p["resample_every"] > 0:
            callbacks.append(dde.callbacks.PDEPointResampler(period=p["resample_every"]))
        if p["adaptive_sampling"] != "none":
            callbacks.append(self._adaptive_callback())
        if p["loss_balance"] == "grad_norm":
            callbacks.append(self._balance_callback())
        adam = lbfgs = 0
        if p["iterations"] > 0:
            model.train(iterations=p["iterations"], display_every=p["log_every"],
                        callbacks=callbacks, verbose=0)
            adam = int(model.train_state.step)
        if p["lbfgs_iterations"] > 0 and state["stopped"] == "completed" and not self._nan():
            from deepxde.optimizers import config as opt_config

            if p["lbfgs_dtype"] == "float64":
                self._to_float64()
            # the causal weights change with the residual at every evaluation, which L-BFGS's
            # line search cannot follow: the finish minimises the plain residual loss
            self.causal["active"] = False
            opt_config.set_LBFGS_options(maxiter=p["lbfgs_iterations"])
            # DeepXDE fixes the iterations per L-BFGS call at import; check the clock more often
            opt_config.LBFGS_options["iter_per_step"] = min(LBFGS_CHUNK, p["lbfgs_iterations"])
            opt_config.LBFGS_options["fun_per_step"] = int(
                1.25 * opt_config.LBFGS_options["iter_per_step"])
            model.compile("L-BFGS", loss=self.losses, loss_weights=list(model.loss_weights))
            model.train(callbacks=[Clock(record=False, lbfgs_until=adam + p["lbfgs_iterations"])],
                        verbose=0)
            lbfgs = int(model.train_state.step) - adam
        elapsed = time.perf_counter() - started
        if self._nan():
            state["stopped"] = "nan"

        hist = model.losshistory
        history: dict[str, list] = {"step": [int(s) for s in hist.steps]}
        losses = np.asarray(hist.loss_train, dtype=float)
        if losses.ndim == 2:
            history["loss"] = losses.sum(axis=1).tolist()
            for i, name in enumerate(self.loss_names):
                history[f"loss_{name}"] = losses[:, i].tolist()
        history["optimizer"] = ["adam" if s <= adam else "lbfgs" for s in history["step"]]
        history["extra"] = extra_history

        # a fixed set of points at which the parent checks its rebuilt network
        rng = np.random.default_rng(12345)
        lo, hi = np.asarray(self.ansatz.lo), np.asarray(self.ansatz.hi)
        check = np.hstack([lo + rng.random((64, len(lo))) * (hi - lo),
                           rng.random((64, 1)) * self.ansatz.t_final])
        self.net.eval()
        with torch.no_grad():
            check_y = self.net(torch.as_tensor(check, dtype=torch.get_default_dtype()))
        residual_final = self._final_residual()
        state_dict = self.state_dict()
        return {
            "state_dict": state_dict,
            "layer_sizes": self.layer_sizes,
            "param_dtype": str(next(self.net.parameters()).dtype).replace("torch.", ""),
            "default_dtype_in_worker": str(torch.get_default_dtype()).replace("torch.", ""),
            "check_x": check, "check_y": check_y.detach().cpu().numpy(),
            "history": history,
            "iteration_times": iteration_times,
            "adam_iterations": adam,
            "lbfgs_iterations": lbfgs,
            "stopped": state["stopped"],
            "train_s": elapsed,
            "final_loss": dict(zip(self.loss_names, map(float, losses[-1])))
            if losses.ndim == 2 and len(losses) else {},
            "final_residual_rms": residual_final,
            "peak_rss_mb": peak_rss_mb(),
            "loss_terms": list(self.loss_names),
            "loss_weights": list(map(float, model.loss_weights)),
            "causal_min_weight": self.causal["min_weight"],
            "adapted": self.adapted,
            "final_train_points": int(len(self.data.train_x_all)),
            "adam_stopped_for_lbfgs": bool(state.get("adam_budget", False)),
            "constraint_e0": self.constraints.e0 if self.constraints else None,
        }

    def _nan(self) -> bool:
        loss = self.model.train_state.loss_train
        return loss is not None and not np.all(np.isfinite(loss))

    def _final_residual(self) -> float:
        """RMS of the scaled residuals on the training collocation points, after training."""
        x = torch.as_tensor(self.data.train_x_all, dtype=torch.get_default_dtype())
        x.requires_grad_(True)
        y = self.net(x)
        r = residual(self.problem, x, y, scale=residual_scale(self.ansatz.t_final,
                                                                self.ansatz.amplitude),
                     energy_shift=self.spec["energy_shift"], create_graph=False)
        return float(torch.sqrt(torch.mean(torch.cat(r).detach() ** 2)))


_DDE = None


def hello() -> dict[str, Any]:
    """Import DeepXDE (the slow part of starting the process) and say what loaded."""
    global _DDE
    _DDE = import_deepxde()
    return {"deepxde": _DDE.__version__, "backend": _DDE.backend.backend_name,
            "torch": torch.__version__}


class _Handler:
    """The requests of one training process: one model at a time."""

    def __init__(self):
        self.trainer: Trainer | None = None

    def on_setup(self, spec, channel):
        self.trainer = None
        self.trainer = Trainer(_DDE, spec)
        return self.trainer.info

    def on_train(self, payload, channel):
        trainer, self.trainer = self.trainer, None
        if trainer is None or trainer.token != payload["token"]:
            raise RuntimeError("no model was set up for this run")
        return trainer.train(payload, channel)


def make_handler() -> _Handler:
    return _Handler()
