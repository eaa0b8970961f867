"""The t-VMC solver (solvers/tvmc/solver.py, NetKet in its own process): parameters, declines,
the ladder, the isolation of JAX, a small run through the harness at its statistical floors and
the budget; slow acceptance checks of the issue (bosons d = 2 with the Hermite ansatz against
the grid reference, the 1-D packets with the Gaussian ansatz at their floors) are marked.

Tests that run need NetKet (``pip install 'dsm-bench[tvmc]'``) and skip with that reason
without it; the parameter and ladder tests do not.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import problems
import solvers
from core import ParameterError
from harness.runner import RunRequest, execute, plan
from solvers.base import FreeClock
from solvers.tvmc import TVMC
from solvers.tvmc.solver import memory_estimate_gb

needs_netket = pytest.mark.skipif(TVMC.missing_extra() is not None,
                                  reason=str(TVMC.missing_extra()))
#: A Gaussian-ansatz run that compiles and evolves in seconds.
SMALL = dict(ansatz="gaussian", samples=1024, chains=256, obs_samples=8192, fit_samples=1024,
             ladder="none")


def _metric_at_floor(metrics: dict, name: str, slack: float = 1.0) -> None:
    """``name`` lies below the top of its floor's band (times ``slack``): what exact samples of
    the same effective size reach with probability ~99.95 %."""
    hi = metrics[f"{name}_floor_hi"]
    assert metrics[name] <= slack * hi, (name, metrics[name], metrics[f"{name}_floor"], hi)


# --- parameters, declines, ladder (no NetKet needed) ----------------------------------------
def test_registered_with_its_contract():
    cls = solvers.solver_class("tvmc")
    assert cls is TVMC and cls.extra == "tvmc" and cls.anytime == "ladder"
    # no training budget: its cost is a whole evolution (a ladder), max_seconds only caps it
    assert cls.budget_param is None and "max_seconds" in cls.Params.param_specs()


def test_bad_parameters_are_clear_errors():
    with pytest.raises(ParameterError, match="multiple of chains"):
        TVMC({"samples": 1000, "chains": 512})
    with pytest.raises(ParameterError, match="obs_samples=1000 must be a multiple"):
        TVMC({"obs_samples": 1000})
    with pytest.raises(ParameterError, match="ladder_fractions"):
        TVMC({"ladder_fractions": "0.5,2"})
    with pytest.raises(ParameterError, match="comma-separated"):
        TVMC({"ladder_fractions": "half"})
    with pytest.raises(ValueError, match="ansatz"):
        TVMC({"ansatz": "rbm"})


def test_ladder_scales_samples_and_record_samples():
    rungs = TVMC().ladder()
    assert rungs == [{"samples": 2048, "obs_samples": 8192},
                     {"samples": 4096, "obs_samples": 16384}]
    # whole samples per chain, repeated rungs dropped, none when asked for none
    assert TVMC({"samples": 512, "chains": 256, "obs_samples": 1024}).ladder() == [
        {"samples": 256, "obs_samples": 256}, {"samples": 256, "obs_samples": 512}]
    assert TVMC({"samples": 256, "chains": 256, "obs_samples": 256}).ladder() == []
    assert TVMC({"ladder": "none"}).ladder() == []


def test_settings_mirror_the_engine():
    s = TVMC({"ansatz": "neural", "width": 8, "depth": 3, "energy_samples": 0}).settings()
    assert s["hidden"] == [8, 8, 8] and s["n_samples_energy"] is None
    assert s["scale_one"] is None and s["n_samples"] == 8192 and s["n_chains"] == 1024


def test_memory_estimate_grows_with_d():
    p = TVMC().params
    est = [memory_estimate_gb(problems.get("bosons", d=d), p) for d in (2, 4, 8, 16)]
    assert all(a < b for a, b in zip(est, est[1:]))
    chunked = TVMC({"chunk_size": 1024}).params
    assert memory_estimate_gb(problems.get("bosons", d=16), chunked) < est[-1]


@needs_netket
def test_declines_what_it_cannot_do():
    reason = TVMC().skip(problems.get("superposition"))
    assert reason and "node" in reason
    reason = TVMC().skip(problems.get("bosons", d=64))
    assert reason and "memory_limit_gb" in reason and "chunk_size" in reason
    assert TVMC().skip(problems.get("bosons", d=2)) is None
    assert TVMC({"ansatz": "gaussian"}).skip(problems.get("harmonic_1d")) is None


# --- runs -----------------------------------------------------------------------------------
@needs_netket
def test_small_run_through_the_harness_is_at_its_floors(tmp_path):
    """The Gaussian ansatz holds the exact packet: a short run's mean and variance errors are
    the Monte Carlo floor of its effective sample size (a sign or factor error in the
    generator would put them far above), with the ladder's coarser rungs as anytime points."""
    params = dict(SMALL, ladder="samples", ladder_fractions="0.25")
    run = plan(RunRequest(problem="harmonic_1d_moving", solver="tvmc", solver_params=params,
                          problem_params={"t_final": 0.5}, n_times=11))
    rec = execute(run, tmp_path)
    assert rec["status"] == "ok", rec["reason"]
    m = rec["metrics"]
    assert rec["observables"]["floor_kind"] == "exact_draws_at_effective_size"
    for name in ("mean_rel_l2", "var_rel_l2", "com_var_err", "w1_mean"):
        _metric_at_floor(m, name)
    assert m["var_rel_l2_floor"] < 0.05  # a floor that means something
    assert abs(m["energy_err"]) < 0.02
    diag = rec["diagnostics"]
    assert diag["worker"]["worker_pid"] != os.getpid()  # NetKet ran in its own process
    assert diag["fit_residual"] < 1e-9 and diag["complete"] and diag["steps"] == 50
    ess = np.asarray(diag["ess"])
    assert np.all((ess > 100) & (ess <= SMALL["obs_samples"]))
    assert rec["timing"]["iterations"] == 50 and rec["timing"]["train_s"] > 0
    # one coarser rung (a quarter of the samples), then the run itself
    points = rec["anytime"]
    assert [p.get("params") for p in points] == [{"samples": 256, "obs_samples": 2048}, None]
    assert rec["anytime_info"]["kind"] == "ladder"
    assert points[0]["metrics"]["var_rel_l2"] > 0


