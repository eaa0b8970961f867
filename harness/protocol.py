"""One run in a process of its own, seen from the executor that started it.

Every executor (the local pool, a Dask worker) runs a run as ``python -m harness.child`` in a
fresh interpreter with a new process group (never forked), so that a crash, a leak or a library's
global state (torch's thread pool, a CUDA context) stays inside one run.  :class:`ChildRun` starts
it, follows the phases it reports (:class:`harness.phases.Phase`), enforces its time limit and
collects its outcome; the protocol itself is described in :mod:`harness.child`.

Threads.  A run may use ``threads`` threads: ``OMP_NUM_THREADS`` and friends are set in the
child's environment before anything loads, and the child calls ``torch.set_num_threads``, so
timings measure what a run gets.

Time limits.  A run's ``time_limit_s`` is passed to the solver as its budget (a solver may stop
itself and fail cleanly).  It is also enforced from outside: when the solver's phases
(:data:`harness.phases.LIMITED`) have taken ``time_limit_s + kill_grace_s``, the run's process
group is killed and the run becomes a ``failed`` record whose reason starts with ``timeout
after``.  Interpreter start-up and the harness's own metrics (which may compute a cached grid
reference once) are not counted.

Failures of the process itself (a segfault, ``os._exit``, the out-of-memory killer) become
``failed`` records with the exit code or signal and the tail of the run's log.  Records are
written atomically, so a killed run never leaves half a record.  If the parent dies without
cleaning up (SIGKILL), each child sees its stdin close and kills itself.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from core import PLUGINS_ENV
from core.io import temporary_pattern

from .env import PROJECT_ROOT
from .phases import LIMITED, Phase
from .runner import PlannedRun, failed_record

__all__ = ["KILL_GRACE_S", "THREAD_ENV", "available_cores", "default_threads", "child_env",
           "ChildRun", "run_isolated", "outcome_record", "remove_temporaries"]

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
    the names :func:`core.io.atomic_write` uses), so concurrent writers of other runs are safe.
    """
    if out_dir is None:
        return
    pattern = temporary_pattern(glob.escape(run_id))
    for path in glob.glob(os.path.join(glob.escape(str(out_dir)), pattern)):
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
        self.phase = Phase.START
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
            reason = (f"timeout after {elapsed:.0f} s: killed in phase '{phase.value}' (time limit "
                      f"{self.time_limit_s:g} s + {self.kill_grace_s:g} s grace)")
            return self._failure(reason, {"type": "Timeout", "phase": phase.value,
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
                    return self._failure(f"cancelled in phase '{phase.value}'",
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
                phase = Phase(json.loads(line)["phase"])
            except (ValueError, KeyError, TypeError):
                continue
            before = self.phase in LIMITED
            self.phase = phase
            if phase in LIMITED and not before:  # the solver's phases begin
                self._limited_since = time.monotonic()
            elif phase not in LIMITED:  # planning, or the harness's own work after
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
        reason = f"worker process {what} in phase '{self.phase.value}' without a result"
        if last:
            reason += f"; last output: {last[:300]}"
        remove_temporaries(self.out_dir, self.run_id)
        return self._failure(reason, {"type": "WorkerCrash", "phase": self.phase.value,
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


