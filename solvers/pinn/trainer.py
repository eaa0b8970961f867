"""One PINN's training, on DeepXDE: its data, network, model, callbacks and optimisers.

Runs only in the PINN's training process (:mod:`solvers.pinn.worker`), which imports DeepXDE
and hands the module to :class:`Trainer`; nothing here imports DeepXDE itself.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import torch

from core.memory import peak_rss_mb, reset_peak_rss

from . import adaptive
from .constraints import Constraints
from .physics import Ansatz, causal_weights, residual, residual_scale

__all__ = ["Trainer"]

#: L-BFGS iterations between two checks of the clock (at most; fewer near the budget's end).
LBFGS_CHUNK = 50
#: L-BFGS iterations of the first chunk, whose seconds size the next ones (DeepXDE reads a
#: chunk of one iteration as convergence), and the most a chunk may grow on the one before.
LBFGS_FIRST_CHUNK = 2
LBFGS_GROWTH = 4


#: The most loss evaluations of one strong-Wolfe line search in torch's L-BFGS (its default
#: ``max_ls``, which DeepXDE does not change).
LINE_SEARCH_EVALUATIONS = 25


def lbfgs_evaluations(iterations: int) -> int:
    """Loss evaluations allowed to a chunk of L-BFGS ``iterations``: DeepXDE's ratio 1.25, plus
    the evaluation torch's L-BFGS makes before its first iteration and room for one whole line
    search.  Without them a short chunk can stop after one iteration, which DeepXDE reads as
    convergence: training would end early, labelled complete."""
    return int(1.25 * iterations) + 1 + LINE_SEARCH_EVALUATIONS


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
        """Every ``balance_every`` Adam steps, rebalance the loss weights by gradient norms
        (:func:`~solvers.pinn.adaptive.balanced_weights`).  The callback updates the model's
        ``loss_weights``, which DeepXDE's PyTorch loss reads at every step."""
        return adaptive.every(self.dde.callbacks.Callback, self.p["balance_every"], self.rebalance)

    def rebalance(self) -> list[float]:
        model = self.model
        state = model.train_state
        _, losses = model.outputs_losses_train(state.X_train, state.y_train, state.train_aux_vars)
        params = [q for q in self.net.parameters() if q.requires_grad]
        current = list(model.loss_weights)
        norms = adaptive.grad_norms(losses, params, current, self.weights)
        model.loss_weights = adaptive.balanced_weights(norms, current, self.weights,
                                                       self.p["balance_alpha"])
        return model.loss_weights

    def _adaptive_callback(self):
        """Residual-based adaptive collocation (Wu et al. 2023): every ``adaptive_every`` Adam
        steps, :meth:`adapt_points`."""
        return adaptive.every(self.dde.callbacks.Callback, self.p["adaptive_every"],
                              self.adapt_points)

    def adapt_points(self) -> None:
        """Draw ``adaptive_candidates`` x ``num_domain`` uniform points of the space-time box
        (DeepXDE's geometry), evaluate the unweighted residual there and pick points by
        :func:`~solvers.pinn.adaptive.residual_sample` (``adaptive_k``, ``adaptive_c``).
        ``"rad"`` replaces the PDE points by ``num_domain`` of them; ``"rar-d"`` adds
        ``adaptive_points`` of them to the current ones.  The wall and initial points stay;
        DeepXDE's ``replace_with_anchors`` installs the points."""
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
        rng = np.random.default_rng(self.rng.integers(2**63))
        rad = p["adaptive_sampling"] == "rad"
        pick = adaptive.residual_sample(err, p["num_domain"] if rad else p["adaptive_points"],
                                        k=p["adaptive_k"], c=p["adaptive_c"], rng=rng)
        # rar-d: the current PDE points plus the new ones
        domain = cand[pick] if rad else np.vstack([self._domain_points(), cand[pick]])
        fixed = self._fixed_points
        data.replace_with_anchors(np.vstack([fixed, domain]) if len(fixed) else domain)
        self.adapted += 1

    def _split_points(self):
        x = self.data.train_x_all
        on_cond = (self.geomtime.on_boundary(x) | self.geomtime.on_initial(x))
        return x[on_cond], x[~on_cond]

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
                self.step0 = 0

            def on_batch_begin(self):
                self.t0 = time.perf_counter()
                self.step0 = int(self.model.train_state.step)

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
                if self.lbfgs_until is not None and not self.model.stop_training:
                    self._size_lbfgs_chunk(step, now)

            def _size_lbfgs_chunk(self, step: int, now: float) -> None:
                """DeepXDE runs whole chunks of L-BFGS iterations between two callbacks: the
                next one must overshoot neither the count nor the training seconds.  A chunk's
                iterations are sized from the last chunk's seconds per iteration (at d = 2 a
                50-iteration chunk took about 10 s, a sixth of a 60-s budget)."""
                group = self.model.opt.param_groups[0]
                done = step - self.step0
                left = self.lbfgs_until - step
                size = min(LBFGS_CHUNK, LBFGS_GROWTH * max(done, 1), left)
                if done > 0:
                    fits = ((p["max_seconds"] - own_seconds(time.perf_counter()))
                            / ((now - self.t0) / done))
                    if fits < 1.0:
                        state["stopped"] = "max_seconds"
                        self.model.stop_training = True
                        return
                    # plan half the seconds left: one L-BFGS iteration can cost several
                    # times the chunk's mean (its line search takes up to 25 evaluations;
                    # measured in CI: a 6-s budget overrun by 1.3 s, 4 mean iterations, when
                    # the last chunk was sized to fill the time), so the chunks close in on
                    # the budget and only the last, of 2, can pass it
                    size = min(size, max(int(fits / 2), 1))
                # DeepXDE takes a chunk of exactly one iteration for convergence and stops
                # (without counting it): never size one, nor leave one for the last chunk
                size = max(2, size)
                if left - size == 1:
                    size = left
                group["max_iter"] = size
                group["max_eval"] = lbfgs_evaluations(group["max_iter"])

        callbacks = [Clock(record=True, stop_after=adam_seconds)]
        if p["resample_every"] > 0:
            callbacks.append(dde.callbacks.PDEPointResampler(period=p["resample_every"]))
        if p["adaptive_sampling"] != "none":
            callbacks.append(self._adaptive_callback())
        if p["loss_balance"] == "grad_norm":
            callbacks.append(self._balance_callback())
        adam = lbfgs = 0
        lbfgs_s = 0.0
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
            # (a short first chunk measures the pace, the callback sizes the next ones)
            opt_config.LBFGS_options["iter_per_step"] = min(LBFGS_FIRST_CHUNK,
                                                            p["lbfgs_iterations"])
            opt_config.LBFGS_options["fun_per_step"] = lbfgs_evaluations(
                opt_config.LBFGS_options["iter_per_step"])
            model.compile("L-BFGS", loss=self.losses, loss_weights=list(model.loss_weights))
            t_lbfgs = time.perf_counter()
            model.train(callbacks=[Clock(record=False, lbfgs_until=adam + p["lbfgs_iterations"])],
                        verbose=0)
            lbfgs_s = time.perf_counter() - t_lbfgs
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
            "lbfgs_s": lbfgs_s,
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
