"""Running one (problem, solver, seed) and turning it into a record.

Everything that can be wrong with the request is checked by :func:`plan` before anything runs,
so bad input never leaves a record.  :func:`execute` never raises for a failure of the solver:
the run becomes a record with ``status="failed"`` and the reason.
"""

from __future__ import annotations

import datetime as _dt
import math
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

import problems
import solvers
from core import ParameterError
from core.io import atomic_write_text
from core.memory import peak_rss_mb
from solvers.base import Budget

from . import metrics as _metrics
from .floors import floor_metrics
from . import records
from .anytime import MAX_EVAL_FRACTION, SCHEDULE_S, AnytimeClock
from .env import environment, resolve_device
from .phases import Phase

__all__ = ["RunRequest", "PlannedRun", "plan", "execute", "run_record", "write_record",
           "new_record", "failed_record"]

#: Significant digits kept for marginal densities in records (they are for figures) ...
DENSITY_DIGITS = 4
#: ... and densities below this fraction of the peak are stored as 0.
DENSITY_FLOOR = 1e-6


@dataclass(frozen=True)
class RunRequest:
    """What the user asked for, before validation."""

    problem: str
    solver: str
    problem_params: dict[str, Any] = field(default_factory=dict)
    solver_params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    n_times: int = 101
    device: str = "auto"
    time_limit_s: float | None = None
    profile: str | None = None
    #: Whether to record anytime points (the cost-accuracy curve); off for timing studies.
    anytime: bool = True
    #: Whether to evaluate and compute metrics; off for timing studies (the scaling command).
    evaluate: bool = True


@dataclass
class PlannedRun:
    """A validated request: built problem and solver, its id and derived RNG seed."""

    request: RunRequest
    problem: Any
    solver: Any
    device: str
    run_id: str
    rng_seed: int

    @property
    def times(self) -> np.ndarray:
        return np.linspace(0.0, self.problem.t_final, self.request.n_times)


def plan(req: RunRequest) -> PlannedRun:
    """Validate a request; raises :class:`ParameterError` (or ValueError) with a clear message."""
    problem = problems.get(req.problem, **req.problem_params)
    solver = solvers.get(req.solver, **req.solver_params)
    if isinstance(req.seed, bool) or not isinstance(req.seed, int) or req.seed < 0:
        raise ParameterError(f"seed must be a non-negative integer, got {req.seed!r}")
    if req.n_times < 2:
        raise ParameterError(f"the time grid needs at least 2 points, got {req.n_times}")
    if req.time_limit_s is not None and not (req.time_limit_s > 0 and math.isfinite(req.time_limit_s)):
        raise ParameterError(f"time limit must be a positive number of seconds, got {req.time_limit_s}")
    device = resolve_device(req.device)
    pspec, sspec = problem.spec(), solver.spec()
    rid = records.run_id(pspec, sspec, req.seed, {"n_times": req.n_times})
    return PlannedRun(req, problem, solver, device, rid, records.derive_seed(pspec, sspec, req.seed))


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _check_finite(obs) -> None:
    for name in ("mean", "var"):
        arr = np.asarray(getattr(obs, name))
        bad = ~np.isfinite(arr)
        if bad.any():
            t = obs.times[np.argwhere(bad)[0][0]]
            raise FloatingPointError(f"non-finite {name} (NaN or Inf) from t={t:.4g} on")


def new_record(run: PlannedRun, execution: dict[str, Any] | None = None) -> dict[str, Any]:
    """The skeleton of ``run``'s record: identity, environment, empty timing and metrics."""
    req = run.request
    record: dict[str, Any] = {
        "schema": records.SCHEMA,
        "run_id": run.run_id,
        "status": "ok",
        "reason": None,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "problem": run.problem.spec(),
        "solver": run.solver.spec(),
        "seed": req.seed,
        "rng_seed": run.rng_seed,
        "profile": req.profile,
        "n_times": req.n_times,
        "env": environment(run.device),
        "timing": {},
        "metrics": {},
    }
    if execution:
        record["execution"] = dict(execution)
    return record


