"""The t-VMC solver's process: the only place JAX and NetKet are imported for a run.

Served by :mod:`solvers.isolated` (:func:`hello` greets, :func:`make_handler` answers):

``setup``
    Build (and compile: see :meth:`solvers.tvmc.engine.Engine._warm_up`) an
    :class:`~solvers.tvmc.engine.Engine` for a problem, record times, settings and seed; answer
    a summary (parameters, the fit of psi0, scales, setup seconds, peak memory).
``run``
    Advance the engine through the record times until the last one, until ``max_seconds`` of
    its own wall clock are spent, or until the parameters become non-finite; answer the
    engine's result (observables at the record times reached, Markov-chain statistics,
    diagnostics), per-record seconds, why it stopped and the process's peak memory.

Threads: XLA's CPU threading is fixed when JAX starts, so it is a property of the process, set
by the parent through ``XLA_FLAGS`` in the environment it starts the process with (see
:func:`solvers.tvmc.solver.worker_env`); :func:`hello` reports the flags that JAX saw.
"""

from __future__ import annotations

import os
import time
from typing import Any

__all__ = ["hello", "make_handler"]

_ENGINE = None


def hello() -> dict[str, Any]:
    """Import JAX and NetKet (the slow part of starting the process) and say what loaded."""
    global _ENGINE
    from . import engine  # JAX and NetKet come in here, in this process only

    _ENGINE = engine
    import jax

    return dict(engine.versions(), xla_flags=os.environ.get("XLA_FLAGS", ""),
                devices=[str(dev) for dev in jax.devices()])


class _Handler:
    """The requests of one t-VMC process: one engine at a time."""

    def __init__(self):
        self.engine = None
        self.token = None

    def on_setup(self, spec: dict[str, Any], channel) -> dict[str, Any]:
        self.engine = self.token = None
        import jax

        # a configuration of the compiler, not of the numerics: every setup sets it
        jax.config.update("jax_disable_most_optimizations", bool(spec.get("fast_compile")))
        eng = _ENGINE.Engine(spec["problem"], spec["times"], spec["settings"], seed=spec["seed"],
                             warm=True)
        self.engine, self.token = eng, spec["token"]
        return {
            "setup_seconds": eng.setup_seconds,
            "n_parameters": int(eng.vstate.n_parameters),
            "fit_residual": float(eng.fit_residual),
            "scales": {"one": eng.spec.s_one, "pair": eng.spec.s_pair},
            "symmetric": bool(eng.spec.symmetric),
            "even": bool(eng.spec.even),
            "peak_rss_mb": _ENGINE.peak_rss_mb(),
        }

    def on_run(self, payload: dict[str, Any], channel) -> dict[str, Any]:
        eng, self.engine = self.engine, None
        if eng is None or self.token != payload["token"]:
            raise RuntimeError("no t-VMC engine was set up for this run")
        started = time.perf_counter()
        limit = payload.get("max_seconds")
        deadline = None if not limit else started + float(limit)
        record_s: list[float] = []
        steps: list[int] = []
        stopped = "completed"
        # a run takes minutes (771 s for the neural ansatz at d = 4): a bar over the record
        # times on the inherited stderr, shown on a terminal only (as DSM's)
        from tqdm.auto import tqdm
        with tqdm(total=len(eng.times), initial=len(eng.records), unit="record",
                  desc=f"tvmc d={eng.d}", leave=False, disable=None) as bar:
            while not eng.done:
                if deadline is not None and eng.records and time.perf_counter() > deadline:
                    stopped = "max_seconds"
                    break
                channel.poll()  # the parent may be leaving: stop at once then
                t0, before = time.perf_counter(), eng.steps
                try:
                    eng.advance()
                except FloatingPointError:
                    stopped = "nonfinite"
                    break
                record_s.append(time.perf_counter() - t0)
                steps.append(eng.steps - before)
                bar.update(1)
        result = eng.result()
        result.update(stopped=stopped, run_seconds=time.perf_counter() - started,
                      record_seconds=record_s, record_steps=steps,
                      peak_rss_mb=_ENGINE.peak_rss_mb())
        return result


def make_handler() -> _Handler:
    return _Handler()
