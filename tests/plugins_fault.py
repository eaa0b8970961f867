"""A plug-in solver that fails on purpose, for the executor fault tests.

Loaded through ``DSM_BENCH_PLUGINS=<path to this file>``, so that it exists in the spawned
processes the executors start (a monkeypatched registry would not).  ``mode`` picks the failure:

``ok``         exact observables (a well-behaved solver)
``raise``      run() raises
``nan``        evaluate() returns NaN means
``sleep``      run() sleeps forever, ignoring its budget (unless the file ``marker`` exists)
``segfault``   the process dies of SIGSEGV in run()
``exit``       the process calls os._exit(3) in run()
``memory``     run() raises MemoryError
``killwrite``  the process SIGKILLs itself half-way through writing its record, the first time
               (when the file ``marker`` does not exist yet; it is created), and is ``ok`` after
``oracle``     exact samples: whole exact paths of the reference's diffusion (``samples``
               of them), the perfect sample-based solver; ``train_s`` seconds of "training"
               (sleeping between checkpoints), each anytime evaluation sleeping
               ``eval_sleep_s`` (which must not count as training)
``killtrain``  like ``oracle``, but the process SIGKILLs itself at its third checkpoint

An ``ok`` run reports the thread caps it saw in its diagnostics.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import solvers
from core import Parametrized, param
from solvers.base import Observables, Solver

MODES = ("ok", "raise", "nan", "sleep", "segfault", "exit", "memory", "killwrite", "oracle",
         "killtrain")


class _HalfWriter:
    """A file whose first write stores half the text, then kills the process."""

    def __init__(self, fh):
        self._fh = fh

    def write(self, text):
        self._fh.write(text[: len(text) // 2])
        self._fh.flush()
        os.fsync(self._fh.fileno())
        os.kill(os.getpid(), signal.SIGKILL)

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._fh.__exit__(*exc)


class FaultSolver(Solver):
    name = "fault_test"
    description = "test double that fails in a chosen way"

    @dataclass(frozen=True)
    class Params(Parametrized):
        mode: str = param("ok", "how to fail", choices=MODES)
        marker: str = param("", "killwrite: kill only while this file does not exist; "
                                "sleep: sleep until it exists")
        samples: int = param(2000, "oracle: exact paths", lo=2)
        train_s: float = param(0.3, "oracle: seconds of training (sleeps of 10 ms)", lo=0.0)
        eval_sleep_s: float = param(0.0, "oracle: seconds each anytime evaluation sleeps", lo=0.0)
        max_seconds: float = param(0.0, "oracle: training budget (0: none)", lo=0.0)

    quick_params = {"mode": "ok"}
    anytime = "checkpoints"
    budget_param = "max_seconds"

    def setup(self, problem, *, times, device="cpu", seed=0, budget=None, workdir=None):
        self.problem, self.times = problem, np.asarray(times, dtype=float)
        self.seed = seed

    def run(self, clock):
        self.iterations = 1
        mode = self.params.mode
        if mode in ("oracle", "killtrain"):
            clock = clock.limited(self.params.max_seconds)
            while clock.elapsed() < self.params.train_s:
                time.sleep(0.01)
                self.iterations += 1
                self.iteration_times.append(0.01)
                if clock(self.iterations):
                    break
            return
        if mode == "raise":
            raise RuntimeError("diverged on purpose")
        if mode == "memory":
            raise MemoryError("out of memory on purpose")
        if mode == "sleep":
            while not (self.params.marker and Path(self.params.marker).exists()):
                time.sleep(0.2)
        if mode == "segfault":
            ctypes.string_at(0)
        if mode == "exit":
            os._exit(3)
        if mode == "killwrite" and self.params.marker and not Path(self.params.marker).exists():
            Path(self.params.marker).touch()
            real = os.fdopen

            def fdopen(fd, *args, **kwargs):
                fh = real(fd, *args, **kwargs)
                mode = args[0] if args else kwargs.get("mode", "r")
                return _HalfWriter(fh) if mode == "w" else fh

            # records.atomic_write_text opens its temporary file with os.fdopen(fd, "w")
            # (binary writes, such as the reference cache's, are left alone)
            os.fdopen = fdopen

    def _paths(self, seed: int) -> Observables:
        ref = self.problem.reference()
        rng = np.random.default_rng(seed)
        xs = np.array(list(ref.sample_paths(self.params.samples, self.times, rng)))
        S = self.params.samples
        p = self.problem
        energy = np.array([np.mean(0.5 * p.mass * ((ref.u(x, t) ** 2).sum(1)
                                                   + (ref.v(x, t) ** 2).sum(1))
                                   + p.potential(x, t)) for x, t in zip(xs, self.times)])
        return Observables(times=self.times, mean=xs.mean(1), var=xs.var(1, ddof=1),
                           com_var=xs.mean(2).var(1, ddof=1), samples=xs[:, :, :2], energy=energy,
                           n_samples=S, sample_kind="paths", diffusion_nu=1.0,
                           velocity=lambda x, t: (ref.u(x, t), ref.v(x, t)))

    def anytime_evaluate(self):
        if self.params.mode not in ("oracle", "killtrain"):
            return self._exact()
        self.checkpoints = getattr(self, "checkpoints", 0) + 1
        if self.params.mode == "killtrain" and self.checkpoints == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(self.params.eval_sleep_s)
        return self._paths(self.seed + 1)

    def evaluate(self):
        if self.params.mode == "oracle":
            return self._paths(self.seed)
        return self._exact()

    def _exact(self):
        ref = self.problem.reference()
        mean, var = ref.mean(self.times), ref.var(self.times)
        if self.params.mode == "nan":
            mean = mean.copy()
            mean[3:] = np.nan
        import torch

        diagnostics = {"omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                       "torch_threads": torch.get_num_threads(), "pid": os.getpid()}
        return Observables(times=self.times, mean=mean, var=var, diagnostics=diagnostics)


solvers.register(FaultSolver)
