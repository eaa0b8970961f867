"""Every registered solver on every registered problem: it either declines with a reason or
returns observables of the right shapes on the requested time grid (benchopt's approach), and
the order of a solver's steps is checked."""

import numpy as np
import pytest

import problems
import solvers
from solvers.base import FreeClock, Observables, SolverStateError
from harness import profiles



def _pair(solver_name, problem_name):
    """A solver that trains in a worker process of its own (an optional extra: DeepXDE, JAX)
    pays seconds of start-up and compilation per pair (t-VMC's JAX compilation 25 s): its
    contract pairs are in the slow set, which CI runs; its own test module runs it end to end
    in the fast suite (tests/test_pinn.py, tests/test_tvmc.py)."""
    heavy = getattr(solvers.solver_class(solver_name), "extra", None)
    if heavy:
        return pytest.param(solver_name, problem_name, marks=pytest.mark.slow)
    return (solver_name, problem_name)


PAIRS = [_pair(s, p) for s in solvers.names() for p in problems.names()]


def _small(problem_name):
    cls = problems.problem_class(problem_name)
    kw = {"t_final": 0.2} if "t_final" in cls.param_specs() else {}
    if not cls.param_specs()["d"].fixed and cls.param_specs()["d"].default < 2:
        kw["d"] = 2
    try:
        return problems.get(problem_name, **kw)
    except ValueError:  # a problem that fixes its own time or dimension range
        return problems.get(problem_name)


def _installed(cls):
    reason = cls.missing_extra()
    if reason:
        pytest.skip(f"{cls.name}: {reason}")


@pytest.mark.parametrize("solver_name, problem_name", PAIRS)
def test_solver_contract(solver_name, problem_name):
    cls = solvers.solver_class(solver_name)
    _installed(cls)
    solver = cls(cls.quick_params)
    problem = _small(problem_name)
    reason = solver.skip(problem)
    if reason is not None:
        assert isinstance(reason, str) and reason
        return
    times = np.linspace(0, problem.t_final, 5)
    solver.setup(problem, times=times, device="cpu", seed=1)
    solver.run(FreeClock())
    obs = solver.evaluate()
    assert isinstance(obs, Observables)
    assert np.allclose(obs.times, times)
    assert obs.mean.shape == obs.var.shape == (5, problem.d)
    assert np.all(np.isfinite(obs.mean)) and np.all(obs.var > 0)
    cdf = obs.marginal_cdf(0, np.linspace(-3, 3, 11))
    assert cdf is None or cdf.shape == (5, 11)
    assert solver.iterations > 0


@pytest.mark.parametrize("solver_name", solvers.names())
def test_no_solver_declines_every_problem(solver_name):
    cls = solvers.solver_class(solver_name)
    _installed(cls)  # an optional solver that is not installed says so instead of failing
    accepted = [p for p in problems.names() if cls(cls.quick_params).skip(_small(p)) is None]
    assert accepted, f"{solver_name} declines every registered problem"


@pytest.mark.parametrize("solver_name", solvers.names())
def test_solver_declares_its_kind_and_parameters(solver_name):
    cls = solvers.solver_class(solver_name)
    specs = cls.Params.param_specs()
    assert specs, "a solver declares its parameters"
    assert all(spec.doc for spec in specs.values())
    cls(cls.quick_params)
    with pytest.raises(ValueError, match="unknown parameter"):
        cls({"no_such_parameter": 1})
    if cls.budget_param is not None:
        # a budget is training seconds, checkpointed along the way
        assert cls.budget_param in specs and cls.anytime == "checkpoints"
    if cls.anytime == "ladder":
        assert cls().ladder(), "a ladder has coarser rungs"


@pytest.mark.parametrize("solver_name", solvers.names())
def test_steps_out_of_order_are_clear_errors(solver_name):
    cls = solvers.solver_class(solver_name)
    solver = cls(cls.quick_params)
    with pytest.raises(SolverStateError, match="before a successful run"):
        solver.evaluate()
    with pytest.raises(SolverStateError, match="before setup"):
        solver.run(FreeClock())


def test_quick_profile_runs_every_solver_and_problem_with_their_quick_params():
    """The CI smoke profile covers the registries: every registered solver with its own
    ``quick_params`` (so the profile and the class cannot drift apart) and every problem."""
    quick = profiles.load("quick").data
    assert sorted(quick["solvers"]) == sorted(solvers.names())
    assert sorted(quick["problems"]) == sorted(problems.names())
    for name, entry in quick["solvers"].items():
        assert entry.get("params", {}) == solvers.solver_class(name).quick_params, name
