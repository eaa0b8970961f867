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
from typing import Any

import torch

from .trainer import Trainer

__all__ = ["hello", "make_handler", "import_deepxde"]


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
