"""A solver's heavy library in a process of its own: the parent's side and the child's loop.

Some libraries change the global state of the process that imports them: DeepXDE makes CUDA
torch's default device and sets torch's default dtype; JAX (for NetKet) claims devices, spawns
threads and keeps compiled code.  Such a library never runs in the harness's process.  The solver
talks to a child Python process instead (started with :mod:`subprocess`, not
:mod:`multiprocessing`, so that it works from daemonic processes and never re-imports the
caller's ``__main__``) over a socket pair with pickled messages.

Parent side: :func:`get_process` returns the running child for a module (started on first use,
and replaced when it died), :meth:`IsolatedProcess.request` sends one request and waits for its
answer.  While a request runs, the child may stop at its natural checkpoints: the parent asks for
one when the harness's clock is due (``("checkpoint", None)``), the child answers with an event
``("checkpoint", data)`` (weights, iteration) and waits; the parent's ``on_checkpoint(data)``
evaluates (with the clock stopped) and returns whether to stop, which the child receives as
``"stop"`` or ``"continue"``.

Child side: the module named to :func:`get_process` defines ``make_handler(hello)``, returning an
object whose ``on_<kind>(payload, channel)`` methods answer requests; :func:`serve` loops over
requests until told to exit or until the socket closes.  A handler's training loop calls
``channel.poll()`` between iterations and ``channel.checkpoint(data)`` when asked.

A child is reused by later runs in the same parent process: every request that builds something
sets the dtype, device, seeds and threads it needs first, so a reused child computes exactly what
a fresh one would.  It exits when the parent exits, when its socket closes, or after a crash.
"""

from __future__ import annotations

import atexit
import importlib
import importlib.util
import json
import os
import pickle
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable

__all__ = ["WorkerError", "IsolatedProcess", "get_process", "shutdown_processes", "serve",
           "Channel"]

#: Seconds allowed for the child to start (imports included).
START_TIMEOUT_S = 300.0
#: Seconds between checks of the child while waiting for an answer.
POLL_S = 0.2
#: The child's program: the parent's import path first of all (``python -c`` would otherwise put
#: the working directory, possibly another checkout, in front), then the serving loop, which
#: checks that it imported the parent's own file of the module.
_CODE = ("import json, os, sys; sys.path[:] = json.loads(os.environ['DSM_ISOLATED_SYS_PATH']); "
         "from solvers.isolated import serve_fd; serve_fd(int(sys.argv[1]), sys.argv[2], "
         "sys.argv[3])")


class WorkerError(RuntimeError):
    """The child process failed: it raised (the message carries its traceback) or died."""


def _python_path() -> list[str]:
    """The parent's import path, so that the child imports the very same code."""
    entries = [os.path.abspath(p) if p else os.getcwd() for p in sys.path]
    return list(dict.fromkeys(entries))


def _module_file(module: str) -> str:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise WorkerError(f"no module {module!r} to run in a child process")
    return str(Path(spec.origin).resolve())


