"""Parsing and checking command-line values: the errors a user can make, as one-line messages."""

from __future__ import annotations

import argparse
from typing import Sequence

__all__ = ["UsageError", "Parser", "seeds", "dims", "split_sets"]


class UsageError(Exception):
    """Bad command-line input: reported on one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one clear line instead of usage + error
        raise UsageError(message)


def _integers(text: str, option: str, lo: int, example: str) -> list[int]:
    """Comma-separated integers or ranges ``A-B``, each at least ``lo`` and each once."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:
                a, b = part.split("-", 1)
                first, last = int(a), int(b)
                if last < first:
                    raise UsageError(f"{option}: empty range {part!r}")
                out.extend(range(first, last + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise UsageError(f"{option} expects {example}, got {text!r}") from None
    if not out or min(out) < lo:
        raise UsageError(f"{option} must list integers >= {lo}, got {text!r}")
    if len(set(out)) != len(out):
        raise UsageError(f"{option} lists a value twice: {text!r}")
    return out


def seeds(text: str) -> list[int]:
    """``--seeds 0,1,2`` or a range ``0-4``: non-negative seeds, each once."""
    return _integers(text, "--seeds", 0, "integers like 0,1,2 or 0-4")


def dims(text: str) -> list[int]:
    """``--dims 1,2,4`` or a range ``1-4``: dimensions >= 1, each once."""
    return _integers(text, "--dims", 1, "dimensions like 1,2,4,8 or 1-4")


def split_sets(items: Sequence[str]) -> tuple[dict[str, str], dict[str, str]]:
    """``problem.KEY=VALUE`` / ``solver.KEY=VALUE`` strings into two dicts of raw strings."""
    out: dict[str, dict[str, str]] = {"problem": {}, "solver": {}}
    for item in items:
        if "=" not in item:
            raise UsageError(f"--set expects problem.KEY=VALUE or solver.KEY=VALUE, got {item!r}")
        target, value = item.split("=", 1)
        owner, _, key = target.strip().partition(".")
        if owner not in out or not key:
            raise UsageError(f"--set key must start with 'problem.' or 'solver.', got {target!r}")
        if not value.strip():
            raise UsageError(f"--set {target} has an empty value")
        if key in out[owner] and out[owner][key] != value:
            raise UsageError(f"--set {target} is given twice with different values")
        out[owner][key] = value
    return out["problem"], out["solver"]
