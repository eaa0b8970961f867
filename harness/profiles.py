"""Profiles: named run matrices shipped as TOML files in ``harness/profiles``.

A profile lists the solvers (with parameter overrides, seeds and time limits) and the problems
(with parameter overrides and dimension lists) to run; ``run --all`` runs every problem x
dimension x solver x seed.  A solver that cannot do a pair declines it at run time, with a reason
in a "skipped" record.  Schema::

    description = "..."
    seeds = [0, 1, 2]            # default seeds for every solver
    n_times = 101                # points of the record time grid
    time_limit_s = 600           # per run (optional; the solver's phases, see harness.protocol)
    budget_s = 60                # training seconds of every learned solver (optional)
    kill_grace_s = 60            # seconds past the limit before a run is killed (optional)
    workers = 2                  # concurrent runs of the local pool unless --workers (optional)

    [solvers.crank_nicolson]     # a solver in the matrix
    params = { order = 8 }       # parameter overrides (optional)
    seeds = [0]                  # overrides the profile's seeds (optional)
    time_limit_s = 300           # overrides the profile's time limit (optional)

    [problems.harmonic_nd]       # a problem in the matrix
    params = { omega = 1.0 }     # parameter overrides (optional)
    budget_s = 120               # this problem's training budget (optional; overrides the top's)
    dims = [1, 2, 4, 8]          # values of d (optional; default: the problem's own)
    solvers = ["crank_nicolson"] # which of the profile's solvers run it (optional; default all)
    solver_dims = { crank_nicolson = [1, 2] }                     # per-solver d lists (optional)
    solver_params = { crank_nicolson = { phase_step = 0.01 } }   # per pair (optional)
    solver_seeds = { dsm = [0] }                                  # per pair (optional)

Profiles can be changed from the command line without editing a file:
``--set-profile KEY=VALUE`` sets a dotted key to a TOML value (``seeds=[0]``,
``problems.harmonic_nd.dims=[2,3]``, ``solvers.crank_nicolson.params.order=4``); the result is
checked like a file.
"""

from __future__ import annotations

import copy
import math
import numbers
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from core import ParameterError

from .runner import RunRequest

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"

_TOP = {"description", "seeds", "n_times", "time_limit_s", "kill_grace_s", "workers", "solvers",
        "problems", "budget_s"}
_SOLVER = {"params", "seeds", "time_limit_s"}
_PROBLEM = {"params", "dims", "solvers", "solver_dims", "solver_params", "solver_seeds",
            "budget_s"}


@dataclass(frozen=True)
class Profile:
    name: str
    path: Path
    data: dict[str, Any]

    @property
    def description(self) -> str:
        return self.data.get("description", "")

    @property
    def kill_grace_s(self) -> float | None:
        return self.data.get("kill_grace_s")

    @property
    def workers(self) -> int | None:
        return self.data.get("workers")


def available() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


