"""Profiles: named run matrices shipped as TOML files in ``harness/profiles``.

A profile lists the solvers (with parameter overrides and seeds) and the problems (with
parameter overrides and dimension lists) to run; ``run --all`` runs every problem x dimension x
solver x seed.  A solver that cannot do a pair declines it at run time, with a reason in a
"skipped" record.  Schema::

    description = "..."
    seeds = [0, 1, 2]            # default seeds for every solver
    n_times = 101                # points of the record time grid
    time_limit_s = 600           # per run (optional)

    [solvers.crank_nicolson]     # a solver in the matrix
    params = { order = 8 }       # parameter overrides (optional)
    seeds = [0]                  # overrides the profile's seeds (optional)

    [problems.harmonic_nd]       # a problem in the matrix
    params = { omega = 1.0 }     # parameter overrides (optional)
    dims = [1, 2, 3]             # values of d (optional; default: the problem's own)
    solver_dims = { crank_nicolson = [2] }   # per-solver dimension lists (optional)
    solver_params = { crank_nicolson = { phase_step = 0.01 } }   # per pair (optional)
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from problems.parameters import ParameterError

from .runner import RunRequest

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"

_TOP = {"description", "seeds", "n_times", "time_limit_s", "solvers", "problems"}
_SOLVER = {"params", "seeds"}
_PROBLEM = {"params", "dims", "solver_dims", "solver_params"}


@dataclass(frozen=True)
class Profile:
    name: str
    path: Path
    data: dict[str, Any]

    @property
    def description(self) -> str:
        return self.data.get("description", "")


def available() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


def load(name_or_path: str) -> Profile:
    """A profile by name (shipped) or by path to a TOML file."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILE_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise ParameterError(f"unknown profile '{name_or_path}'; shipped: {', '.join(available())}")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(f"profile {path}: invalid TOML: {exc}") from None
    _check_keys(data, _TOP, f"profile {path.name}")
    for name, entry in data.get("solvers", {}).items():
        _check_keys(entry, _SOLVER, f"profile {path.name}: solvers.{name}")
    for name, entry in data.get("problems", {}).items():
        _check_keys(entry, _PROBLEM, f"profile {path.name}: problems.{name}")
    if not data.get("solvers") or not data.get("problems"):
        raise ParameterError(f"profile {path.name} must list at least one solver and one problem")
    return Profile(name=path.stem, path=path, data=data)


def _check_keys(entry: Any, allowed: set[str], where: str) -> None:
    if not isinstance(entry, dict):
        raise ParameterError(f"{where} must be a table")
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise ParameterError(f"{where}: unknown key(s) {', '.join(unknown)}; "
                             f"allowed: {', '.join(sorted(allowed))}")


def requests(profile: Profile, device: str = "auto", time_limit_s: float | None = None,
             seeds: list[int] | None = None) -> list[RunRequest]:
    """Every run of the profile's matrix, in a stable order.  ``seeds`` overrides the profile's."""
    data = profile.data
    default_seeds = data.get("seeds", [0])
    out = []
    for pname, pentry in data["problems"].items():
        for sname, sentry in data["solvers"].items():
            dims = pentry.get("solver_dims", {}).get(sname, pentry.get("dims", [None]))
            sparams = dict(sentry.get("params", {}), **pentry.get("solver_params", {}).get(sname, {}))
            run_seeds = seeds if seeds is not None else sentry.get("seeds", default_seeds)
            for d in dims:
                pparams = dict(pentry.get("params", {}))
                if d is not None:
                    pparams["d"] = d
                for seed in run_seeds:
                    out.append(RunRequest(
                        problem=pname, solver=sname, problem_params=pparams, solver_params=sparams,
                        seed=seed, n_times=data.get("n_times", 101), device=device,
                        time_limit_s=time_limit_s or data.get("time_limit_s"), profile=profile.name))
    return out
