"""Profiles: the shipped ones load and plan; the schema's levels; overrides; bad profiles."""

import pytest

from harness import profiles
from harness.runner import plan
from core import ParameterError

SHIPPED = ("quick", "default", "paper")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profiles_load_and_every_run_plans(name):
    profile = profiles.load(name)
    assert profile.description
    reqs = profiles.requests(profile)
    assert reqs
    ids = [plan(r).run_id for r in reqs]  # every run is valid
    assert len(set(ids)) == len(ids)
    # the d-scaled problems are named across d
    dims = {r.problem_params.get("d") for r in reqs if r.problem == "harmonic_nd"}
    assert len(dims) >= 2


def test_shipped_profiles_are_listed():
    assert set(SHIPPED) <= set(profiles.available())


def _write(tmp_path, text):
    path = tmp_path / "p.toml"
    path.write_text(text)
    return str(path)


SCHEMA = """
seeds = [0, 1]
n_times = 11
time_limit_s = 100
kill_grace_s = 5
workers = 3

[solvers.crank_nicolson]
params = { order = 4 }
seeds = [7]
time_limit_s = 50

[problems.harmonic_1d]

[problems.harmonic_nd]
dims = [1, 2, 5]
params = { omega = 2.0 }
solver_dims = { crank_nicolson = [2] }
solver_params = { crank_nicolson = { order = 6 } }
solver_seeds = { crank_nicolson = [8, 9] }

[problems.bosons]
dims = [2]
solvers = []
"""


def test_every_level_of_the_schema(tmp_path):
    profile = profiles.load(_write(tmp_path, SCHEMA))
    assert profile.kill_grace_s == 5 and profile.workers == 3
    reqs = profiles.requests(profile)
    assert [(r.problem, r.problem_params.get("d")) for r in reqs] == [
        ("harmonic_1d", None), ("harmonic_nd", 2), ("harmonic_nd", 2)]  # bosons runs no solver
    h1, hn, hn9 = reqs
    assert h1.seed == 7  # per-solver seeds
    assert (hn.seed, hn9.seed) == (8, 9)  # per (problem, solver) seeds
    assert h1.time_limit_s == 50.0 and h1.n_times == 11  # per-solver limit
    assert h1.solver_params == {"order": 4}
    assert hn.solver_params == {"order": 6}  # per (problem, solver)
    assert hn.problem_params == {"omega": 2.0, "d": 2}
    # the command line overrides seeds and the limit everywhere
    reqs = profiles.requests(profile, time_limit_s=9, seeds=[3, 4])
    assert {r.seed for r in reqs} == {3, 4} and {r.time_limit_s for r in reqs} == {9.0}


def test_overrides_set_dotted_keys_with_toml_values(tmp_path):
    path = _write(tmp_path, SCHEMA)
    profile = profiles.load(path, ["seeds=[0]", "problems.harmonic_nd.solver_dims.crank_nicolson=[1, 2]",
                                   "solvers.crank_nicolson.params.order=8",
                                   'description="changed"'])
    assert profile.description == "changed"
    reqs = profiles.requests(profile)
    assert [r.problem_params.get("d") for r in reqs if r.problem == "harmonic_nd"] == [1, 1, 2, 2]
    assert all(r.solver_params["order"] in (6, 8) for r in reqs)
    assert profiles.load(path).data["solvers"]["crank_nicolson"]["params"] == {"order": 4}


@pytest.mark.parametrize("text, fragment", [
    ("seeds = [0]\n[problems.harmonic_1d]\n", "at least one solver"),
    ("[solvers.crank_nicolson]\n[problems.harmonic_1d]\ncolour = 1\n", "unknown key"),
    ("[solvers.crank_nicolson]\nsneeds = [0]\n[problems.harmonic_1d]\n", "unknown key"),
    ("seeds = [0, 0]\n[solvers.crank_nicolson]\n[problems.harmonic_1d]\n", "twice"),
    ("seeds = [-1]\n[solvers.crank_nicolson]\n[problems.harmonic_1d]\n", ">= 0"),
    ("n_times = 1\n[solvers.crank_nicolson]\n[problems.harmonic_1d]\n", "n_times"),
    ("workers = 0\n[solvers.crank_nicolson]\n[problems.harmonic_1d]\n", "workers"),
    ("time_limit_s = 0\n[solvers.crank_nicolson]\n[problems.harmonic_1d]\n", "positive"),
    ("[solvers.crank_nicolson]\ntime_limit_s = 'long'\n[problems.harmonic_1d]\n", "positive"),
    ("[solvers.crank_nicolson]\n[problems.harmonic_nd]\ndims = [0]\n", ">= 1"),
    ("[solvers.crank_nicolson]\n[problems.harmonic_nd]\ndims = []\n", "non-empty"),
    ("[solvers.crank_nicolson]\n[problems.harmonic_1d]\nsolver_seeds = { crank_nicolson = [-2] }\n",
     ">= 0"),
    ("[solvers.crank_nicolson]\n[problems.harmonic_nd]\nsolver_dims = { dsm = [4] }\n",
     "not in [solvers]"),
    ("[solvers.crank_nicolson]\n[problems.harmonic_nd]\nsolvers = ['pinn']\n", "not in [solvers]"),
    ("[solvers.crank_nicolson]\n[problems.harmonic_nd\n", "invalid TOML"),
])
def test_bad_profiles_name_the_problem(tmp_path, text, fragment):
    with pytest.raises(ParameterError, match="p.toml") as err:
        profiles.load(_write(tmp_path, text))
    assert fragment in str(err.value)


@pytest.mark.parametrize("item, fragment", [
    ("seeds", "KEY=VALUE"),
    ("seeds=[0", "not a TOML value"),
    ("seeds.x=1", "not a table"),
    (".a=1", "bad key"),
])
def test_bad_overrides(item, fragment):
    with pytest.raises(ParameterError) as err:
        profiles.load("quick", [item])
    assert fragment in str(err.value)


def test_unknown_names_fail_when_planned():
    profile = profiles.load("quick", ["solvers.nope.params={}"])
    with pytest.raises(ParameterError, match="unknown solver 'nope'"):
        [plan(r) for r in profiles.requests(profile)]