@pytest.mark.slow  # a JAX process stopped by its budget: 10 s
@needs_netket
def test_budget_stops_the_evolution_with_a_clear_error():
    p = problems.get("harmonic_1d")
    solver = TVMC(dict(SMALL, max_seconds=0.5, obs_samples=32768))
    solver.setup(p, times=np.linspace(0.0, p.t_final, 401), seed=0)
    with pytest.raises(TimeoutError, match=r"max_seconds=0.5 spent at t=.* record times"):
        solver.run(FreeClock())


# --- slow: the acceptance -------------------------------------------------------------
def _harness(problem: str, solver_params: dict, **problem_params) -> dict:
    run = plan(RunRequest(problem=problem, solver="tvmc", problem_params=problem_params,
                          solver_params=dict(solver_params, ladder="none")))
    rec = execute(run, None)
    assert rec["status"] == "ok", rec["reason"]
    print(f"\n{problem} {problem_params}:", {k: round(v, 4) for k, v in rec["metrics"].items()
                                          if not k.endswith(("_lo", "_hi"))},
          "train_s", round(rec["timing"]["train_s"], 1),
          "worker peak MB", round(rec["diagnostics"]["worker_peak_rss_mb"]))
    return rec


@pytest.mark.slow
@needs_netket
def test_hermite_bosons_d2_against_the_grid():
    """bosons d = 2 (fixed g), Hermite ansatz at its defaults: var_rel_l2 <= 0.05 against the
    split-operator reference and com_var_err <= 0.05 against hbar / (2 d m omega)."""
    rec = _harness("bosons", {}, d=2)
    m = rec["metrics"]
    assert m["var_rel_l2"] <= 0.05
    assert m["com_var_err"] <= 0.05
    assert np.isfinite(m["pair_w1_mean"]) and m["pair_w1_mean"] < 0.05


@pytest.mark.slow
@needs_netket
@pytest.mark.parametrize("name", ["harmonic_1d", "harmonic_1d_moving"])
def test_gaussian_packets_at_their_floors(name):
    """The Gaussian ansatz is exact for these packets: over the whole time grid the mean and
    variance errors lie within the floors' bands."""
    m = _harness(name, {"ansatz": "gaussian"})["metrics"]
    for metric in ("mean_rel_l2", "var_rel_l2", "com_var_err", "w1_mean"):
        _metric_at_floor(m, metric)
