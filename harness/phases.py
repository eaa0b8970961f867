"""The phases of one run, as the run's process reports them to the executor that started it."""

from __future__ import annotations

import enum

__all__ = ["Phase", "LIMITED"]


class Phase(str, enum.Enum):
    """A run's phases, in order.  The values are what travels on the child's status channel."""

    START = "start"          # the process is starting (nothing reported yet)
    PLAN = "plan"            # validating the request, building the problem and solver
    REFERENCE = "reference"  # the reference on the record's times (a grid one may be computed)
    LADDER = "ladder"        # a grid solver's coarser rungs (its cost-accuracy points)
    SETUP = "setup"          # the solver's untimed preparation
    RUN = "run"              # the timed solve or training (anytime evaluations included)
    EVALUATE = "evaluate"    # the solver's final observables
    METRICS = "metrics"      # the harness's metrics (may compute a cached grid reference)
    WRITE = "write"          # writing the record
    DONE = "done"


#: The phases a run's time limit covers: the solver's own work.
LIMITED = frozenset({Phase.LADDER, Phase.SETUP, Phase.RUN, Phase.EVALUATE})
