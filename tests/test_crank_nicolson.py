"""Crank–Nicolson against the exact packets, its convergence order, and the boson invariants."""

import numpy as np
import pytest

import problems
from solvers.base import FreeClock
import solvers
from harness.metrics import rel_l2
from problems.grid import GridSettings, plan_grid, propagate

TIMES = np.linspace(0.0, 1.0, 51)


def _solve(problem, times=TIMES, **params):
    solver = solvers.get("crank_nicolson", **params)
    assert solver.skip(problem) is None
    solver.setup(problem, times=times * problem.t_final)
    solver.run(FreeClock())
    return solver.evaluate()


def _errors(problem, obs):
    ref = problem.reference()
    times = obs.times
    return rel_l2(obs.mean, ref.mean(times)), rel_l2(obs.var, ref.var(times))


@pytest.mark.parametrize("name, overrides", [
    ("harmonic_1d", {}),
    ("harmonic_1d_moving", {}),
    ("harmonic_1d", {"omega": 2.0, "hbar": 0.05}),
    ("harmonic_1d_moving", {"omega": 0.5, "sigma2": 0.02, "mass": 2.0}),
    ("harmonic_nd", {"d": 1, "omega": 0.0, "phase": 3.0}),
])
def test_defaults_agree_with_the_exact_packet(name, overrides):
    p = problems.get(name, **overrides)
    obs = _solve(p)
    mean_err, var_err = _errors(p, obs)
    assert mean_err < 1e-3 and var_err < 1e-3
    assert obs.diagnostics["max_norm_drift"] < 1e-8
    assert obs.diagnostics["max_wall_mass"] < 1e-5
    assert np.ptp(obs.energy) / obs.energy[0] < 1e-8  # CN conserves the discrete energy
    assert obs.energy[0] == pytest.approx(p.exact_energy(), rel=1e-4)


def test_singular_packet_spreads_as_the_exact_solution():
    p = problems.get("singular_1d")
    obs = _solve(p)
    ref = p.reference()
    assert rel_l2(obs.var, ref.var(obs.times)) < 1e-3
    assert np.max(np.abs(obs.mean)) < 1e-10


def test_second_order_convergence_when_grid_and_step_are_halved():
    """With the 2nd-order stencil the whole scheme is 2nd order: halving h and dt divides the
    error by about 4."""
    p = problems.get("harmonic_1d_moving")
    hint = p.grid_hint()
    errors = []
    for n, dt in ((300, 4e-3), (600, 2e-3), (1200, 1e-3)):
        # keep the box fixed while refining: n interior points, spacing (hi - lo) / (n + 1)
        settings = GridSettings(lo=hint.lo, hi=hint.hi, n=n, dt=dt, order=2)
        sol = propagate(p, settings, TIMES)
        errors.append(rel_l2(sol.var, p.reference().var(TIMES)))
    ratios = [errors[0] / errors[1], errors[1] / errors[2]]
    assert all(3.3 < r < 4.7 for r in ratios), (errors, ratios)


def test_higher_order_stencil_and_resolution_parameter_reduce_the_error():
    p = problems.get("harmonic_1d")
    coarse = _errors(p, _solve(p, points_per_wavelength=2.0, phase_step=0.03))[1]
    fine = _errors(p, _solve(p, points_per_wavelength=2.0, phase_step=0.03, resolution=2.0))[1]
    assert fine < coarse / 3


def test_direct_and_iterative_solves_agree_in_2d():
    p = problems.get("harmonic_nd", d=2, t_final=0.3, hbar=0.05)
    base = plan_grid(p, points_per_wavelength=3.0, phase_step=0.02, order=4)
    times = np.linspace(0, 0.3, 7)
    a = propagate(p, GridSettings(base.lo, base.hi, 48, base.dt, 4, "splu"), times)
    b = propagate(p, GridSettings(base.lo, base.hi, 48, base.dt, 4, "bicgstab", rtol=1e-12), times)
    assert np.allclose(a.var, b.var, rtol=1e-9)
    assert np.allclose(a.mean, b.mean, atol=1e-12)
    assert np.allclose(a.marginal_density, b.marginal_density, atol=1e-9)


def test_2d_packet_matches_exact_solution_per_coordinate():
    p = problems.get("harmonic_nd", d=2, phase=-2.0, t_final=0.5)
    obs = _solve(p, points_per_wavelength=3.0, phase_step=0.02)
    mean_err, var_err = _errors(p, obs)
    assert mean_err < 3e-3 and var_err < 3e-3
    assert np.allclose(obs.mean[:, 0], obs.mean[:, 1], rtol=1e-8)  # isotropy survives
    assert np.allclose(obs.com_var, p.reference().com_var(obs.times), rtol=3e-3)


def test_bosons_keep_their_invariants():
    p = problems.get("bosons", d=2)
    obs = _solve(p, times=np.linspace(0, 1, 26))
    inv = p.invariants()
    assert np.max(np.abs(obs.com_var - inv.com_var)) / inv.com_var < 1e-3
    assert np.max(np.abs(obs.mean)) < 1e-6
    assert obs.energy[0] == pytest.approx(inv.energy, rel=1e-4)
    assert np.ptp(obs.energy) / obs.energy[0] < 1e-6
    # the repulsion pushes the particles apart: each coordinate spreads beyond the trap's width
    assert obs.var[-1, 0] > 2 * obs.var[0, 0]


def test_marginal_cdf_is_a_distribution():
    p = problems.get("harmonic_1d_moving")
    obs = _solve(p, points_per_wavelength=2.5, phase_step=0.03)
    hint = p.grid_hint()
    x = np.linspace(hint.lo[0] - 1, hint.hi[0] + 1, 400)
    cdf = obs.marginal_cdf(0, x)
    assert cdf.shape == (len(TIMES), 400)
    assert np.all(np.diff(cdf, axis=1) >= -1e-15)
    assert np.allclose(cdf[:, 0], 0) and np.allclose(cdf[:, -1], 1)
    exact = p.reference().marginal_cdf(0, x, TIMES)
    assert np.max(np.abs(cdf - exact)) < 0.02


def test_declines_high_dimensions_and_oversized_grids():
    cn = solvers.get("crank_nicolson")
    reason = cn.skip(problems.get("harmonic_nd", d=4))
    assert reason and "d <= 3" in reason
    tight = solvers.get("crank_nicolson", memory_limit_gb=0.001)
    reason = tight.skip(problems.get("harmonic_nd", d=2))
    assert reason and "memory_limit_gb" in reason


def test_time_limit_stops_the_solve():
    cn = solvers.get("crank_nicolson")
    p = problems.get("harmonic_nd", d=2)
    cn.setup(p, times=TIMES, budget=solvers.Budget(seconds=1e-3))
    with pytest.raises(TimeoutError, match="time limit"):
        cn.run(FreeClock())


def test_rejects_bad_time_grids():
    p = problems.get("harmonic_1d")
    s = plan_grid(p, points_per_wavelength=2, phase_step=0.05, order=4)
    for bad in (np.array([]), np.array([0.5, 0.2]), np.array([-0.1, 0.5])):
        with pytest.raises(ValueError, match="times"):
            propagate(p, s, bad)
