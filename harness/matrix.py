"""Running a matrix of runs: validate every run first, skip what is done, run the rest on an
executor with progress, and stop cleanly when interrupted.

The command line (:mod:`harness.cli`) only parses options into requests and an executor; this
module carries them out.  Exit codes: 0 when every run is ``ok`` or ``skipped``, 1 when one
failed, 128 + the signal number when interrupted (130 for Ctrl-C, 143 for SIGTERM).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from core import ParameterError
from core.io import atomic_write_text

from . import records
from .env import load_average
from .runner import PlannedRun, RunRequest, plan

__all__ = ["plan_all", "pending", "run_all", "format_metrics", "SHOWN_METRICS", "JOB_LOG",
           "read_job_log"]

#: The file in a results folder that lists the matrix jobs that wrote into it, one JSON object a
#: line (not ``*.json``: the folder's ``*.json`` files are records).
JOB_LOG = "jobs.jsonl"

#: Metrics shown on a run's progress line.
SHOWN_METRICS = ("mean_rel_l2", "mean_abs_rms", "var_rel_l2", "com_var_err", "energy_drift")


def plan_all(requests: list[RunRequest]) -> list[PlannedRun]:
    """Every request validated and planned before anything runs; a run twice is an error."""
    planned = [plan(r) for r in requests]
    seen: set[str] = set()
    for run in planned:
        if run.run_id in seen:
            raise ParameterError(f"the matrix holds the same run twice: {run.run_id}")
        seen.add(run.run_id)
    return planned


def pending(planned: list[PlannedRun], out: Path, resume: bool) -> tuple[list[PlannedRun], int]:
    """The runs still to do and how many are done: with ``resume``, runs whose record exists
    with status ``ok`` are done (they are announced); failed ones run again."""
    todo, done = [], 0
    for run in planned:
        existing = out / f"{run.run_id}.json"
        if resume and existing.is_file():
            try:
                if records.load(existing).get("status") == "ok":
                    done += 1
                    print(f"[{done}/{len(planned)}] [done] {run.run_id}")
                    continue
            except (OSError, ValueError):
                pass
        todo.append(run)
    return todo, done


def format_metrics(rec: dict[str, Any]) -> str:
    """The headline metrics and training seconds of a record, on one line."""
    shown = [f"{k}={v:.3g}" for k, v in rec.get("metrics", {}).items()
             if k in SHOWN_METRICS and v is not None]
    t = rec.get("timing", {}).get("train_s")
    if t is not None:
        shown.append(f"train {t:.2f} s")
    return " ".join(shown)


class _Interrupted(Exception):
    def __init__(self, signum: int):
        self.signum = signum


def _raise_interrupt(signum, frame):
    raise _Interrupted(signum)


def run_all(todo: list[PlannedRun], out: Path, executor, total: int, done: int = 0) -> int:
    """Carry out ``todo`` on ``executor`` (already connected), printing a line per record and a
    progress bar on a terminal; returns the exit code."""
    from tqdm import tqdm

    counter = {"n": done, "failed": 0}
    show_bar = sys.stderr.isatty()
    bar = tqdm(total=len(todo), unit="run", file=sys.stderr, disable=not show_bar,
               dynamic_ncols=True, leave=False)

    def on_record(rec: dict[str, Any]) -> None:
        counter["n"] += 1
        status = rec["status"]
        counter["failed"] += status == "failed"
        detail = rec["reason"] if status != "ok" else format_metrics(rec)
        line = (f"[{counter['n']}/{total}] [{status}] {rec['run_id']}: {detail}\n"
                f"  -> {rec.get('path')}")
        if show_bar:
            bar.write(line, file=sys.stdout)
        else:
            print(line, flush=True)
        bar.update(1)
        bar.set_postfix(failed=counter["failed"], refresh=False)

    print(f"running {len(todo)} of {total} runs ({executor.describe()}) into {out}", flush=True)
    job = {"started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
           "runs": len(todo), "planned": total, "executor": executor.describe(),
           "cpu_count": os.cpu_count(), "load_start": load_average()}
    wall0 = time.perf_counter()
    handlers = {}
    if hasattr(signal, "SIGTERM"):
        handlers[signal.SIGTERM] = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        executor.run(todo, out, on_record)
        if todo:
            _log_job(out, dict(job, wall_s=time.perf_counter() - wall0, load_end=load_average(),
                               failed=counter["failed"]))
    except (KeyboardInterrupt, _Interrupted) as exc:
        bar.close()
        signum = getattr(exc, "signum", signal.SIGINT)
        print(f"harness: interrupted ({signal.Signals(signum).name}): {counter['n']} of {total} "
              f"runs have records in {out}; runs in progress were stopped and left no record "
              f"(run again with --resume to finish)", file=sys.stderr)
        return 128 + int(signum)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        if hasattr(executor, "close"):
            executor.close()
        bar.close()
    return 1 if counter["failed"] else 0



def read_job_log(out: Path) -> list[dict[str, Any]]:
    """The jobs recorded in ``out``'s :data:`JOB_LOG` (oldest first; empty when there is none)."""
    path = Path(out) / JOB_LOG
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _log_job(out: Path, job: dict[str, Any]) -> None:
    """Append a finished job (its wall time, runs, executor and the machine's load before and
    after) to ``out``'s job log, so that a results folder says how long it took to make."""
    jobs = read_job_log(out) + [job]
    atomic_write_text(Path(out) / JOB_LOG, "".join(json.dumps(j) + "\n" for j in jobs))
