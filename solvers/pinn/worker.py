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

from .physics import Ansatz, residual, residual_scale

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
        geomtime = dde.geometry.GeometryXTime(space, dde.geometry.TimeDomain(0.0, T))

        scale = residual_scale(T, self.ansatz.amplitude)
        shift = spec["energy_shift"]

        def pde(xt, y):
            return residual(problem, xt, y, scale=scale, energy_shift=shift)

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
            geomtime, pde, conditions,
            num_domain=p["num_domain"],
            num_boundary=p["num_boundary"] if p["walls"] == "loss" else 0,
            num_initial=p["num_initial"] if p["initial_condition"] == "loss" else 0,
            train_distribution=p["distribution"])
        self.layer_sizes = [d + 1] + [p["width"]] * p["depth"] + [2]
        self.net = dde.nn.FNN(self.layer_sizes, p["activation"], "Glorot normal")
        self.net.apply_feature_transform(self.ansatz.features)
        self.net.apply_output_transform(self.ansatz.output)
        self.model = dde.Model(self.data, self.net)
        self.weights = weights
        self.model.compile("adam", lr=p["lr"], loss_weights=weights)
        self.info = {
            "pid": os.getpid(),
            "train_points": int(len(self.data.train_x)),
            "domain_points": int(len(self.data.train_x_all)),
            "condition_points": [int(n) for n in self.data.num_bcs],
            "loss_terms": list(self.loss_names),
            "parameters": int(sum(v.numel() for v in self.net.parameters())),
            "default_dtype_in_worker": str(torch.get_default_dtype()).replace("torch.", ""),
        }

    def state_dict(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy() for k, v in self.net.state_dict().items()}

    def train(self, limits: dict[str, Any], channel) -> dict[str, Any]:
        dde, model = self.dde, self.model
        p = self.p
        started = time.perf_counter()
        hard = started + limits["time_limit_s"] if limits.get("time_limit_s") else None
        trainer = self
        state = {"stopped": "completed"}
        iteration_times: list[float] = []

        class Clock(dde.callbacks.Callback):
            """Times every iteration and stops training at the wall-clock limits."""

            def __init__(self, record: bool, lbfgs_until: int | None = None):
                super().__init__()
                self.record = record
                self.lbfgs_until = lbfgs_until
                self.t0 = 0.0

            def on_batch_begin(self):
                self.t0 = time.perf_counter()

            def on_batch_end(self):
                now = time.perf_counter()
                if self.record:
                    iteration_times.append(now - self.t0)
                if hard is not None and now >= hard:
                    state["stopped"] = "time_limit"
                    self.model.stop_training = True
                elif channel.poll() == "checkpoint":
                    step = int(self.model.train_state.step)
                    if channel.checkpoint({"iteration": step, "layer_sizes": trainer.layer_sizes,
                                           "state_dict": trainer.state_dict()}):
                        state["stopped"] = "max_seconds"
                        self.model.stop_training = True
                if self.lbfgs_until is not None:
                    # DeepXDE runs whole chunks; the last one must not overshoot the count
                    left = self.lbfgs_until - int(self.model.train_state.step)
                    group = self.model.opt.param_groups[0]
                    group["max_iter"] = max(1, min(group["max_iter"], left))
                    group["max_eval"] = int(1.25 * group["max_iter"])

        callbacks = [Clock(record=True)]
        if p["resample_every"] > 0:
            callbacks.append(dde.callbacks.PDEPointResampler(period=p["resample_every"]))
        adam = lbfgs = 0
        if p["iterations"] > 0:
            model.train(iterations=p["iterations"], display_every=p["log_every"],
                        callbacks=callbacks, verbose=0)
            adam = int(model.train_state.step)
        if p["lbfgs_iterations"] > 0 and state["stopped"] == "completed" and not self._nan():
            from deepxde.optimizers import config as opt_config

            opt_config.set_LBFGS_options(maxiter=p["lbfgs_iterations"])
            # DeepXDE fixes the iterations per L-BFGS call at import; check the clock more often
            opt_config.LBFGS_options["iter_per_step"] = min(LBFGS_CHUNK, p["lbfgs_iterations"])
            opt_config.LBFGS_options["fun_per_step"] = int(
                1.25 * opt_config.LBFGS_options["iter_per_step"])
            model.compile("L-BFGS", loss_weights=self.weights)
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
