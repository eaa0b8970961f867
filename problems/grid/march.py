"""The time loop both grid engines share: steps between observation times, a progress bar, a
wall-clock limit, and one observation at each requested time."""

from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np

__all__ = ["step_plan", "check_times", "march"]


def step_plan(times: np.ndarray, dt: float) -> list[tuple[int, float]]:
    """Steps per interval between consecutive ``times`` (from 0): ``(k, gap / k)`` with the
    fewest equal steps no longer than ``dt``; equal intervals share one step size."""
    plan, t_prev, last = [], 0.0, None
    for t in times:
        gap = t - t_prev
        k = int(math.ceil(gap / dt - 1e-9)) if gap > 0 else 0
        step = gap / k if k else 0.0
        # the gaps of np.linspace differ in their last bits; snapping them to one value keeps
        # one factorisation (Crank–Nicolson) or one set of phase arrays (split-operator), at a
        # cost of ~1e-16 relative in the times reached
        if k and last is not None and abs(step - last) <= 1e-12 * last:
            step = last
        if k:
            last = step
        plan.append((k, step))
        t_prev = t
    return plan


def check_times(times) -> np.ndarray:
    """``times`` as a float array, or a ValueError unless it is 1-D, non-empty, starts at >= 0
    and never decreases."""
    times = np.asarray(times, dtype=float)
    if times.ndim != 1 or len(times) == 0 or times[0] < 0 or np.any(np.diff(times) < 0):
        raise ValueError("times must be a non-empty, non-decreasing 1-D array starting at >= 0")
    return times


def march(times: np.ndarray, dt: float, advance: Callable, observe: Callable[[int, float], None],
          *, label: str, started: float, time_limit_s: float | None,
          progress: bool | None) -> int:
    """Step from t = 0 through ``times`` and return the number of steps taken.

    ``advance(t_now, dt, k, tick)`` takes ``k`` steps of ``dt`` from ``t_now`` and calls
    ``tick()`` after each; ``observe(j, t)`` records observation ``j`` at time ``t`` (also at
    ``times[0]``, before any step when it is 0).  A TimeoutError names ``label`` once the wall
    time since ``started`` (a ``time.perf_counter()`` value) passes ``time_limit_s``.
    """
    from tqdm.auto import tqdm

    plan = step_plan(times, dt)
    bar = tqdm(total=sum(k for k, _ in plan), desc=label, unit="step", leave=False,
               disable=(not progress) if progress is not None else None)
    steps = 0

    def tick() -> None:
        nonlocal steps
        steps += 1
        bar.update(1)
        if time_limit_s is not None and time.perf_counter() - started > time_limit_s:
            raise TimeoutError(f"{label} exceeded its time limit of {time_limit_s:g} s "
                               f"after {steps} steps")

    t_now = 0.0
    try:
        for j, (k, step) in enumerate(plan):
            if k:
                advance(t_now, step, k, tick)
            t_now = float(times[j])
            observe(j, t_now)
    finally:
        bar.close()
    return steps
