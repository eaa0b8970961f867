"""Cost against dimension: seconds per training iteration and peak memory for each d.

``python -m harness scaling --solver dsm --problem harmonic_nd --dims 1,2,4,8 --iterations 30
--out FILE.json`` builds the problem at each d, runs the solver for the given number of
iterations in a fresh process (so that peak memory is the run's own and no library's global
state leaks between sizes), and records the median seconds per iteration after warm-up.
"""

from __future__ import annotations

import datetime as _dt
import multiprocessing as mp
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import torch

import problems
import solvers

from .env import environment, resolve_device
from .runner import _peak_rss_mb, _sync


def measure(problem_name: str, problem_params: dict, solver_name: str, solver_params: dict,
            device: str, warmup: int, seed: int = 0) -> dict[str, Any]:
    """One size, in the current process: setup, run, and the per-iteration timings."""
    problem = problems.get(problem_name, **problem_params)
    solver = solvers.get(solver_name, **solver_params)
    out: dict[str, Any] = {"d": problem.d, "problem_params": problem.params()}
    reason = solver.skip(problem)
    if reason:
        return dict(out, status="skipped", reason=reason)
    torch.manual_seed(seed)
    rss_before = _peak_rss_mb()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    times = np.linspace(0, problem.t_final, 11)
    t0 = time.perf_counter()
    solver.setup(problem, times=times, device=device, seed=seed)
    _sync(device)
    out["setup_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    solver.run()
    _sync(device)
    out["train_s"] = time.perf_counter() - t0
    out["iterations"] = solver.iterations
    per_iter = list(solver.iteration_times)
    if per_iter:
        kept = per_iter[min(warmup, len(per_iter) - 1):]
        out["s_per_iter"] = statistics.median(kept)
        q = np.percentile(kept, [25, 75])
        out["s_per_iter_iqr"] = [float(q[0]), float(q[1])]
        out["warmup"] = len(per_iter) - len(kept)
    elif solver.iterations:
        out["s_per_iter"] = out["train_s"] / solver.iterations
    if device.startswith("cuda"):
        out["peak_mem_mb"] = torch.cuda.max_memory_allocated() / 2**20
        out["peak_mem_kind"] = "cuda_allocated"
    else:
        out["peak_mem_mb"] = _peak_rss_mb()
        out["peak_mem_increase_mb"] = out["peak_mem_mb"] - rss_before
        out["peak_mem_kind"] = "process_rss"
    out["status"] = "ok"
    return out


def _measure_safely(args: tuple) -> dict[str, Any]:
    try:
        return measure(*args)
    except Exception as exc:  # a failure at one size is a result, not the end of the study
        return {"d": args[1].get("d"), "status": "failed", "reason": f"{type(exc).__name__}: {exc}"}


def scaling(problem_name: str, solver_name: str, dims: list[int], *, problem_params: dict,
            solver_params: dict, iterations: int | None, device: str = "auto",
            warmup: int | None = None, progress=print) -> dict[str, Any]:
    """Measure every dimension in ``dims``, each in its own process; return the study."""
    cls = solvers.solver_class(solver_name)
    solver_params = dict(solver_params)
    if iterations is not None:
        if cls.iterations_param is None:
            raise ValueError(f"solver {solver_name} has no iteration budget; omit --iterations")
        solver_params[cls.iterations_param] = iterations
    # validate everything before running anything
    for d in dims:
        problems.get(problem_name, **dict(problem_params, d=d))
    cls(solver_params)
    device = resolve_device(device)
    if warmup is None:
        warmup = max(2, (iterations or 10) // 5)
    ctx = mp.get_context("spawn")
    results = []
    for d in dims:
        args = (problem_name, dict(problem_params, d=d), solver_name, solver_params, device, warmup)
        with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
            res = pool.submit(_measure_safely, args).result()
        results.append(res)
        if progress:
            shown = (f"{res['s_per_iter']:.4g} s/iter, peak {res['peak_mem_mb']:.0f} MB"
                     if res["status"] == "ok" else f"{res['status']}: {res.get('reason')}")
            progress(f"d={d}: {shown}")
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "problem": {"name": problem_name, "params": problem_params},
        "solver": {"name": solver_name, "params": cls(solver_params).params.params()},
        "iterations": iterations,
        "warmup": warmup,
        "env": environment(device),
        "results": results,
    }
