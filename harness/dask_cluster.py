"""The Dask executor: each run a task on a Dask cluster.

``scheduler`` is an address such as ``tcp://10.0.0.5:8786``, or ``local`` / ``local:N`` for an
in-process ``LocalCluster`` of N single-threaded worker processes.  The task runs the same child
process on the worker (:mod:`harness.protocol`), with the same isolation, thread caps and time
limit, and returns the record, which the client writes: workers need the code and the Python
environment, not the client's filesystem.  Threads per run: the cores a worker may use divided
by the task slots of all workers sharing those cores (:func:`worker_threads`), unless ``threads``
fixes them.  Interrupting the command cancels the pending tasks; a running task notices within
about a second and kills its run.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import asdict
from pathlib import Path
from typing import Any

from core import PLUGINS_ENV

from .pool import Executor
from .protocol import KILL_GRACE_S, default_threads, outcome_record, run_isolated
from .runner import write_record

__all__ = ["DaskExecutor", "parse_scheduler", "worker_threads", "dask_task"]

_ADDRESS = re.compile(r"^(?:(?P<scheme>[a-z][a-z0-9+]*)://)?(?P<host>\[[0-9a-fA-F:]+\]|[^\s:/\[\]]+)"
                      r":(?P<port>\d{1,5})$")
_SCHEMES = {"tcp", "tls", "ws", "wss", "ucx", "inproc"}


def parse_scheduler(text: str) -> tuple[str, int | str]:
    """``("local", n_workers)`` for ``local`` / ``local:N``, else ``("address", address)``.

    Raises ValueError with a one-line message for anything else.
    """
    text = (text or "").strip()
    if text == "local" or text.startswith("local:"):
        _, _, n = text.partition(":")
        if not n:
            return "local", 2
        if not n.isdigit() or int(n) < 1:
            raise ValueError(f"--scheduler local:N needs a positive number of workers, got {text!r}")
        return "local", int(n)
    m = _ADDRESS.match(text)
    if not m or not 0 < int(m["port"]) < 65536 or (m["scheme"] and m["scheme"] not in _SCHEMES):
        raise ValueError(f"--scheduler expects an address like tcp://HOST:PORT (or 'local', "
                         f"'local:N'), got {text!r}")
    return "address", text if m["scheme"] else f"tcp://{text}"


def _cpu_set() -> list[int]:
    """The CPUs this process may run on (run on every worker to learn who shares cores)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return list(range(os.cpu_count() or 1))


def worker_threads(workers: dict[str, dict[str, Any]], cpu_sets: dict[str, list[int]]
                   ) -> dict[str, int]:
    """Threads per run for each Dask worker: the cores it may use, divided by the task slots
    (threads) of every worker on the same host with the same CPU set (workers sharing cores,
    as in a LocalCluster, share them; SLURM jobs confined to their own CPUs do not)."""
    groups: dict[tuple, int] = {}
    key = {}
    for addr, info in workers.items():
        key[addr] = (info.get("host"), tuple(cpu_sets.get(addr, ())))
        groups[key[addr]] = groups.get(key[addr], 0) + int(info.get("nthreads", 1))
    return {addr: default_threads(groups[k], cores=len(k[1]) or None) for addr, k in key.items()}


def dask_task(request: dict[str, Any], run_id: str, threads: int | None,
              per_worker: dict[str, int], execution: dict[str, Any], kill_grace_s: float,
              plugins: str) -> dict[str, Any]:
    """The task a Dask worker runs: one run in a child process; returns the outcome.

    ``threads`` fixes the threads per run; otherwise ``per_worker`` gives them (a worker that
    joined after the matrix was submitted divides its own cores by its own slots)."""
    from distributed import get_worker
    from distributed.worker import thread_state

    worker = get_worker()
    key = getattr(thread_state, "key", None)
    if threads is None:
        threads = per_worker.get(worker.address) or default_threads(worker.state.nthreads)
    execution = dict(execution, worker=worker.address, host=socket.gethostname())

    def cancelled() -> bool:  # the client cancelled the task (interrupted) or went away
        task = worker.state.tasks.get(key) if key is not None else None
        return key is not None and (task is None or task.state in ("cancelled", "released"))

    return run_isolated(request, run_id, threads=threads, execution=execution,
                        kill_grace_s=kill_grace_s, plugins=plugins, stop=cancelled)


def _absolute_plugins(text: str) -> str:
    """Plug-in entries with file paths made absolute (a worker's working directory differs)."""
    from core.registry import is_path, plugin_entries

    return ",".join(str(Path(e).expanduser().resolve()) if is_path(e) else e
                    for e in plugin_entries(text))


class DaskExecutor(Executor):
    """Each run a task on a Dask cluster; the client writes the records as results arrive."""

    name = "dask"

    def __init__(self, scheduler: str, *, threads: int | None = None,
                 kill_grace_s: float = KILL_GRACE_S, connect_timeout_s: float = 20.0):
        super().__init__(threads=threads, kill_grace_s=kill_grace_s)
        self.kind, self.target = parse_scheduler(scheduler)
        self.scheduler = scheduler
        self.connect_timeout_s = connect_timeout_s
        self.client = None
        self.cluster = None

    def describe(self) -> str:
        if self.kind == "local":
            return f"dask, in-process LocalCluster of {self.target} worker(s)"
        return f"dask, scheduler {self.target}"

    def __enter__(self) -> "DaskExecutor":
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def connect(self) -> None:
        """Start the LocalCluster or connect to the scheduler; a failure is a ConnectionError."""
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ImportError("the dask executor needs dask[distributed]: "
                              "pip install 'dsm-bench[dask]'") from None
        try:
            if self.kind == "local":
                self.cluster = LocalCluster(n_workers=self.target, threads_per_worker=1,
                                            processes=True, dashboard_address=None)
                self.client = Client(self.cluster)
            else:
                self.client = Client(self.target, timeout=f"{self.connect_timeout_s}s")
        except (OSError, TimeoutError) as exc:
            self.close()
            raise ConnectionError(f"cannot reach the Dask scheduler at {self.target}: "
                                  f"{type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None

    def _per_worker_threads(self) -> dict[str, int]:
        workers = self.client.scheduler_info(n_workers=-1)["workers"]
        return worker_threads(workers, self.client.run(_cpu_set)) if workers else {}

    def _dispatch(self, runs, out_dir, on_record):
        from distributed import as_completed

        if self.client is None:
            self.connect()
        execution = dict(self._execution(self.threads), scheduler=str(self.client.scheduler.address))
        plugins = _absolute_plugins(os.environ.get(PLUGINS_ENV, ""))
        per_worker = self._per_worker_threads() if self.threads is None else {}
        futures = {}
        for run in runs:
            fut = self.client.submit(dask_task, asdict(run.request), run.run_id, self.threads,
                                     per_worker, execution, self.kill_grace_s, plugins,
                                     pure=False,
                                     key=f"dsm-bench-{run.run_id}-{os.urandom(4).hex()}")
            futures[fut] = run
        try:
            for fut in as_completed(list(futures)):
                run = futures[fut]
                try:
                    outcome = fut.result()
                except Exception as exc:  # the worker was lost, or the task could not start
                    reason = f"dask: {type(exc).__name__}: {exc}"
                    outcome = {"failure": {"reason": reason, "execution": execution,
                                           "error": {"type": type(exc).__name__}}}
                record = outcome_record(run, outcome)
                write_record(record, outcome.get("history"), out_dir)
                on_record(record)
        finally:
            pending = [f for f in futures if not f.done()]
            if pending:
                self.client.cancel(pending)
