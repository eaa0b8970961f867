"""The harness's clock of training seconds and the schedule of anytime points.

A solver's ``run(clock)`` calls ``clock(iteration)`` at its natural checkpoints.  When a point is
due on :data:`SCHEDULE_S` (the same for every solver, so curves can be compared), the clock
stops, the harness evaluates (the solver's cheap :meth:`~solvers.base.Solver.anytime_evaluate`
and the harness's metrics), and the clock starts again: evaluation never counts as training.
"""

from __future__ import annotations

import time
from typing import Callable

from solvers.base import Clock

__all__ = ["SCHEDULE_S", "MAX_EVAL_FRACTION", "AnytimeClock"]

#: Training seconds at which a run's anytime points are due: 1, 2, 5, 10, 20, 50, ... (the same
#: for every solver, so that curves can be compared), plus the end of training.
SCHEDULE_S = tuple(m * 10.0**e for e in range(0, 7) for m in (1, 2, 5))
#: A due point is taken only if anytime evaluation, this point and the end's included (each at
#: the last point's cost), stays within this fraction of the run's planned training seconds.
MAX_EVAL_FRACTION = 0.15


class AnytimeClock(Clock):
    """The harness's clock of training seconds, stopped while the harness evaluates.

    At a solver's checkpoint (``clock(iteration)``) that is due on :data:`SCHEDULE_S`, the clock
    stops, ``take_point(iteration, train_s)`` evaluates, and the clock starts again; the
    evaluation's seconds are counted in :attr:`eval_s`, never in training.

    A due point is skipped (:attr:`skipped`) when the evaluation so far, plus this point and the
    end of training's (always taken), each at the last point's cost, would exceed
    ``max_fraction`` of the run's planned training seconds: ``planned(iteration, train_s)``
    (the budget, or the seconds so far scaled to the iterations asked for; see the runner), or
    the training seconds so far where there is no plan.  Budgeting against the plan instead of
    the seconds so far lets the early, most informative points of a log-spaced curve be taken.
    """

    def __init__(self, take_point: Callable[[int, float], None] | None,
                 sync: Callable[[], None] = lambda: None,
                 schedule: tuple[float, ...] = SCHEDULE_S,
                 max_fraction: float = MAX_EVAL_FRACTION,
                 planned: Callable[[int, float], float] | None = None,
                 timer: Callable[[], float] = time.perf_counter):
        self.take_point = take_point
        self.timer = timer
        self.sync = sync
        self.schedule = schedule
        self.max_fraction = max_fraction
        self.planned = planned
        #: the planned training seconds at the last checkpoint (recorded)
        self.planned_s: float | None = None
        self.eval_s = 0.0
        self.skipped = 0
        self._last_eval_s = 0.0
        self._next = 0
        self._acc = 0.0
        self._since: float | None = self.timer()

    def elapsed(self) -> float:
        running = self.timer() - self._since if self._since is not None else 0.0
        return self._acc + running

    def stop(self) -> float:
        """Stop the clock (the device synchronised first); returns the training seconds."""
        if self._since is not None:
            self.sync()
            self._acc += self.timer() - self._since
            self._since = None
        return self._acc

    def start(self) -> None:
        if self._since is None:
            self._since = self.timer()

    def seconds_to_next(self) -> float:
        if self.take_point is None or self._next >= len(self.schedule):
            return float("inf")
        return max(self.schedule[self._next] - self.elapsed(), 0.0)

    def __call__(self, iteration: int) -> bool:
        if self.take_point is None or self.seconds_to_next() > 0.0:
            return False
        train_s = self.stop()
        while self._next < len(self.schedule) and self.schedule[self._next] <= train_s:
            self._next += 1
        horizon = train_s
        if self.planned is not None:
            self.planned_s = float(self.planned(iteration, train_s))
            horizon = max(train_s, self.planned_s)
        if self.eval_s + 2 * self._last_eval_s > self.max_fraction * horizon:
            self.skipped += 1
        else:
            self.evaluate(iteration, train_s)
        self.start()
        return False

    def evaluate(self, iteration: int, train_s: float) -> None:
        """Take a point now (the clock must be stopped), counting its seconds."""
        t0 = self.timer()
        try:
            self.take_point(iteration, train_s)
        finally:
            self._last_eval_s = self.timer() - t0
            self.eval_s += self._last_eval_s