class IsolatedProcess:
    """One child process serving ``module`` (see the module docstring), and the connection."""

    def __init__(self, module: str, env: dict[str, str] | None = None):
        if os.name != "posix":  # pragma: no cover - the suite runs on Linux and macOS
            raise WorkerError("a solver's child process needs a POSIX system")
        self.module = module
        parent_sock, child_sock = socket.socketpair()
        self._stderr = tempfile.TemporaryFile()
        path = _python_path()
        full_env = dict(os.environ, **(env or {}), DSM_ISOLATED_SYS_PATH=json.dumps(path),
                        PYTHONPATH=os.pathsep.join(path))
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _CODE, str(child_sock.fileno()), module,
                 _module_file(module)],
                pass_fds=(child_sock.fileno(),), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=self._stderr, env=full_env)
        finally:
            child_sock.close()
        self.conn = Connection(parent_sock.detach())
        #: The run whose model the child holds (set by the solver after its setup request).
        self.token: Any = None
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

    def _send(self, message) -> None:
        try:
            self.conn.send(message)
        except pickle.PicklingError:
            raise
        except OSError as exc:
            self.close()
            raise WorkerError(f"the child process is gone: {exc}") from None

    def _receive(self, timeout: float | None, what: str, clock=None,
                 on_checkpoint: Callable[[Any], bool] | None = None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        asked = False
        while True:
            wait = POLL_S
            if clock is not None and not asked:
                wait = min(wait, max(clock.seconds_to_next(), 0.0))
                if wait <= 0.0:
                    self._send(("checkpoint", None))
                    asked, wait = True, POLL_S
            try:
                ready = self.conn.poll(wait)
            except (OSError, EOFError):
                ready = False
            kind = None
            if ready:
                try:
                    kind, payload = self.conn.recv()
                except (EOFError, OSError):
                    kind, payload = "died", None
                if kind == "ok":
                    return payload
                if kind == "error":
                    self.token = None
                    raise WorkerError(f"{what} failed in the child process: "
                                      f"{payload['type']}: {payload['message']}\n"
                                      f"{payload['traceback']}")
                if kind == "checkpoint":
                    stop = bool(on_checkpoint(payload)) if on_checkpoint is not None else False
                    self._send(("stop" if stop else "continue", None))
                    asked = False
                    continue
            if self.proc.poll() is not None or kind == "died":
                tail = self._stderr_tail()
                self.close()
                raise WorkerError(f"the child process died during {what} (exit code "
                                  f"{self.proc.returncode}); its stderr ends with:\n{tail}")
            if deadline is not None and time.monotonic() > deadline:
                self.close(kill=True)
                raise TimeoutError(f"the child process did not finish {what} within "
                                   f"{timeout:.0f} s and was stopped")

    def request(self, kind: str, payload: Any, timeout: float | None = None, *, clock=None,
                on_checkpoint: Callable[[Any], bool] | None = None) -> Any:
        """Send one request and wait for its answer (``timeout`` seconds, or for ever).

        With ``clock`` (a :class:`solvers.base.Clock`), the child is asked for a checkpoint
        whenever the clock is due, and ``on_checkpoint(data)`` handles it (returning True stops
        the child's work, which then answers as it would at its end).
        """
        self._send((kind, payload))
        return self._receive(timeout, kind, clock=clock, on_checkpoint=on_checkpoint)

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


_PROCESSES: dict[str, IsolatedProcess] = {}


def get_process(module: str, env: dict[str, str] | None = None) -> IsolatedProcess:
    """The running child serving ``module``, started if there is none (or the last one died)."""
    proc = _PROCESSES.get(module)
    if proc is None or not proc.alive:
        if proc is not None:
            proc.close(kill=True)
        _PROCESSES.pop(module, None)
        _PROCESSES[module] = IsolatedProcess(module, env)
    return _PROCESSES[module]


def shutdown_processes() -> None:
    """Stop every child process (also done at exit)."""
    while _PROCESSES:
        _, proc = _PROCESSES.popitem()
        proc.close()


atexit.register(shutdown_processes)


# --- the child's side -----------------------------------------------------------------------
class Channel:
    """The child's view of the connection while it answers a request."""

    def __init__(self, conn):
        self.conn = conn
        self.stop_requested = False

    def poll(self) -> str | None:
        """``"checkpoint"`` when the parent asks for one, else None (never blocks)."""
        asked = None
        while self.conn.poll(0):
            kind, _ = self.conn.recv()
            if kind == "checkpoint":
                asked = "checkpoint"
            elif kind == "exit":  # the parent is leaving: stop at once
                raise SystemExit(0)
        return asked

    def checkpoint(self, data: Any) -> bool:
        """Send ``data`` to the parent and wait for its verdict: True means stop."""
        self.conn.send(("checkpoint", data))
        while True:
            kind, _ = self.conn.recv()
            if kind in ("stop", "continue"):
                self.stop_requested = kind == "stop"
                return self.stop_requested
            if kind == "exit":
                raise SystemExit(0)


def serve(conn, handler) -> None:
    """Answer requests on ``conn`` with ``handler.on_<kind>(payload, channel)`` until exit or
    EOF.  Checkpoint requests that arrive after the work they were meant for are dropped."""
    while True:
        try:
            kind, payload = conn.recv()
        except (EOFError, OSError):
            return
        if kind == "exit":
            return
        if kind in ("checkpoint", "stop", "continue"):
            continue
        try:
            method = getattr(handler, f"on_{kind}", None)
            if method is None:
                raise ValueError(f"unknown request {kind!r}")
            answer = method(payload, Channel(conn))
            conn.send(("ok", answer))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            conn.send(("error", {"type": type(exc).__name__, "message": str(exc),
                                 "traceback": traceback.format_exc()}))


def serve_fd(fd: int, module: str, expected_file: str) -> None:
    """Entry point of the child: import ``module``, check it is the parent's file, greet with
    ``module.hello()`` and serve ``module.make_handler()`` on the inherited socket ``fd``."""
    conn = Connection(fd)
    try:
        mod = importlib.import_module(module)
        here = str(Path(mod.__file__).resolve())
        if here != expected_file:
            raise ImportError(f"the child process imported {here}, not the caller's "
                              f"{expected_file}")
        hello = dict(mod.hello(), pid=os.getpid())
        handler = mod.make_handler()
    except BaseException as exc:
        conn.send(("error", {"type": type(exc).__name__, "message": str(exc),
                             "traceback": traceback.format_exc()}))
        return
    conn.send(("ok", hello))
    serve(conn, handler)
