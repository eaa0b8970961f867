"""The anytime contract: the harness's clock, its schedule, the points of a run's cost-accuracy
curve, and the statistical floors that the curve is read against."""

import json

import numpy as np
import pytest

import problems
from harness import floors, metrics
from harness.anytime import SCHEDULE_S, AnytimeClock
from harness.cli import main
from harness.runner import RunRequest, plan, run_record
from solvers.base import Observables


def _oracle(problem="harmonic_1d_moving", n_times=21, **params):
    run = plan(RunRequest(problem=problem, solver="fault_test", n_times=n_times,
                          solver_params=dict({"mode": "oracle"}, **params)))
    return run_record(run)[0]


def test_oracle_errors_lie_within_their_floors_band(fault_plugin):
    """Exact paths as a solver: every error that has a floor lies in the floor's band."""
    rec = _oracle(samples=2000)
    assert rec["status"] == "ok", rec["reason"]
    m = rec["metrics"]
    assert m["u_rel_l2"] == pytest.approx(0.0, abs=1e-12)
    assert m["v_rel_l2"] == pytest.approx(0.0, abs=1e-12)
    assert rec["observables"]["floor_kind"] == "exact_paths"
    banded = [k[: -len("_floor")] for k in m if k.endswith("_floor")]
    assert {"mean_rel_l2", "var_rel_l2", "com_var_err", "w1_mean", "w1_max", "energy_drift",
            "energy_err"} <= set(banded)
    for name in banded:
        assert m[f"{name}_floor_lo"] <= m[name] <= m[f"{name}_floor_hi"], name


def test_floors_are_calibrated_against_exact_paths():
    """The reported floor is the median of the metric for exact paths of the same size."""
    problem = problems.get("harmonic_1d_moving")
    ref = problem.reference()
    times = np.linspace(0, problem.t_final, 21)
    rs = metrics.ReferenceSeries(problem, ref, times)
    like = Observables(times=times, mean=np.zeros((21, 1)), var=np.ones((21, 1)),
                       com_var=np.ones(21), energy=np.ones(21), samples=np.zeros((21, 500, 1)),
                       n_samples=500, sample_kind="paths")
    wanted = ["mean_rel_l2", "var_rel_l2", "com_var_err", "w1_mean", "w1_max", "energy_drift"]
    found, kind = floors.floor_metrics(rs, like, {k: 0.0 for k in wanted}, seed=1)
    assert kind == "exact_paths"
    rng = np.random.default_rng(12345)
    draws = [metrics.point_metrics(rs, floors.exact_observables(rs, like, rng))
             for _ in range(80)]
    for name in wanted:
        median = float(np.median([d[name] for d in draws]))
        assert found[f"{name}_floor"] == pytest.approx(median, rel=0.2), name
        assert found[f"{name}_floor_lo"] < median < found[f"{name}_floor_hi"]


def test_paths_and_independent_draws_differ_where_correlation_matters():
    """A maximum over time of correlated errors is smaller than of independent ones: floors of
    paths are not floors of independent draws."""
    problem = problems.get("harmonic_1d")
    ref = problem.reference()
    times = np.linspace(0, 1, 101)
    rs = metrics.ReferenceSeries(problem, ref, times)
    obs = Observables(times=times, mean=np.zeros((101, 1)), var=np.ones((101, 1)),
                      com_var=np.ones(101), n_samples=1000, sample_kind="paths")
    paths, _ = floors.floor_metrics(rs, obs, {"com_var_err": 0.0}, seed=2)
    obs.sample_kind = "independent"
    indep, kind = floors.floor_metrics(rs, obs, {"com_var_err": 0.0}, seed=2)
    assert kind == "exact_draws"
    assert paths["com_var_err_floor"] < 0.8 * indep["com_var_err_floor"]


def test_evaluation_never_counts_as_training(fault_plugin):
    rec = _oracle(train_s=2.5, eval_sleep_s=0.3, samples=200)
    assert rec["status"] == "ok", rec["reason"]
    points = rec["anytime"]
    info = rec["anytime_info"]
    assert rec["timing"]["train_s"] == pytest.approx(2.5, abs=0.2)
    assert info["eval_s"] >= 0.3 * len(points)
    assert rec["timing"]["run_wall_s"] >= rec["timing"]["train_s"] + info["eval_s"] - 0.05
    train = [p["train_s"] for p in points]
    assert train == sorted(train) and len(train) >= 2
    assert points[-1]["train_s"] == pytest.approx(rec["timing"]["train_s"])
    assert all(p["metrics"] for p in points)


