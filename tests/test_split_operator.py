"""The split-operator engine and solver: exact packets, spectral accuracy, orders, the ladder."""

import math
import time

import numpy as np
import pytest

import problems
import solvers
from harness.metrics import abs_rms, rel_l2
from problems.grid import SplitSettings, plan_split_grid, propagate
from problems.grid.march import step_plan
from solvers.base import FreeClock

TIMES = np.linspace(0.0, 1.0, 101)


def _solve(problem, times=TIMES, **params):
    solver = solvers.get("split_operator", **params)
    assert solver.skip(problem) is None
    solver.setup(problem, times=times * problem.t_final)
    solver.run(FreeClock())
    return solver, solver.evaluate()


def _errors(problem, obs):
    """The harness's terms: relative L2 per coordinate (abs RMS for an identically zero mean)."""
    ref = problem.reference()
    ref_mean = ref.mean(obs.times)
    mean_err = (rel_l2(obs.mean, ref_mean) if np.max(np.abs(ref_mean)) > 0
                else abs_rms(obs.mean, ref_mean))
    return mean_err, rel_l2(obs.var, ref.var(obs.times))


@pytest.mark.parametrize("name, overrides", [
    ("harmonic_1d", {}),
    ("harmonic_1d_moving", {}),
    ("singular_1d", {}),
    ("harmonic_nd", {"d": 2}),
])
def test_defaults_reach_1e5_on_the_exact_packets(name, overrides):
    p = problems.get(name, **overrides)
    _, obs = _solve(p)
    mean_err, var_err = _errors(p, obs)
    assert mean_err < 1e-5 and var_err < 1e-5, (mean_err, var_err)
    assert obs.diagnostics["max_norm_drift"] < 1e-12  # every sub-step is unitary
    assert obs.diagnostics["max_wall_mass"] < 1e-5
    assert obs.energy[0] == pytest.approx(p.exact_energy(), rel=1e-5)
    # the splitting conserves a modified energy: <H> drifts only at the splitting error
    assert np.ptp(obs.energy) / obs.energy[0] < 1e-6
    if p.d == 2:
        assert np.allclose(obs.mean[:, 0], obs.mean[:, 1], rtol=1e-10, atol=1e-14)
        assert np.allclose(obs.com_var, p.reference().com_var(obs.times), rtol=1e-5)
        pair = obs.pair_distance_cdf(np.array([-0.5, 0.0, 0.5]))
        assert np.allclose(pair, p.reference().pair_cdf(np.array([-0.5, 0.0, 0.5]), obs.times),
                           atol=1e-5)


@pytest.mark.slow
def test_three_dimensional_packet_with_defaults():
    """The acceptance case: harmonic_nd d=3 to 1e-5 (the README reports its time)."""
    p = problems.get("harmonic_nd", d=3)
    started = time.perf_counter()
    _, obs = _solve(p)
    seconds = time.perf_counter() - started
    mean_err, var_err = _errors(p, obs)
    print(f"harmonic_nd d=3: mean {mean_err:.2e}, var {var_err:.2e}, {seconds:.1f} s")
    # its seconds are printed, not asserted: speed is the benchmarks' to measure (the README's
    # split-operator section reports them from a record)
    assert mean_err < 1e-5 and var_err < 1e-5


def test_spectral_convergence_in_space():
    """At a step too small to matter, the error falls by orders of magnitude as the spacing
    approaches and passes the Nyquist spacing pi / k_max (points_per_wavelength 2)."""
    p = problems.get("harmonic_1d_moving")
    errors = []
    for ppw in (1.4, 1.7, 2.0):
        s = plan_split_grid(p, points_per_wavelength=ppw, phase_step=0.1, order=4,
                            box_scale=1.4)
        errors.append(rel_l2(propagate(p, s, TIMES).var, p.reference().var(TIMES)))
    assert errors[0] > 20 * errors[1] > 400 * errors[2], errors


