"""Executors: how a matrix of planned runs is carried out.

``local`` (the default)
    A pool of ``workers`` concurrent runs on this machine, each in a fresh interpreter
    (``python -m harness.child``, started with a new process group, never forked), so that a crash,
    a leak or a library's global state (torch's thread pool, a CUDA context) stays inside one run.
    Each run may use ``threads`` threads (default: the machine's cores divided by ``workers``):
    ``OMP_NUM_THREADS`` and friends are set in the child's environment before anything loads,
    and the child calls ``torch.set_num_threads``, so timings measure what a run gets.
``dask``
    Each run is a task on a Dask cluster (``scheduler`` is an address such as
    ``tcp://10.0.0.5:8786``, or ``local`` / ``local:N`` for an in-process ``LocalCluster`` of N
    single-threaded worker processes).  The task runs the same child process on the worker, with
    the same isolation, thread caps and time limit, and returns the record, which the client
    writes: workers need the code and the Python environment, not the client's filesystem.
    Threads per run: the cores a worker may use divided by the task slots of all workers sharing
    those cores (:func:`worker_threads`), unless ``threads`` fixes them.
``inline``
    One run after another in this process (for debugging with a debugger); no isolation, and
    the time limit is only the solver's own budget.

Time limits.  A run's ``time_limit_s`` is passed to the solver as its budget (a solver may stop
itself and fail cleanly).  The executor enforces it from outside: when the solver's phases
(setup, run, evaluate) have taken ``time_limit_s + kill_grace_s``, the run's process group is
killed and the run becomes a ``failed`` record whose reason starts with ``timeout after``.
Interpreter start-up and the harness's own metrics (which may compute a cached grid reference
once) are not counted.

Failures of the process itself (a segfault, ``os._exit``, the out-of-memory killer) become
``failed`` records with the exit code or signal and the tail of the run's log.  Interrupting the
command (Ctrl-C, SIGTERM) kills the running children (on Dask, a cancelled task kills its run)
and writes nothing for them; records are written atomically (temporary file + rename), so no
record is ever half-written, and ``--resume`` finishes what is missing.  If the parent dies
without cleaning up (SIGKILL), each child sees its stdin close and kills itself.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import signal
import site
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from core import PLUGINS_ENV

from .env import PROJECT_ROOT
from .runner import PlannedRun, execute, failed_record, write_record

__all__ = ["KILL_GRACE_S", "available_cores", "default_threads", "child_env", "ChildRun",
           "run_isolated", "outcome_record", "LocalExecutor", "InlineExecutor", "DaskExecutor",
           "parse_scheduler", "worker_threads", "EXECUTORS"]

#: Seconds a run may exceed its time limit (to stop itself) before it is killed.
KILL_GRACE_S = 60.0
#: Lines of a crashed run's log kept in its record.
LOG_TAIL_LINES = 30
#: Seconds between checks of running children ...
POLL_S = 0.05
#: ... and between checks whether a Dask task was cancelled.
STOP_CHECK_S = 1.0
#: Environment variables that cap the threads of OpenMP, BLAS libraries and numexpr.
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
              "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS")
#: Phases of a run that its time limit covers (reported by the child as they start).
LIMITED_PHASES = ("setup", "run", "evaluate")

OnRecord = Callable[[dict[str, Any]], None]


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS
        return max(1, os.cpu_count() or 1)


def default_threads(concurrent: int, cores: int | None = None) -> int:
    """Threads per run when ``concurrent`` runs share ``cores`` (default: this machine's)."""
    return max(1, (cores or available_cores()) // max(1, concurrent))


def _is_site_dir(path: str) -> bool:
    dirs = list(getattr(site, "getsitepackages", lambda: [])())
    try:
        dirs.append(site.getusersitepackages())
    except AttributeError:  # pragma: no cover
        pass
    return any(os.path.realpath(path) == os.path.realpath(d) for d in dirs)


def child_env(threads: int, plugins: str | None = None) -> dict[str, str]:
    """The environment of a run's process: this one's, with thread caps, the code's location
    first on ``PYTHONPATH`` (so the child runs this very code) and the plug-ins to load."""
    env = dict(os.environ)
    for key in THREAD_ENV:
        env[key] = str(threads)
    root = str(PROJECT_ROOT)
    if not _is_site_dir(root):
        rest = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != root]
        env["PYTHONPATH"] = os.pathsep.join([root] + rest)
    if plugins is not None:
        if plugins:
            env[PLUGINS_ENV] = plugins
        else:
            env.pop(PLUGINS_ENV, None)
    return env


def remove_temporaries(out_dir: Path | None, run_id: str) -> None:
    """Delete temporary files a killed writer of ``run_id`` left in ``out_dir``.

    Only this run's own temporaries are touched (``.<run_id>.*.tmp``, the names
    :func:`harness.records.atomic_write_text` uses), so concurrent writers of other runs are safe.
    """
    if out_dir is None:
        return
    for path in glob.glob(os.path.join(glob.escape(str(out_dir)), f".{glob.escape(run_id)}.*.tmp")):
        try:
            os.unlink(path)
        except OSError:
            pass


_ERROR_LINE = re.compile(r"(Error|Exception|Fatal|Killed|Abort)")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class ChildRun:
    """One run in a child process: start it, follow its phases, enforce its deadline, collect.

    ``request`` is the run's :class:`~harness.runner.RunRequest` as a dict (plain data, so that
    it travels to a Dask worker without the classes it names), ``run_id`` the id the caller
    planned.  ``out_dir`` given: the child writes the record itself (a local, shared
    filesystem); otherwise a successful outcome carries the record for the caller to write.

    An outcome is ``{"record", "history", "written"}`` when the child produced a record, or
    ``{"failure": {"reason", "error"}}`` when it did not (killed at its deadline, crashed); the
    caller, which planned the run, turns a failure into a record (:func:`outcome_record`).
    """

    def __init__(self, request: dict[str, Any], run_id: str, *, threads: int,
                 execution: dict[str, Any], out_dir: Path | None,
                 kill_grace_s: float = KILL_GRACE_S, plugins: str | None = None):
        self.request = dict(request)
        self.run_id = run_id
        self.threads = int(threads)
        self.execution = dict(execution, threads=self.threads)
        self.out_dir = Path(out_dir).resolve() if out_dir is not None else None
        self.time_limit_s = self.request.get("time_limit_s")
        self.kill_grace_s = float(kill_grace_s)
        self.plugins = plugins
        self.phase = "start"
        self.proc: subprocess.Popen | None = None
        self._limited_since: float | None = None
        self._buffer = b""
        self._tmp: Path | None = None
        self._log = None

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> "ChildRun":
        remove_temporaries(self.out_dir, self.run_id)
        self._tmp = Path(tempfile.mkdtemp(prefix="dsm-bench-run-"))
        self._log = open(self._tmp / "log.txt", "wb")
        payload = {
            "request": self.request,
            "run_id": self.run_id,
            "out_dir": str(self.out_dir) if self.out_dir is not None else None,
            "result_path": str(self._tmp / "result.json"),
            "threads": self.threads,
            "execution": self.execution,
        }
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "harness.child"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._log, env=child_env(self.threads, self.plugins),
            start_new_session=True, close_fds=True)
        os.set_blocking(self.proc.stdout.fileno(), False)
        try:
            self.proc.stdin.write(json.dumps(payload).encode() + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError:  # the child died at once; poll() reports it
            pass
        return self

    @property
    def deadline(self) -> float | None:
        """When the run is killed (monotonic clock), or None while it is not limited."""
        if self.time_limit_s is None or self._limited_since is None:
            return None
        return self._limited_since + self.time_limit_s + self.kill_grace_s

    def poll(self) -> dict[str, Any] | None:
        """The outcome if the run is over (finished, crashed or killed at its deadline), else None."""
        self._read_phases()
        rc = self.proc.poll()
        if rc is not None:
            self._read_phases()
            return self._collect(rc)
        deadline = self.deadline
        if deadline is not None and time.monotonic() > deadline:
            elapsed = time.monotonic() - self._limited_since
            phase = self.phase
            self.kill()
            reason = (f"timeout after {elapsed:.0f} s: killed in phase '{phase}' (time limit "
                      f"{self.time_limit_s:g} s + {self.kill_grace_s:g} s grace)")
            return self._failure(reason, {"type": "Timeout", "phase": phase,
                                          "elapsed_s": elapsed})
        return None

    def wait(self, stop: Callable[[], bool] | None = None) -> dict[str, Any]:
        """Block until the run is over and return its outcome.  ``stop`` (checked about once a
        second) ends it early: the run is killed and its outcome is a failure."""
        checked = time.monotonic()
        while True:
            outcome = self.poll()
            if outcome is not None:
                return outcome
            if stop is not None and time.monotonic() - checked > STOP_CHECK_S:
                checked = time.monotonic()
                if stop():
                    phase = self.phase
                    self.kill()
                    return self._failure(f"cancelled in phase '{phase}'",
                                         {"type": "Cancelled", "phase": phase})
            time.sleep(POLL_S)

    def kill(self) -> None:
        """Kill the run's whole process group and reap it; writes nothing."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover - an unkillable process
            pass
        self._close()
        remove_temporaries(self.out_dir, self.run_id)

    # --- internals --------------------------------------------------------------------------
    def _read_phases(self) -> None:
        try:
            while True:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                self._buffer += chunk
        except (BlockingIOError, OSError, ValueError):
            pass
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            try:
                phase = json.loads(line)["phase"]
            except (ValueError, KeyError, TypeError):
                continue
            before = self.phase in LIMITED_PHASES
            self.phase = phase
            if phase in LIMITED_PHASES and not before:  # the solver's phases begin
                self._limited_since = time.monotonic()
            elif phase not in LIMITED_PHASES:  # planning, or the harness's own work after
                self._limited_since = None

    def _log_tail(self) -> list[str]:
        try:
            text = (self._tmp / "log.txt").read_text(errors="replace")
        except OSError:
            return []
        return text.splitlines()[-LOG_TAIL_LINES:]

    def _collect(self, rc: int) -> dict[str, Any]:
        result_path = self._tmp / "result.json"
        try:
            if result_path.is_file():
                outcome = json.loads(result_path.read_text())
                outcome["record"].setdefault("execution", {})["exit_code"] = rc
                return outcome
        except (OSError, ValueError):
            pass
        finally:
            self._close()
        tail = self._log_tail()
        if rc < 0:
            what = f"killed by {_signal_name(-rc)}"
            if -rc == signal.SIGKILL:
                what += " (out of memory, or killed from outside)"
        else:
            what = f"exited with code {rc}"
        lines = [line.strip() for line in tail if line.strip()]
        # the line that says what went wrong (an exception, a fatal error), else the last one
        last = next((line for line in reversed(lines) if _ERROR_LINE.search(line)),
                    lines[-1] if lines else "")
        reason = f"worker process {what} in phase '{self.phase}' without a result"
        if last:
            reason += f"; last output: {last[:300]}"
        remove_temporaries(self.out_dir, self.run_id)
        return self._failure(reason, {"type": "WorkerCrash", "phase": self.phase,
                                      "exit_code": rc, "log_tail": tail})

    def _failure(self, reason: str, error: dict[str, Any]) -> dict[str, Any]:
        if self._tmp is not None:
            error.setdefault("log_tail", self._log_tail())
        self.cleanup()
        return {"failure": {"reason": reason, "error": error, "execution": self.execution}}

    def _close(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except (OSError, ValueError, BrokenPipeError):
                pass
        if self._log is not None:
            self._log.close()
            self._log = None

    def cleanup(self) -> None:
        """Remove the run's private temporary directory (result file and log)."""
        self._close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


def outcome_record(run: PlannedRun, outcome: dict[str, Any]) -> dict[str, Any]:
    """The record of an outcome: the child's own, or a ``failed`` one built for ``run``."""
    if "failure" in outcome:
        fail = outcome["failure"]
        return failed_record(run, fail["reason"], error=fail["error"],
                             execution=fail.get("execution"))
    return outcome["record"]


def run_isolated(request: dict[str, Any], run_id: str, *, threads: int,
                 execution: dict[str, Any], kill_grace_s: float = KILL_GRACE_S,
                 plugins: str | None = None,
                 stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Run one request in a child process and wait for it; return the outcome (nothing is
    written).  The Dask executor's task calls this on a worker; ``stop`` tells it the task was
    cancelled (the run is then killed)."""
    child = ChildRun(request, run_id, threads=threads, execution=execution, out_dir=None,
                     kill_grace_s=kill_grace_s, plugins=plugins).start()
    try:
        outcome = child.wait(stop)
    except BaseException:
        child.kill()
        child.cleanup()
        raise
    child.cleanup()
    return outcome


def _declines(run: PlannedRun) -> bool:
    try:
        return bool(run.solver.skip(run.problem))
    except Exception:  # let the run's own process report it
        return False


class _Executor:
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


class InlineExecutor(_Executor):
    """Runs one after another in this process: no isolation, no enforced time limit."""

    name = "inline"

    def _dispatch(self, runs, out_dir, on_record):
        if self.threads is not None:
            import torch

            torch.set_num_threads(self.threads)
        for run in runs:
            on_record(execute(run, out_dir, execution=self._execution(self.threads)))


class LocalExecutor(_Executor):
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


# --- Dask -------------------------------------------------------------------------------------
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


class DaskExecutor(_Executor):
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


EXECUTORS = ("local", "dask", "inline")
