"""Atomic file writes: a reader, or a crash, never sees a half-written file.

Every file the suite produces (records, history side files, cached references, reports, figures,
checkpoints) is written through :func:`atomic_write`: the content goes to a temporary file in the
destination's directory, is flushed to disk, and is renamed over the final name; the rename is
made durable by syncing the directory.  The temporary file is named ``.<stem>.<random>.tmp``, so
that a killed writer's leftovers can be recognised (and removed) by that pattern.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Callable

__all__ = ["atomic_write", "atomic_write_text", "temporary_pattern"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temporary_pattern(stem: str) -> str:
    """The glob pattern of the temporary files :func:`atomic_write` uses for files named
    ``stem.*``."""
    return f".{stem}.*.tmp"


def atomic_write(path: Path | str, write: Callable[[IO], None], *, binary: bool = False) -> Path:
    """Write ``path`` atomically: ``write(fh)`` fills an open temporary file, which then replaces
    ``path``.  Parent directories are created.  Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return path


def atomic_write_text(path: Path | str, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda fh: fh.write(text))
