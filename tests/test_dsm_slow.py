"""DSM accuracy with the solver's defaults (3000 iterations per seed): python -m pytest -m slow.

The DSM issue's bars are over seeds 0, 1, 2, run as the acceptance command runs them: through the
harness's own process pool, both packets x three seeds, two runs at a time, one thread each.

The mean is judged in two ways, because its metric is mostly sampling noise:

* harmonic_1d's mean moves by 0.046 in all while the packet's width is 0.32, so 40000 paths give
  mean_rel_l2 a floor of 0.043 with a wide, skewed spread (its band is [0.003, 0.55]).  An
  earlier bar, "median over the seeds <= max(0.05, 1.5 x floor)", was failed by *exact* paths
  with probability 0.20 per packet (400 repetitions of 40000 exact paths: P(one seed over the
  bar) = 0.29 for both packets), so it could not tell a bias from bad luck.  Each seed's
  mean_rel_l2 must instead lie inside its floor's band, which exact samples leave with a
  probability of about 0.1 % (see harness.floors).
* The bias itself is measured with common random numbers: the trained networks and the exact
  velocity field are each integrated from the same initial points with the same noise (DSM's own
  evaluation, stochastic Heun), so the sampling noise cancels in the difference of the two means
  and what is left is DSM's error.  Measured at the defaults (10000 paired paths, two noise
  streams each): 0.0004-0.0012 of the mean's norm on harmonic_1d, where the unpaired metric of
  the same paths read 0.027-0.098, and 0.009-0.011 on harmonic_1d_moving, where it read
  0.078-0.26.  The bias is 25-100 times below the noise of the metric the records hold.

Saving the final checkpoint (``checkpoint_every``) keeps the weights for the paired check; it
does not change the training.
"""

import json
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import problems
import solvers
from harness.metrics import rel_l2

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PROBLEMS = ("harmonic_1d", "harmonic_1d_moving")
PROFILE = """
description = "DSM with its defaults on the two 1-D packets, three seeds"
seeds = [0, 1, 2]
workers = 2
[solvers.dsm]
params = { checkpoint_every = 3000 }
[problems.harmonic_1d]
[problems.harmonic_1d_moving]
"""
#: paths of the paired (common random numbers) comparison: the noise cancels, so few suffice
PAIRED_SAMPLES = 10000


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dsm_defaults")
    profile = tmp / "dsm_defaults.toml"
    profile.write_text(PROFILE)
    out = tmp / "runs"
    res = subprocess.run([sys.executable, "-m", "harness", "run", "--all", "--profile", str(profile),
                          "--threads", "1", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    recs = [json.loads(p.read_text()) for p in out.glob("*.json")
            if not p.name.endswith(".history.json")]
    return out, {name: [r for r in recs if r["problem"]["name"] == name] for name in PROBLEMS}


def _summary(recs, *keys):
    return {k: [round(r["metrics"][k], 4) for r in recs] for k in keys}


@pytest.mark.parametrize("problem", PROBLEMS)
def test_default_dsm_meets_the_accuracy_bars(problem, runs):
    """Median var_rel_l2 over seeds 0, 1, 2 <= 0.02, and every seed's mean_rel_l2 inside the band
    that exact paths of the same size stay in (module docstring)."""
    recs = runs[1][problem]
    assert sorted(r["seed"] for r in recs) == [0, 1, 2]
    assert all(r["status"] == "ok" for r in recs), [r["reason"] for r in recs]
    summary = _summary(recs, "var_rel_l2", "mean_rel_l2", "mean_rel_l2_floor",
                       "mean_rel_l2_floor_hi")
    # the seconds are reported, not asserted: speed is measured by the benchmarks, and a unit
    # test's wall time depends on the machine it shares (CI measured 320-359 s per seed where a
    # quiet run took 267-273 s)
    print(f"\n{problem}:", summary, "train_s", [round(r["timing"]["train_s"]) for r in recs])
    assert statistics.median(r["metrics"]["var_rel_l2"] for r in recs) <= 0.02, summary
    for r in recs:
        m = r["metrics"]
        assert m["mean_rel_l2"] <= m["mean_rel_l2_floor_hi"], (r["seed"], summary)


class ExactField:
    """The reference's u and v in the place of DSM's twin network (the calls evaluation makes)."""

    def __init__(self, reference):
        self.reference = reference

    def __call__(self, xu, xv, t):
        t64 = t.double()
        return (self.reference.u(xu, t64).to(xu.dtype), self.reference.v(xv, t64).to(xv.dtype))

    def drift(self, x, t, nu):
        u, v = self(x, x, t)
        return v + nu * u, u


def _trained(out: Path, record):
    """The run's DSM, its final weights restored from the run's checkpoint."""
    problem = problems.get(record["problem"]["name"], **record["problem"]["params"])
    solver = solvers.get("dsm", **{**record["solver"]["params"], "resume": True})
    times = np.asarray(record["observables"]["times"], dtype=float)
    solver.setup(problem, times=times, seed=record["rng_seed"],
                 workdir=out / "work" / record["run_id"])
    assert solver.resumed_from == record["solver"]["params"]["iterations"], "no final checkpoint"
    return problem, solver, times


@pytest.mark.parametrize("problem", PROBLEMS)
def test_default_dsm_mean_has_no_bias_beyond_noise(problem, runs):
    """DSM's mean against the exact field's, on common random numbers: median relative L2 error
    of the difference over seeds 0, 1, 2 <= 0.05 (the DSM issue's bar for the mean)."""
    out, by_problem = runs
    paired, unpaired = [], []
    for record in by_problem[problem]:
        prob, solver, times = _trained(out, record)
        seed = record["rng_seed"] + 1  # a noise stream of its own, the same for both fields
        learned = solver._observe(PAIRED_SAMPLES, seed)
        exact = solver._observe(PAIRED_SAMPLES, seed, field=ExactField(prob.reference()))
        ref_mean = prob.moments(times)[0][:, None]
        paired.append(rel_l2(learned.mean - exact.mean + ref_mean, ref_mean))
        unpaired.append(rel_l2(learned.mean, ref_mean))
    summary = {"paired": [round(v, 4) for v in paired], "unpaired": [round(v, 4) for v in unpaired]}
    print(f"\n{problem} mean_rel_l2 ({PAIRED_SAMPLES} paths):", summary)
    assert statistics.median(paired) <= 0.05, summary
