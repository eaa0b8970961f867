"""Every registered solver on every registered problem: it either declines with a reason or
returns observables of the right shapes on the requested time grid (benchopt's approach)."""

import numpy as np
import pytest

import problems
import solvers
from solvers.base import Observables

PAIRS = [(s, p) for s in solvers.names() for p in problems.names()]


def _small(problem_name):
    cls = problems.problem_class(problem_name)
    kw = {"t_final": 0.2}
    if not cls.param_specs()["d"].fixed:
        kw["d"] = 2
    return problems.get(problem_name, **kw)


@pytest.mark.parametrize("solver_name, problem_name", PAIRS)
def test_solver_contract(solver_name, problem_name):
    cls = solvers.solver_class(solver_name)
    solver = cls(cls.quick_params)
    problem = _small(problem_name)
    reason = solver.skip(problem)
    if reason is not None:
        assert isinstance(reason, str) and reason
        return
    times = np.linspace(0, problem.t_final, 5)
    solver.setup(problem, times=times, device="cpu", seed=1)
    solver.run()
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
    accepted = [p for p in problems.names() if cls(cls.quick_params).skip(_small(p)) is None]
    assert accepted, f"{solver_name} declines every registered problem"


@pytest.mark.parametrize("solver_name", solvers.names())
def test_solver_params_are_declared_and_validated(solver_name):
    cls = solvers.solver_class(solver_name)
    specs = cls.Params.param_specs()
    assert specs, "a solver declares its parameters"
    assert all(spec.doc for spec in specs.values())
    cls(cls.quick_params)
    with pytest.raises(ValueError, match="unknown parameter"):
        cls({"no_such_parameter": 1})