def load(name_or_path: str, overrides: list[str] | None = None) -> Profile:
    """A profile by name (shipped) or by path to a TOML file, with ``KEY=VALUE`` overrides."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILE_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise ParameterError(f"unknown profile '{name_or_path}'; shipped: {', '.join(available())}"
                             f" (or give a path to a .toml file)")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(f"profile {path}: invalid TOML: {exc}") from None
    for item in overrides or []:
        data = apply_override(data, item)
    validate(data, f"profile {path.name}")
    return Profile(name=path.stem, path=path, data=data)


def apply_override(data: dict[str, Any], item: str) -> dict[str, Any]:
    """A copy of ``data`` with ``KEY=VALUE`` applied: a dotted key, a TOML value."""
    if "=" not in item:
        raise ParameterError(f"--set-profile expects KEY=VALUE (a TOML value), got {item!r}")
    key, text = item.split("=", 1)
    parts = [p.strip() for p in key.strip().split(".")]
    if not all(parts):
        raise ParameterError(f"--set-profile: bad key {key.strip()!r}")
    try:
        value = tomllib.loads(f"value = {text.strip()}")["value"]
    except tomllib.TOMLDecodeError:
        raise ParameterError(f"--set-profile {key.strip()}: {text.strip()!r} is not a TOML value "
                             f"(quote strings: name=\"text\"; lists: [0, 1])") from None
    out = copy.deepcopy(data)
    node = out
    for part in parts[:-1]:
        nxt = node.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise ParameterError(f"--set-profile: {key.strip()!r}: {part!r} is not a table")
        node = nxt
    node[parts[-1]] = value
    return out


# --- validation -----------------------------------------------------------------------------
def _check_keys(entry: Any, allowed: set[str], where: str) -> None:
    if not isinstance(entry, dict):
        raise ParameterError(f"{where} must be a table")
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise ParameterError(f"{where}: unknown key(s) {', '.join(unknown)}; "
                             f"allowed: {', '.join(sorted(allowed))}")


def _int_list(value: Any, where: str, lo: int, allow_empty: bool = False) -> None:
    if not isinstance(value, list) or (not value and not allow_empty):
        raise ParameterError(f"{where} must be a {'' if allow_empty else 'non-empty '}list of "
                             f"integers, got {value!r}")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ParameterError(f"{where} must hold integers >= {lo}, got {v!r}")
    if len(set(value)) != len(value):
        raise ParameterError(f"{where} lists a value twice: {value!r}")


def _seconds(value: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not (math.isfinite(value) and value > 0):
        raise ParameterError(f"{where} must be a positive number of seconds, got {value!r}")


def _table(value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise ParameterError(f"{where} must be a table, got {value!r}")


#: The checks of an entry's keys of the same name (a solver's or a problem's table).
_ENTRY_CHECKS = {
    "params": _table,
    "seeds": lambda value, where: _int_list(value, where, 0),
    "dims": lambda value, where: _int_list(value, where, 1),
    "time_limit_s": _seconds,
    "budget_s": _seconds,
}


def _check_entry(entry: Any, allowed, where: str) -> None:
    _check_keys(entry, allowed, where)
    for key, check in _ENTRY_CHECKS.items():
        if key in entry:
            check(entry[key], f"{where}.{key}")


def validate(data: dict[str, Any], where: str) -> None:
    """Check a profile's structure and types; names and parameter values are checked when the
    matrix is planned (every run is validated before any runs)."""
    _check_keys(data, _TOP, where)
    if not data.get("solvers") or not data.get("problems"):
        raise ParameterError(f"{where} must list at least one solver and one problem")
    if "seeds" in data:
        _int_list(data["seeds"], f"{where}: seeds", 0)
    if "n_times" in data:
        n = data["n_times"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise ParameterError(f"{where}: n_times must be an integer >= 2, got {n!r}")
    if "workers" in data:
        w = data["workers"]
        if isinstance(w, bool) or not isinstance(w, int) or w < 1:
            raise ParameterError(f"{where}: workers must be an integer >= 1, got {w!r}")
    for key in ("time_limit_s", "kill_grace_s", "budget_s"):
        if key in data:
            _seconds(data[key], f"{where}: {key}")
    if "description" in data and not isinstance(data["description"], str):
        raise ParameterError(f"{where}: description must be a string")
    _table(data["solvers"], f"{where}: solvers")
    _table(data["problems"], f"{where}: problems")
    solver_names = set(data["solvers"])
    for name, entry in data["solvers"].items():
        _check_entry(entry, _SOLVER, f"{where}: solvers.{name}")
    for name, entry in data["problems"].items():
        w = f"{where}: problems.{name}"
        _check_entry(entry, _PROBLEM, w)
        if "solvers" in entry:
            if not isinstance(entry["solvers"], list) or not all(
                    isinstance(s, str) for s in entry["solvers"]):
                raise ParameterError(f"{w}.solvers must be a list of solver names")
            for s in entry["solvers"]:
                if s not in solver_names:
                    raise ParameterError(f"{w}.solvers names {s!r}, which is not in [solvers]")
        for key in ("solver_dims", "solver_params", "solver_seeds"):
            if key not in entry:
                continue
            _table(entry[key], f"{w}.{key}")
            for s, value in entry[key].items():
                if s not in solver_names:
                    raise ParameterError(f"{w}.{key} names {s!r}, which is not in [solvers]")
                if key == "solver_dims":
                    _int_list(value, f"{w}.solver_dims.{s}", 1, allow_empty=True)
                elif key == "solver_seeds":
                    _int_list(value, f"{w}.solver_seeds.{s}", 0)
                else:
                    _table(value, f"{w}.solver_params.{s}")


def requests(profile: Profile, device: str = "auto", time_limit_s: float | None = None,
             seeds: list[int] | None = None) -> list[RunRequest]:
    """Every run of the profile's matrix, in a stable order (problem, solver, d, seed).

    ``time_limit_s`` and ``seeds`` (from the command line) override the profile's at every level.
    A problem's ``budget_s`` (or the profile's) becomes the training budget parameter of every
    solver that has one (:attr:`solvers.base.Solver.budget_param`): the learned solvers of a
    problem train for the same seconds.
    """
    import solvers

    data = profile.data
    default_seeds = data.get("seeds", [0])
    out = []
    for pname, pentry in data["problems"].items():
        for sname, sentry in data["solvers"].items():
            if "solvers" in pentry and sname not in pentry["solvers"]:
                continue
            dims = pentry.get("solver_dims", {}).get(sname, pentry.get("dims", [None]))
            sparams = dict(sentry.get("params", {}), **pentry.get("solver_params", {}).get(sname, {}))
            budget = pentry.get("budget_s", data.get("budget_s"))
            budget_param = solvers.solver_class(sname).budget_param
            if budget is not None and budget_param is not None:
                if budget_param in sparams and sparams[budget_param] != budget:
                    raise ParameterError(
                        f"profile {profile.name}: problems.{pname} gives budget_s = {budget:g} "
                        f"but solver {sname} sets {budget_param} = {sparams[budget_param]!r}; "
                        f"keep one of the two")
                sparams[budget_param] = float(budget)
            run_seeds = seeds if seeds is not None else pentry.get("solver_seeds", {}).get(
                sname, sentry.get("seeds", default_seeds))
            limit = time_limit_s or sentry.get("time_limit_s", data.get("time_limit_s"))
            for d in dims:
                pparams = dict(pentry.get("params", {}))
                if d is not None:
                    pparams["d"] = d
                for seed in run_seeds:
                    out.append(RunRequest(
                        problem=pname, solver=sname, problem_params=pparams, solver_params=sparams,
                        seed=seed, n_times=data.get("n_times", 101), device=device,
                        time_limit_s=float(limit) if limit is not None else None,
                        profile=profile.name))
    return out
