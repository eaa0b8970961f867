"""Executors on this machine: a pool of run processes (``local``), or this process (``inline``).

``local`` (the default)
    Up to ``workers`` concurrent runs, each in a process of its own (:mod:`harness.protocol`),
    with ``threads`` threads each (default: the machine's cores divided by ``workers``).
``inline``
    One run after another in this process (for debugging with a debugger); no isolation, and
    the time limit is only the solver's own budget.

Interrupting the command (Ctrl-C, SIGTERM) kills the running children and writes nothing for
them; ``--resume`` finishes what is missing.  Runs a solver declines are recorded by the executor
itself, without a process.
"""

from __future__ import annotations

import socket
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from .protocol import KILL_GRACE_S, POLL_S, ChildRun, default_threads, outcome_record
from .runner import PlannedRun, execute, write_record

__all__ = ["Executor", "InlineExecutor", "LocalExecutor", "OnRecord"]

OnRecord = Callable[[dict[str, Any]], None]


def _declines(run: PlannedRun) -> bool:
    try:
        return bool(run.solver.skip(run.problem))
    except Exception:  # let the run's own process report it
        return False


class Executor:
    """Common ground: declined runs are recorded here (cheap, no process); the rest go to
    :meth:`_dispatch`."""

    name = ""

    def __init__(self, *, threads: int | None = None, kill_grace_s: float = KILL_GRACE_S):
        self.threads = threads
        self.kill_grace_s = kill_grace_s

    def describe(self) -> str:
        return self.name

    def run(self, runs: list[PlannedRun], out_dir: Path, on_record: OnRecord) -> None:
        """Carry out ``runs``, writing each record into ``out_dir`` and passing it to
        ``on_record`` as it completes (in completion order)."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        todo = []
        for run in runs:
            if _declines(run):
                on_record(execute(run, out_dir, execution=self._execution(None)))
            else:
                todo.append(run)
        if todo:
            self._dispatch(todo, out_dir, on_record)

    def _execution(self, threads: int | None) -> dict[str, Any]:
        out = {"executor": self.name, "host": socket.gethostname()}
        if threads is not None:
            out["threads"] = threads
        return out

    def _dispatch(self, runs, out_dir, on_record):  # pragma: no cover - abstract
        raise NotImplementedError


class InlineExecutor(Executor):
    """Runs one after another in this process: no isolation, no enforced time limit."""

    name = "inline"

    def _dispatch(self, runs, out_dir, on_record):
        if self.threads is not None:
            import torch

            torch.set_num_threads(self.threads)
        for run in runs:
            on_record(execute(run, out_dir, execution=self._execution(self.threads)))


class LocalExecutor(Executor):
    """Up to ``workers`` runs at once on this machine, each in its own process."""

    name = "local"

    def __init__(self, workers: int = 1, *, threads: int | None = None,
                 kill_grace_s: float = KILL_GRACE_S):
        super().__init__(threads=threads, kill_grace_s=kill_grace_s)
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        self.workers = workers
        self.run_threads = threads or default_threads(workers)

    def describe(self) -> str:
        return f"local, {self.workers} worker(s) x {self.run_threads} thread(s)"

    def _dispatch(self, runs, out_dir, on_record):
        pending = list(reversed(runs))
        running: list[ChildRun] = []
        execution = dict(self._execution(self.run_threads), workers=self.workers)
        try:
            while pending or running:
                while pending and len(running) < self.workers:
                    run = pending.pop()
                    child = ChildRun(asdict(run.request), run.run_id, threads=self.run_threads,
                                     execution=execution, out_dir=out_dir,
                                     kill_grace_s=self.kill_grace_s)
                    child.planned = run
                    running.append(child.start())
                finished = False
                for child in list(running):
                    outcome = child.poll()
                    if outcome is None:
                        continue
                    finished = True
                    running.remove(child)
                    child.cleanup()
                    record = outcome_record(child.planned, outcome)
                    if outcome.get("written"):
                        record["path"] = str(out_dir / f"{record['run_id']}.json")
                    else:  # the child is gone: the record is written here
                        write_record(record, outcome.get("history"), out_dir)
                    on_record(record)
                if not finished:
                    time.sleep(POLL_S)
        finally:  # interrupted (or a callback failed): stop every child, write nothing for them
            for child in running:
                child.kill()
                child.cleanup()
