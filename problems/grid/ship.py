"""Compute the grid references the package ships, for the profiles' time grids.

    python -m problems.grid.ship [--only NAME] [--workers W] [--dry-run]

Each entry is computed (or found) in the user cache and copied to ``problems/data/references``,
where :func:`problems.cache.load` finds it on a fresh machine.  The list is the profiles' grid
cases: bosons with mean-field coupling at d = 2, 3, 4 (default and paper profiles, 101 times),
bosons with fixed g at d = 2 (quick profile, 21 times; and 101) and d = 3 (101: its check takes
minutes), and the double well at d = 1, 2 (101 and 21 times).  Prints what each took.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time

import numpy as np

from .. import cache

__all__ = ["SHIPPED_CASES", "main"]

#: (problem name, parameters, number of times on [0, T]).
SHIPPED_CASES: list[tuple[str, dict, int]] = [
    ("bosons", {"d": 2, "scaling": "fixed"}, 21),
    ("bosons", {"d": 2, "scaling": "fixed"}, 101),
    ("bosons", {"d": 2, "scaling": "mean_field"}, 101),
    ("double_well", {"d": 1}, 21),
    ("double_well", {"d": 1}, 101),
    ("double_well", {"d": 2}, 21),
    ("double_well", {"d": 2}, 101),
    ("bosons", {"d": 3, "scaling": "mean_field"}, 101),
    ("bosons", {"d": 3, "scaling": "fixed"}, 101),
    ("bosons", {"d": 4, "scaling": "mean_field"}, 101),
]


def main(argv: list[str] | None = None) -> int:
    import problems

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=None, help="only cases whose problem name contains this")
    ap.add_argument("--d", type=int, default=None, help="only cases of this dimension")
    ap.add_argument("--workers", type=int, default=1, help="FFT threads")
    ap.add_argument("--dry-run", action="store_true", help="list the cases and their grids")
    args = ap.parse_args(argv)
    target = cache.SHIPPED / "references"
    for name, params, n_times in SHIPPED_CASES:
        if args.only and args.only not in name or args.d and params.get("d") != args.d:
            continue
        problem = problems.get(name, **params)
        ref = problem.reference()
        if ref.kind != "grid":
            print(f"{name} {params}: no grid reference ({ref.kind})")
            continue
        ref.workers = args.workers
        times = np.linspace(0.0, problem.t_final, n_times)
        if args.dry_run:
            print(name, params, n_times, ref.key(times), "n", ref.settings().n,
                  "check n", ref.check_settings().n, f"{ref.memory_bytes() / 1e9:.2f} GB")
            continue
        started = time.perf_counter()
        ref.solution(times)
        took = time.perf_counter() - started
        src = cache.cache_dir() / "references" / f"{name}-{ref.last['key']}.npz"
        if src.is_file():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target / src.name)
        conv = {k: v for k, v in ref.last["convergence"].items() if k != "grid"}
        print(json.dumps({"problem": name, "params": params, "n_times": n_times,
                          "key": ref.last["key"], "cached_before": ref.last["cached"],
                          "seconds": took, "compute_s": ref.last["compute_s"],
                          "convergence": conv,
                          "bytes": (target / src.name).stat().st_size}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