def failed_record(run: PlannedRun, reason: str, *, error: dict[str, Any] | None = None,
                  execution: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ``failed`` record written on a run's behalf when its process could not write one
    (killed at the time limit, crashed, lost with a distributed worker)."""
    record = new_record(run, execution)
    record.update(status="failed", reason=reason)
    record["error"] = dict(error or {}, message=reason)
    return record


class _Anytime:
    """The anytime points of one run: evaluations at checkpoints or ladder rungs."""

    def __init__(self, run: PlannedRun, series: _metrics.ReferenceSeries):
        self.run = run
        self.series = series
        self.points: list[dict[str, Any]] = []
        self.last_obs = None
        self.last_metrics: dict[str, float] = {}

    def point(self, obs, iteration: int, train_s: float, **extra) -> None:
        entry: dict[str, Any] = {"train_s": float(train_s), "iteration": int(iteration)}
        entry.update(extra)
        try:
            _check_finite(obs)
            rng = np.random.default_rng(self.run.rng_seed)
            entry["metrics"] = _metrics.point_metrics(self.series, obs, rng)
        except (FloatingPointError, ValueError) as exc:
            entry["metrics"] = {}
            entry["error"] = f"{type(exc).__name__}: {exc}"
        self.points.append(entry)
        self.last_obs, self.last_metrics = obs, entry["metrics"]

    def from_solver(self, iteration: int, train_s: float) -> None:
        self.point(self.run.solver.anytime_evaluate(), iteration, train_s)


def _ladder(run: PlannedRun, anytime: _Anytime, workdir) -> None:
    """Solve at each coarser rung of a grid solver; each rung is one anytime point, whose
    seconds are that rung's own solve (a grid is not iterative)."""
    solver, req = run.solver, run.request
    for overrides in solver.ladder():
        rung = type(solver)(dict(solver.params.params(), **overrides))
        reason = rung.skip(run.problem)
        if reason:
            anytime.points.append({"params": overrides, "skipped": reason})
            continue
        rung.setup(run.problem, times=run.times, device=run.device, seed=run.rng_seed,
                   budget=Budget(seconds=req.time_limit_s), workdir=None)
        clock = AnytimeClock(None, sync=lambda: _sync(run.device))
        rung.run(clock)
        train_s = clock.stop()
        anytime.point(rung.evaluate(), rung.iterations, train_s, params=overrides)


def run_record(run: PlannedRun, *, workdir: Path | None = None,
               execution: dict[str, Any] | None = None,
               on_phase: Callable[[Phase], None] | None = None) -> tuple[dict[str, Any], dict]:
    """Run, measure and compute metrics in this process; return ``(record, history)``.

    Never raises for a failure of the solver: the run becomes a ``failed`` record with the
    reason.  ``on_phase`` is called with each :class:`~harness.phases.Phase` as it starts (the
    local executor uses it to time-limit the solver's phases only).
    """
    req, problem, solver = run.request, run.problem, run.solver
    record = new_record(run, execution)
    timing = record["timing"]
    reason = solver.skip(problem)
    if reason:
        record.update(status="skipped", reason=reason)
        return record, {}

    def enter(name: Phase) -> Phase:
        if on_phase is not None:
            on_phase(name)
        return name

    phase = Phase.REFERENCE
    anytime = clock = None
    try:
        if req.evaluate:
            phase = enter(Phase.REFERENCE)
            reference = problem.reference()
            # what the reference says on the time grid, computed before any clock runs (a grid
            # reference may be computed here, once, and cached)
            series_of = _metrics.ReferenceSeries(problem, reference, run.times)
            anytime = _Anytime(run, series_of)
        measured = req.anytime and req.evaluate
        torch.manual_seed(run.rng_seed)
        np.random.seed(run.rng_seed)
        if solver.anytime == "ladder" and measured:
            phase = enter(Phase.LADDER)
            _ladder(run, anytime, workdir)

        phase = enter(Phase.SETUP)
        if run.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        solver.setup(problem, times=run.times, device=run.device, seed=run.rng_seed,
                     budget=Budget(seconds=req.time_limit_s), workdir=workdir)
        _sync(run.device)
        timing["setup_s"] = time.perf_counter() - t0
        if solver.resolved:
            record["resolved"] = dict(solver.resolved)

        phase = enter(Phase.RUN)
        checkpoints = solver.anytime == "checkpoints" and measured
        clock = AnytimeClock(anytime.from_solver if checkpoints else None,
                             sync=lambda: _sync(run.device), planned=_planned_training(solver))
        wall0 = time.perf_counter()
        solver.run(clock)
        timing["train_s"] = clock.stop()
        if checkpoints:  # the end of training is always a point
            clock.evaluate(solver.iterations, timing["train_s"])
        timing["run_wall_s"] = time.perf_counter() - wall0
        timing["iterations"] = int(solver.iterations)
        if solver.resumed_from:
            timing["resumed_from"] = int(solver.resumed_from)
        done_here = solver.iterations - solver.resumed_from
        if done_here > 0:
            timing["s_per_iter"] = timing["train_s"] / done_here

        if not req.evaluate:
            return record, _history(solver)
        phase = enter(Phase.EVALUATE)
        t0 = time.perf_counter()
        obs = solver.evaluate()
        _sync(run.device)
        timing["eval_s"] = time.perf_counter() - t0
        _check_finite(obs)

        phase = enter(Phase.METRICS)
        metric_values, series = _metrics.evaluate(problem, reference, obs, seed=run.rng_seed,
                                                  series_of=series_of)
        record["metrics"] = metric_values
        record["reference"] = reference.describe()
        record["diagnostics"] = obs.diagnostics
        for key in ("marginal", "pair"):
            if key in series:
                series[key] = _compact_marginal(series[key])
        record["observables"] = series
        if measured:
            if solver.anytime != "checkpoints":  # the final result is the last point
                anytime.points.append({"train_s": timing["train_s"],
                                       "iteration": int(solver.iterations),
                                       "metrics": dict(metric_values)})
            record["anytime"] = anytime.points
            record["anytime_info"] = _anytime_info(run, anytime, clock, timing)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # a failing solver is a result, not a crash of the harness
        record.update(status="failed", reason=f"{phase.value}: {type(exc).__name__}: {exc}")
        record["error"] = {"phase": phase.value, "type": type(exc).__name__,
                           "message": str(exc), "traceback": traceback.format_exc(limit=20)}
        if anytime is not None and anytime.points:
            record["anytime"] = anytime.points
    finally:
        timing["peak_mem_mb"] = (torch.cuda.max_memory_allocated() / 2**20
                                 if run.device.startswith("cuda") else peak_rss_mb())
        timing["peak_mem_kind"] = "cuda_allocated" if run.device.startswith("cuda") else "process_rss"
    return record, _history(solver)


def _history(solver) -> dict[str, Any]:
    """The per-iteration series kept beside the record, with every iteration's seconds."""
    history = dict(solver.history or {})
    if solver.iteration_times:
        history["iteration_s"] = list(solver.iteration_times)
    return history


def _planned_training(solver) -> Callable[[int, float], float] | None:
    """The run's planned training seconds, as seen at a checkpoint (iteration, seconds so far):
    the solver's budget parameter where set, or the seconds so far scaled to the iterations
    asked for, whichever is smaller; None where the solver declares neither."""
    p = solver.params
    budget = float(getattr(p, solver.budget_param, 0) or 0) if solver.budget_param else 0.0
    total = int(getattr(p, solver.iterations_param, 0) or 0) if solver.iterations_param else 0
    if budget <= 0 and total <= 0:
        return None

    def planned(iteration: int, train_s: float) -> float:
        estimates = [budget] if budget > 0 else []
        done = iteration - solver.resumed_from
        if total > 0 and done > 0:
            estimates.append(train_s * (total - solver.resumed_from) / done)
        return min(estimates) if estimates else train_s

    return planned


def _anytime_info(run: PlannedRun, anytime: _Anytime, clock: AnytimeClock | None,
                  timing: dict[str, Any]) -> dict[str, Any]:
    """How the anytime points arose, what they cost, and the floors of their metrics."""
    solver = run.solver
    info: dict[str, Any] = {"kind": solver.anytime}
    if solver.anytime == "checkpoints":
        info.update(schedule_s=[s for s in SCHEDULE_S if s <= timing["train_s"]],
                    settings=solver.anytime_settings(), eval_s=clock.eval_s,
                    eval_fraction=clock.eval_s / max(timing["run_wall_s"], 1e-12),
                    skipped=clock.skipped, max_eval_fraction=MAX_EVAL_FRACTION,
                    planned_train_s=clock.planned_s)
        if anytime.last_obs is not None and anytime.last_obs.n_samples:
            info["floors"], info["floor_kind"] = floor_metrics(
                anytime.series, anytime.last_obs, anytime.last_metrics, seed=run.rng_seed)
    elif solver.anytime == "ladder":
        info["note"] = ("the solve is not iterative: each point is a solve at a coarser rung of "
                        "the solver's ladder (a grid's resolutions, t-VMC's samples), its "
                        "seconds that solve's own; the last point is the run itself")
    else:
        info["note"] = "the solver cannot checkpoint: one point, the final result"
    return info


def write_record(record: dict[str, Any], history: dict | None, out_dir: Path) -> Path:
    """Write a run's outputs into ``out_dir`` atomically: the per-iteration history beside the
    record first (a failed run's too: it shows how it failed), then the record, which names it.
    Sets ``record["path"]`` (not stored) and returns the record's path."""
    out_dir = Path(out_dir)
    if history:
        side = out_dir / f"{record['run_id']}.history.json"
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(side, records.dumps(records.jsonable(history)) + "\n")
        record["history_file"] = side.name
    record.pop("path", None)
    path = records.write(record, out_dir)
    record["path"] = str(path)
    return path


def execute(run: PlannedRun, out_dir: Path | None = None, *,
            execution: dict[str, Any] | None = None,
            on_phase: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run, measure, compute metrics and (if ``out_dir``) write the record; return it.

    With ``out_dir`` the solver gets ``out_dir/work/<run_id>`` as its work directory.
    """
    workdir = (Path(out_dir) / "work" / run.run_id) if out_dir is not None else None
    record, history = run_record(run, workdir=workdir, execution=execution, on_phase=on_phase)
    if out_dir is not None:
        write_record(record, history, out_dir)
    return record


def _compact_marginal(marginal: dict[str, Any]) -> dict[str, Any]:
    out = dict(marginal)
    for key in ("density", "reference_density"):
        if key in out:
            dens = np.asarray(out[key], dtype=float)
            peak = np.nanmax(np.abs(dens)) if dens.size else 0.0
            out[key] = records.jsonable(np.where(np.abs(dens) < DENSITY_FLOOR * peak, 0.0, dens),
                                        DENSITY_DIGITS)
    return out