@pytest.mark.parametrize("order, dts, expected", [
    (2, (0.05, 0.025, 0.0125), 4.0),
    (4, (0.05, 0.025, 0.0125), 16.0),
])
def test_error_falls_at_the_splitting_order(order, dts, expected):
    """Halving dt on a fixed, spectrally converged grid divides the error by 2^order."""
    p = problems.get("harmonic_1d_moving")
    times = np.linspace(0, 1, 5)  # few observations: the step is not limited by the time grid
    errors = []
    for dt in dts:
        s = plan_split_grid(p, points_per_wavelength=3.0, phase_step=0.1, order=order,
                            dt=dt, box_scale=1.5)
        errors.append(rel_l2(propagate(p, s, times).mean, p.reference().mean(times)))
    ratios = [errors[0] / errors[1], errors[1] / errors[2]]
    assert all(0.8 * expected < r < 1.25 * expected for r in ratios), (errors, ratios)


def test_periodic_box_too_small_shows_in_the_wall_mass():
    p = problems.get("harmonic_1d_moving")
    s = plan_split_grid(p, points_per_wavelength=2.2, phase_step=0.4, order=4, box_scale=0.5)
    sol = propagate(p, s, TIMES)
    assert sol.info["max_wall_mass"] > 1e-3


def test_grid_size_is_fft_friendly_and_above_nyquist():
    import scipy.fft

    p = problems.get("harmonic_nd", d=2)
    s = plan_split_grid(p, points_per_wavelength=2.2, phase_step=0.4, order=4)
    assert s.n == scipy.fft.next_fast_len(s.n)
    assert math.pi / max(s.spacing) >= 1.1 * p.grid_hint().k_max * 0.999
    with pytest.raises(ValueError, match="order"):
        plan_split_grid(p, points_per_wavelength=2.2, phase_step=0.4, order=3)


def test_step_plan_snaps_linspace_gaps_to_one_step():
    plan = step_plan(np.linspace(0, 1, 101), 0.004)
    assert {dt for k, dt in plan if k} == {plan[1][1]} and plan[1][0] == 3
    assert plan[0] == (0, 0.0)


def test_solver_declines_high_dimensions_and_oversized_grids():
    so = solvers.get("split_operator")
    reason = so.skip(problems.get("harmonic_nd", d=5))
    assert reason and "d <= 4" in reason
    tight = solvers.get("split_operator", memory_limit_gb=0.001)
    reason = tight.skip(problems.get("harmonic_nd", d=2))
    assert reason and "memory_limit_gb" in reason
    assert so.skip(problems.get("harmonic_nd", d=4, t_final=0.1)) is None


def test_time_limit_stops_the_solve():
    so = solvers.get("split_operator")
    p = problems.get("harmonic_nd", d=2)
    so.setup(p, times=TIMES, budget=solvers.Budget(seconds=1e-4))
    with pytest.raises(TimeoutError, match="time limit"):
        so.run(FreeClock())


def test_workers_do_not_change_the_solution():
    p = problems.get("harmonic_nd", d=2, t_final=0.2)
    base = plan_split_grid(p, points_per_wavelength=2.2, phase_step=0.4, order=4)
    times = np.linspace(0, 0.2, 5)
    one = propagate(p, base, times)
    two = propagate(p, SplitSettings(base.lo, base.hi, base.n, base.dt, base.order, workers=2),
                    times)
    assert np.allclose(one.var, two.var, rtol=1e-13)
    assert base.identity() == SplitSettings(base.lo, base.hi, base.n, base.dt, base.order,
                                            workers=2).identity()


@pytest.mark.parametrize("solver_name", ["split_operator", "crank_nicolson"])
def test_ladder_gives_points_whose_error_falls_as_cost_rises(solver_name):
    """The rungs of ladder() and the solver's own settings: >= 3 cost-accuracy points, the
    error falling as the cost (grid points times steps) rises."""
    p = problems.get("harmonic_1d_moving")
    solver = solvers.get(solver_name)
    assert solver.anytime == "ladder"
    rungs = solver.ladder() + [{}]
    assert len(rungs) >= 3
    costs, errors = [], []
    for rung in rungs:
        s, obs = _solve(p, **rung)
        costs.append(s.settings.n ** p.d * obs.diagnostics["steps"])
        errors.append(max(_errors(p, obs)))
    assert all(a < b for a, b in zip(costs, costs[1:])), costs
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
