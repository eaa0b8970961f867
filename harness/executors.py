"""Executors: how a matrix of planned runs is carried out (``local``, ``dask``, ``inline``).

The local pool and the inline executor live in :mod:`harness.pool`, the Dask executor in
:mod:`harness.dask_cluster`, and what every isolated run shares (its process, thread caps, time
limit, failures) in :mod:`harness.protocol`.
"""

from __future__ import annotations

from .pool import Executor, InlineExecutor, LocalExecutor
from .protocol import KILL_GRACE_S

__all__ = ["EXECUTORS", "KILL_GRACE_S", "build"]

EXECUTORS = ("local", "dask", "inline")


def build(kind: str, *, workers: int | None = None, threads: int | None = None,
          kill_grace_s: float = KILL_GRACE_S, scheduler: str | None = None) -> Executor:
    """The executor ``kind`` (validated by the caller), not yet started."""
    if kind == "local":
        return LocalExecutor(workers or 1, threads=threads, kill_grace_s=kill_grace_s)
    if kind == "inline":
        return InlineExecutor(threads=threads, kill_grace_s=kill_grace_s)
    if kind == "dask":
        from .dask_cluster import DaskExecutor

        return DaskExecutor(scheduler, threads=threads, kill_grace_s=kill_grace_s)
    raise ValueError(f"unknown executor {kind!r}")
