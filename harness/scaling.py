"""Cost against dimension: seconds per training iteration and peak memory for each d.

``python -m harness scaling --solver dsm --problem harmonic_nd --dims 1,2,4,8 --iterations 30
--out FILE.json`` builds the problem at each d and runs the solver for the given number of
iterations in a run process of its own, exactly as ``run`` does (:mod:`harness.protocol`: a fresh
interpreter, thread caps set before anything loads, freed memory kept), so that peak memory is
the run's own, no library's global state leaks between sizes, and a timing measures what a run
gets.  No evaluation, metrics or anytime points are computed.  The median seconds per iteration
after warm-up is recorded beside the machine's load average before and after each size, so that
a contended timing can be recognised.
"""

from __future__ import annotations

import datetime as _dt
import os
import statistics
import warnings
from dataclasses import asdict
from typing import Any

import numpy as np

import solvers
from core import ParameterError

from .env import environment, load_average, resolve_device
from .protocol import outcome_record, run_isolated
from .runner import RunRequest, plan

__all__ = ["scaling", "MIN_TIMED_ITERATIONS", "DEFAULT_THREADS"]

#: Fewer timed iterations (after warm-up) than this give no reliable median: refused.
MIN_TIMED_ITERATIONS = 5
#: Threads per measurement unless told otherwise: one, so that a timing does not depend on
#: whether another job shares the machine's cores (measured: DSM's default iteration took 4.6 s
#: with torch's default two threads beside another run on 2 cores, 0.064 s alone).
DEFAULT_THREADS = 1



def measure(request: RunRequest, threads: int, warmup: int) -> dict[str, Any]:
    """One size in a run process of its own: its timing, peak memory and the load around it."""
    run = plan(request)
    out: dict[str, Any] = {"d": run.problem.d, "problem_params": run.problem.params(),
                           "threads": threads, "load_before": load_average()}
    outcome = run_isolated(asdict(request), run.run_id, threads=threads,
                           execution={"executor": "scaling"})
    record = outcome_record(run, outcome)
    out["load_after"] = load_average()
    if record["status"] != "ok":
        return dict(out, status=record["status"], reason=record["reason"])
    timing = record["timing"]
    out.update({k: timing[k] for k in ("setup_s", "train_s", "iterations", "peak_mem_mb",
                                       "peak_mem_kind") if k in timing})
    per_iter = (outcome.get("history") or {}).get("iteration_s") or []
    if per_iter:
        kept = per_iter[min(warmup, len(per_iter) - 1):]
        out["s_per_iter"] = statistics.median(kept)
        q = np.percentile(kept, [25, 75])
        out["s_per_iter_iqr"] = [float(q[0]), float(q[1])]
        out["warmup"] = len(per_iter) - len(kept)
        out["timed_iterations"] = len(kept)
    elif timing.get("s_per_iter"):
        out["s_per_iter"] = timing["s_per_iter"]
    out["status"] = "ok"
    return out


def scaling(problem_name: str, solver_name: str, dims: list[int], *, problem_params: dict,
            solver_params: dict, iterations: int | None, device: str = "auto",
            warmup: int | None = None, threads: int | None = None,
            progress=print) -> dict[str, Any]:
    """Measure every dimension in ``dims``, each in its own run process; return the study."""
    cls = solvers.solver_class(solver_name)
    solver_params = dict(solver_params)
    if iterations is not None:
        if cls.iterations_param is None:
            raise ParameterError(f"solver {solver_name} has no iteration budget; omit --iterations")
        solver_params[cls.iterations_param] = iterations
    if warmup is None:
        warmup = max(2, (iterations or 10) // 5)
    if iterations is not None and iterations - warmup < MIN_TIMED_ITERATIONS:
        raise ParameterError(
            f"--iterations {iterations} with --warmup {warmup} times {iterations - warmup} "
            f"iterations; at least {MIN_TIMED_ITERATIONS} are needed for a median")
    threads = threads or DEFAULT_THREADS
    device = resolve_device(device)
    # validate everything before running anything
    requests = [RunRequest(problem=problem_name, solver=solver_name,
                           problem_params=dict(problem_params, d=d), solver_params=solver_params,
                           device=device, anytime=False, evaluate=False) for d in dims]
    for req in requests:
        plan(req)
    load = load_average()
    if load and load[0] > 0.5:
        warnings.warn(f"the machine's load average is {load[0]:g}: timings may be contended",
                      stacklevel=2)
    results = []
    for req in requests:
        res = measure(req, threads, warmup)
        results.append(res)
        if progress:
            shown = (f"{res['s_per_iter']:.4g} s/iter, peak {res['peak_mem_mb']:.0f} MB, "
                     f"load {res['load_before']} -> {res['load_after']}"
                     if res["status"] == "ok" else f"{res['status']}: {res.get('reason')}")
            progress(f"d={res['d']}: {shown}")
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "problem": {"name": problem_name, "params": problem_params},
        "solver": {"name": solver_name, "params": cls(solver_params).params.params()},
        "iterations": iterations,
        "warmup": warmup,
        "threads": threads,
        "cpu_count": os.cpu_count(),
        "env": environment(device),
        "results": results,
    }
