"""DSM's checkpoints: the training state in the run's work directory, written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from core.io import atomic_write

__all__ = ["FILENAME", "save", "load"]

FILENAME = "dsm-checkpoint.pt"


def save(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` (tensors, optimiser state, generator state, history) to ``path``."""
    atomic_write(path, lambda fh: torch.save(state, fh), binary=True)


def load(path: Path, device: torch.device, problem_spec: dict[str, Any],
         params: dict[str, Any]) -> dict[str, Any] | None:
    """The state saved at ``path``, or None when there is none; a checkpoint of another problem
    or other parameters is an error (resuming it would mix two runs)."""
    if not path.is_file():
        return None
    state = torch.load(path, map_location=device, weights_only=False)
    if state["problem"] != problem_spec:
        raise RuntimeError(f"checkpoint {path} is for another problem; delete it or turn off "
                           "resume")
    mine = {k: v for k, v in params.items() if k not in ("resume", "iterations", "max_seconds")}
    theirs = {k: v for k, v in state["params"].items()
              if k not in ("resume", "iterations", "max_seconds")}
    if mine != theirs:
        changed = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        raise RuntimeError(f"checkpoint {path} was trained with other parameters "
                           f"({', '.join(changed)}); delete it or turn off resume")
    return state