def _simulate(planned, train_s=60.0, step_s=0.1, eval_s=1.7):
    """A run on a fake timer: iterations of ``step_s``, each anytime evaluation ``eval_s``."""
    now = [0.0]
    taken = []

    def take(iteration, t):
        taken.append(t)
        now[0] += eval_s

    clock = AnytimeClock(take, planned=planned, timer=lambda: now[0])
    iteration = 0
    while clock.elapsed() < train_s:
        iteration += 1
        now[0] += step_s
        clock(iteration)
    clock.evaluate(iteration, clock.stop())  # the end of training, as the runner does
    return clock, taken


def test_anytime_evaluation_is_budgeted_against_the_planned_training():
    """DSM's default-profile case (60 s budget, 1.7 s a point): budgeted against the 60 s, the
    early points of the schedule are taken and the whole evaluation, the end's included, stays
    within 15 % of the training; budgeted against the seconds so far, the first point would
    block every other until 50 s."""
    clock, taken = _simulate(lambda i, t: 60.0)
    assert [round(t) for t in taken] == [1, 2, 5, 10, 60]
    assert clock.eval_s <= 0.15 * 60.0 and clock.planned_s == 60.0
    _, unplanned = _simulate(None)
    assert [round(t) for t in unplanned] == [1, 50, 60]
    # an iteration-limited run (3000 iterations of 0.1 s: 300 s planned) takes every point
    clock, taken = _simulate(lambda i, t: t * 3000 / i, train_s=300.0)
    assert [round(t) for t in taken] == [1, 2, 5, 10, 20, 50, 100, 200, 300]
    assert clock.planned_s == pytest.approx(300.0) and clock.eval_s <= 0.15 * 300.0


def test_every_solver_gets_the_same_schedule(fault_plugin):
    oracle = _oracle(train_s=2.2, samples=200)
    dsm = run_record(plan(RunRequest(problem="harmonic_1d", solver="dsm", n_times=21,
                                     solver_params={"iterations": 10**6, "max_seconds": 2.2,
                                                    "width": 16, "batch": 16, "steps": 20,
                                                    "points": 4, "anytime_samples": 200,
                                                    "eval_samples": 500, "eval_steps": 20})))[0]
    for rec in (oracle, dsm):
        assert rec["status"] == "ok", rec["reason"]
        info = rec["anytime_info"]
        assert info["schedule_s"] == [s for s in SCHEDULE_S if s <= rec["timing"]["train_s"]]
        # every point but the end is taken at (just after) a scheduled time: at the end of the
        # iteration that passed it (an iteration lasts longer on a loaded machine)
        step = rec["timing"].get("s_per_iter") or 0.0
        for p in rec["anytime"][:-1]:
            assert min(p["train_s"] - s for s in SCHEDULE_S if s <= p["train_s"]) < 0.5 + 2 * step


@pytest.mark.slow  # a real kill of a run's process: 10 s
def test_a_run_killed_between_checkpoints_leaves_no_record_of_its_own(fault_plugin, tmp_path):
    rc = main(["run", "--problem", "harmonic_1d", "--solver", "fault_test", "--set",
               "solver.mode=killtrain", "--set", "solver.train_s=20", "--set",
               "solver.samples=100", "--times", "11", "--out", str(tmp_path)])
    assert rc == 1
    (path,) = tmp_path.glob("*.json")
    rec = json.loads(path.read_text())
    assert rec["status"] == "failed" and rec["error"]["type"] == "WorkerCrash"
    assert rec["error"]["phase"] == "run" and "anytime" not in rec
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_grid_solver_records_its_ladder():
    rec = run_record(plan(RunRequest(problem="harmonic_1d", solver="crank_nicolson")))[0]
    points = [p for p in rec["anytime"] if "metrics" in p]
    assert rec["anytime_info"]["kind"] == "ladder" and len(points) >= 3
    errors = [p["metrics"]["var_rel_l2"] for p in points]
    assert errors == sorted(errors, reverse=True) and errors[-1] == rec["metrics"]["var_rel_l2"]
