"""Both grid engines on a time-dependent potential: the uniformly forced trap (exact solution in
tests/forced_trap.py).  The order of each scheme must survive the time dependence, which tests
that V is evaluated at the right (sub-)step times."""

import numpy as np
import pytest

import problems
import solvers
from harness.metrics import rel_l2
from problems.grid import plan, propagate
from solvers.base import FreeClock

from forced_trap import ForcedTrap

TIMES = np.linspace(0.0, 2.0, 5)  # few observations: the step is not limited by the time grid


def _mean_error(p, method, **options):
    s = plan(p, method, **options)
    sol = propagate(p, s, TIMES * p.t_final / 2.0)
    return rel_l2(sol.mean, p.reference().mean(sol.times)), sol


def test_the_exact_solution_solves_the_forced_oscillator():
    p = ForcedTrap()
    t = np.linspace(0, 2, 2001)
    mean, var, dmean, _ = p.moments(t)
    assert mean[0] == 0 and dmean[0] == pytest.approx(p.hbar * p.phase / p.mass)
    acc = np.gradient(dmean, t)
    force = p.force * np.sin(p.drive * t) / p.mass
    assert np.allclose(acc[5:-5], (-p.omega**2 * (mean - p.center) + force)[5:-5], atol=1e-4)
    assert np.allclose(np.gradient(mean, t)[5:-5], dmean[5:-5], atol=1e-5)
    undriven = super(ForcedTrap, p).moments(t)[1]
    assert np.array_equal(var, undriven)


@pytest.mark.parametrize("method, order, dts, expected", [
    ("split_operator", 2, (0.05, 0.025, 0.0125), 4.0),
    ("split_operator", 4, (0.1, 0.05, 0.025), 16.0),
    ("crank_nicolson", 8, (0.02, 0.01, 0.005), 4.0),
])
def test_order_survives_a_time_dependent_potential(method, order, dts, expected):
    p = ForcedTrap()
    ppw = 3.0 if method == "split_operator" else 6.0  # space converged beyond the time error
    errors = [_mean_error(p, method, points_per_wavelength=ppw, phase_step=0.1, order=order,
                          dt=dt, box_scale=1.5)[0] for dt in dts]
    ratios = [errors[0] / errors[1], errors[1] / errors[2]]
    assert all(0.8 * expected < r < 1.25 * expected for r in ratios), (errors, ratios)


def test_driven_packet_keeps_its_undriven_variance_in_2d():
    """2-D: the split-operator with its defaults and Crank–Nicolson's matrix-free path (a new
    diagonal at every step) both follow the exact driven means and the undriven variance."""
    p = ForcedTrap(d=2, t_final=1.0, phase=2.0)
    times = np.linspace(0, 1.0, 21)
    ref = p.reference()
    for name, params, tol in (("split_operator", {}, 1e-5),
                              ("crank_nicolson", {"points_per_wavelength": 3.0,
                                                  "phase_step": 0.02}, 2e-3)):
        solver = solvers.get(name, **params)
        assert solver.skip(p) is None
        solver.setup(p, times=times)
        solver.run(FreeClock())
        obs = solver.evaluate()
        assert rel_l2(obs.mean, ref.mean(times)) < tol, name
        assert rel_l2(obs.var, ref.var(times)) < tol, name
        assert obs.diagnostics["static_potential"] is False
    assert obs.diagnostics["grid"]["linear_solver"] == "bicgstab"


def test_crank_nicolson_refactorises_in_1d_only_when_v_changes():
    p = ForcedTrap(t_final=0.5)
    _, sol = _mean_error(p, "crank_nicolson", points_per_wavelength=3.0, phase_step=0.05,
                         order=4)
    assert sol.info["factorisations"] == sol.info["steps"]
    twin = problems.get("harmonic_nd", d=1, hbar=p.hbar, center=0.0, t_final=0.5)
    s = plan(twin, "crank_nicolson", points_per_wavelength=3.0, phase_step=0.05, order=4)
    assert propagate(twin, s, TIMES / 4).info["factorisations"] == 1
