"""One run in a process of its own: ``python -m harness.child`` (started by the executors).

Protocol (all JSON, one object per line):

* The parent writes the *payload* as one line on the child's stdin and keeps stdin open.  When
  stdin reaches end-of-file before the run is over, the parent is gone (killed, even with
  SIGKILL): the child then kills its own process group at once, so a killed command leaves no
  orphan runs and, because records are written atomically, no half-written record.
* The child reports phases (:class:`harness.phases.Phase`) on its stdout, one line each:
  ``{"phase": "setup"}`` ... so that the parent can apply a run's time limit to the solver's
  phases only (not to interpreter start-up or
  to the harness's own metrics).  Anything else printing to stdout (a solver, a C library) is
  redirected to stderr, which the parent sends to a log file.
* The result goes to the file named by ``result_path`` (written atomically): ``{"record": ...,
  "history": ..., "written": bool}``.  With ``out_dir`` the child writes the record and its
  history into that directory itself; without it (the Dask executor), the parent writes them.

Process settings: glibc keeps freed memory for reuse (:func:`harness.env.keep_freed_memory`).
Thread caps: the parent sets ``OMP_NUM_THREADS`` and friends in the child's environment (so they
hold before NumPy or torch load); the child also calls ``torch.set_num_threads``.
"""

from __future__ import annotations

import faulthandler
import json
import os
import shutil
import signal
import sys
import threading


def _read_line(fd: int) -> bytes:
    """One line from ``fd``, read unbuffered (nothing past the newline is consumed)."""
    out = bytearray()
    while not out.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            break
        out += chunk
    return bytes(out)


def _exit_when_parent_goes(fd: int, private_dir: str) -> None:
    """Block until ``fd`` (stdin) closes; then remove the run's private directory (its result
    and log, which nobody will read) and kill this process group (the run and anything it
    started).  Reads the raw descriptor: a buffered reader's lock held by this daemon thread
    would abort the interpreter at exit."""
    try:
        while os.read(fd, 65536):
            pass
    except OSError:
        pass
    try:
        shutil.rmtree(private_dir, ignore_errors=True)
        if os.getpgid(0) == os.getpid():  # started as a group leader by the executor
            os.killpg(os.getpid(), signal.SIGKILL)
    finally:
        os._exit(70)


def main() -> int:
    faulthandler.enable()  # a crash leaves a Python traceback in the run's log
    line = _read_line(0)
    if not line:
        return 70
    payload = json.loads(line)
    private_dir = os.path.dirname(payload["result_path"])
    threading.Thread(target=_exit_when_parent_goes, args=(0, private_dir), daemon=True).start()

    # the status channel is the original stdout; everything else printed goes to stderr
    status = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    from harness.phases import Phase

    def report(phase: Phase) -> None:
        status.write(json.dumps({"phase": phase.value}) + "\n")
        status.flush()

    threads = int(payload["threads"])
    from harness.env import keep_freed_memory

    keep_freed_memory()
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:  # already set (only possible once per process)
        pass

    from core.io import atomic_write_text
    from harness import records
    from harness.runner import RunRequest, plan, run_record, write_record

    report(Phase.PLAN)
    run = plan(RunRequest(**payload["request"]))
    if run.run_id != payload["run_id"]:
        raise RuntimeError(f"this process computed run id {run.run_id} for a run the parent calls "
                           f"{payload['run_id']}: the two run different code")
    out_dir = payload.get("out_dir")
    workdir = None
    if out_dir:
        from pathlib import Path

        workdir = Path(out_dir) / "work" / run.run_id
    record, history = run_record(run, workdir=workdir, execution=payload.get("execution"),
                                 on_phase=report)
    written = False
    if out_dir:
        report(Phase.WRITE)
        write_record(record, history, out_dir)
        written = True
    record.pop("path", None)
    result = {"record": records.jsonable(record), "history": records.jsonable(history),
              "written": written}
    from pathlib import Path

    atomic_write_text(Path(payload["result_path"]), json.dumps(result, allow_nan=False))
    report(Phase.DONE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
