"""Peak memory of one grid propagation, measured in a fresh process (calibrates the estimates).

    python tests/grid_memory_probe.py METHOD D N [--problem NAME] [--steps K] [--times M]

prints one JSON line: the grid's points, the peak resident memory the propagation added
(``VmHWM`` after the run minus ``VmRSS`` before it, with the high-water mark reset through
``/proc/self/clear_refs`` so that the interpreter's import peak does not count) and
:func:`problems.grid.grid_memory_bytes`'s estimate.  Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import json
import time


def _status(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure(method: str, d: int, n: int, problem_name: str = "harmonic_nd", steps: int = 3,
            n_times: int = 4, order: int | None = None, **problem_params) -> dict:
    """Measure one propagation (``problem_name`` "forced_trap" is the test-local driven trap)."""
    import numpy as np

    import problems
    from problems.grid import grid_memory_bytes, plan, propagate

    params = dict(problem_params)
    if problem_name == "forced_trap":
        import sys
        from pathlib import Path

        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from forced_trap import ForcedTrap

        problem = ForcedTrap(d=d, **params)
    else:
        if not problems.problem_class(problem_name).param_specs()["d"].fixed:
            params["d"] = d
        problem = problems.get(problem_name, **params)
    options = ({"points_per_wavelength": 2.2, "phase_step": 0.4, "order": order or 4}
               if method == "split_operator" else
               {"points_per_wavelength": 3.5, "phase_step": 0.008, "order": order or 8})
    settings = plan(problem, method, n=n, **options)
    times = np.linspace(0.0, steps * settings.dt, n_times)
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset VmHWM to the current RSS
        reset = True
    except OSError:
        reset = False
    before = _status("VmRSS")
    started = time.perf_counter()
    propagate(problem, settings, times, progress=False)
    seconds = time.perf_counter() - started
    peak = _status("VmHWM")
    return {"method": method, "problem": problem_name, "order": settings.order,
            "linear_solver": getattr(settings, "solver_kind", lambda: None)(),
            "d": d, "n": settings.n,
            "points": settings.n ** d, "steps": steps, "hwm_reset": reset,
            "peak_added_bytes": peak - before,
            "bytes_per_point": (peak - before) / settings.n ** d,
            "estimate_bytes": grid_memory_bytes(settings, problem.static_potential),
            "seconds": seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("method", choices=("crank_nicolson", "split_operator"))
    ap.add_argument("d", type=int)
    ap.add_argument("n", type=int)
    ap.add_argument("--problem", default="harmonic_nd")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--times", type=int, default=4)
    ap.add_argument("--order", type=int, default=None)
    args = ap.parse_args()
    print(json.dumps(measure(args.method, args.d, args.n, args.problem, args.steps, args.times,
                             args.order)))


if __name__ == "__main__":
    main()
