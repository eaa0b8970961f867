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

MODES = ("ok", "raise", "nan", "sleep", "segfault", "exit", "memory", "killwrite")


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

    quick_params = {"mode": "ok"}

    def setup(self, problem, *, times, device="cpu", seed=0, budget=None, workdir=None):
        self.problem, self.times = problem, np.asarray(times, dtype=float)

    def run(self):
        self.iterations = 1
        mode = self.params.mode
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

    def evaluate(self):
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
