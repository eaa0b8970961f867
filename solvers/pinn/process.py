"""The PINN's training process, seen from the parent.

DeepXDE changes torch's global state: importing its PyTorch backend makes CUDA torch's default
device wherever CUDA exists, and ``dde.config.set_default_float`` sets torch's default dtype.
So DeepXDE never runs in the harness's process.  Training happens in a separate Python process
(``python -c ...`` started with :mod:`subprocess`, not :mod:`multiprocessing`, so that it works
from daemonic processes and never re-imports the caller's ``__main__``) that talks to the parent
over a socket pair with pickled messages.  The parent gets the trained weights back and rebuilds
the network as a plain torch module.

The process is started on a solver's first ``setup`` (the expensive part, importing torch and
DeepXDE, is thus not in the timed ``run``) and is then reused by later PINN runs in the same
parent process: every run sets the dtype, device, seeds and thread count it needs before it
builds anything, so a reused process trains exactly like a fresh one (a test checks that the
weights agree bit for bit).  It exits when the parent exits, when its socket closes, or after a
crash (the next run then starts a new one).
"""

from __future__ import annotations

import atexit
import json
import os
import pickle
import socket
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

__all__ = ["WorkerError", "Worker", "get_worker", "shutdown_worker"]

#: Seconds allowed for the training process to start (imports included).
START_TIMEOUT_S = 300.0
#: The child's program: the parent's import path first of all (``python -c`` would otherwise put
#: the working directory, possibly another checkout, in front), then the worker, which checks
#: that it is the parent's own file.
_CODE = ("import json, os, sys; sys.path[:] = json.loads(os.environ['DSM_PINN_SYS_PATH']); "
         "from solvers.pinn.worker import serve_fd; serve_fd(int(sys.argv[1]), sys.argv[2])")


class WorkerError(RuntimeError):
    """The training process failed: it raised (the message carries its traceback) or died."""


def _python_path() -> list[str]:
    """The parent's import path, so that the child imports the very same code."""
    entries = [os.path.abspath(p) if p else os.getcwd() for p in sys.path]
    return list(dict.fromkeys(entries))


class Worker:
    """One training process and the connection to it."""

    def __init__(self):
        if os.name != "posix":  # pragma: no cover - the suite runs on Linux and macOS
            raise WorkerError("the pinn solver's training process needs a POSIX system")
        parent_sock, child_sock = socket.socketpair()
        self._stderr = tempfile.TemporaryFile()
        path = _python_path()
        env = dict(os.environ, DDE_BACKEND="pytorch", DSM_PINN_SYS_PATH=json.dumps(path),
                   PYTHONPATH=os.pathsep.join(path))
        worker_file = str(Path(__file__).with_name("worker.py").resolve())
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _CODE, str(child_sock.fileno()), worker_file],
                pass_fds=(child_sock.fileno(),), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=self._stderr, env=env)
        finally:
            child_sock.close()
        self.conn = Connection(parent_sock.detach())
        self.token: Any = None  # the run whose model the process holds
        self.info = self._receive(START_TIMEOUT_S, "start")

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None and not self.conn.closed

    def _stderr_tail(self, n: int = 4000) -> str:
        try:
            self._stderr.seek(0)
            return self._stderr.read().decode(errors="replace")[-n:]
        except (OSError, ValueError):
            return ""

    def _receive(self, timeout: float | None, what: str) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                ready = self.conn.poll(0.2)
            except (OSError, EOFError):
                ready = False
            if ready:
                try:
                    kind, payload = self.conn.recv()
                except (EOFError, OSError):
                    kind, payload = "died", None
                if kind == "ok":
                    return payload
                if kind == "error":
                    self.token = None
                    raise WorkerError(f"{what} failed in the training process: "
                                      f"{payload['type']}: {payload['message']}\n"
                                      f"{payload['traceback']}")
            if self.proc.poll() is not None or (ready and kind == "died"):
                tail = self._stderr_tail()
                self.close()
                raise WorkerError(f"the training process died during {what} (exit code "
                                  f"{self.proc.returncode}); its stderr ends with:\n{tail}")
            if deadline is not None and time.monotonic() > deadline:
                self.close(kill=True)
                raise TimeoutError(f"the training process did not finish {what} within "
                                   f"{timeout:.0f} s and was stopped")

    def request(self, kind: str, payload: Any, timeout: float | None = None) -> Any:
        """Send one request and wait for its answer (``timeout`` seconds, or for ever)."""
        try:
            self.conn.send((kind, payload))
        except (OSError, pickle.PicklingError) as exc:
            if isinstance(exc, pickle.PicklingError):
                raise
            self.close()
            raise WorkerError(f"the training process is gone: {exc}") from None
        return self._receive(timeout, kind)

    def close(self, kill: bool = False) -> None:
        if not self.conn.closed:
            if not kill:
                try:
                    self.conn.send(("exit", None))
                except OSError:
                    pass
            self.conn.close()
        if kill:
            self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()


_WORKER: Worker | None = None


def get_worker() -> Worker:
    """The running training process, started if there is none (or the last one died)."""
    global _WORKER
    if _WORKER is None or not _WORKER.alive:
        if _WORKER is not None:
            _WORKER.close(kill=True)
        _WORKER = None
        _WORKER = Worker()
    return _WORKER


def shutdown_worker() -> None:
    """Stop the training process, if one runs (also done at exit)."""
    global _WORKER
    if _WORKER is not None:
        worker, _WORKER = _WORKER, None
        worker.close()


atexit.register(shutdown_worker)
