"""DSM accuracy with the solver's defaults (3000 iterations per seed): python -m pytest -m slow.

The DSM issue's bars are medians over seeds 0, 1, 2; one seed alone is not the bar (measured
with two torch threads: seed 0 of harmonic_1d reached mean_rel_l2 = 0.14 against a bar of 0.12,
while the three seeds' median is 0.034).  So this runs what the acceptance command runs, through
the harness's own process pool: both packets x three seeds, two runs at a time, one thread each.
"""

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PROBLEMS = ("harmonic_1d", "harmonic_1d_moving")
PROFILE = """
description = "DSM with its defaults on the two 1-D packets, three seeds"
seeds = [0, 1, 2]
workers = 2
[solvers.dsm]
[problems.harmonic_1d]
[problems.harmonic_1d_moving]
"""


@pytest.fixture(scope="module")
def records(tmp_path_factory):
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
    return {name: [r for r in recs if r["problem"]["name"] == name] for name in PROBLEMS}


@pytest.mark.parametrize("problem", PROBLEMS)
def test_default_dsm_meets_the_accuracy_bars(problem, records):
    """The bars of the DSM issue over seeds 0, 1, 2: median var_rel_l2 <= 0.02 and median
    mean_rel_l2 <= max(0.05, 1.5 x the median statistical floor of the mean)."""
    recs = records[problem]
    assert sorted(r["seed"] for r in recs) == [0, 1, 2]
    assert all(r["status"] == "ok" for r in recs), [r["reason"] for r in recs]
    median = lambda key: statistics.median(r["metrics"][key] for r in recs)  # noqa: E731
    summary = {k: [round(r["metrics"][k], 4) for r in recs]
               for k in ("var_rel_l2", "mean_rel_l2", "mean_rel_l2_floor")}
    # the seconds are reported, not asserted: speed is measured by the benchmarks, and a unit
    # test's wall time depends on the machine it shares (CI measured 320-359 s per seed where a
    # quiet run took 267-273 s)
    print(f"\n{problem}:", summary, "train_s", [round(r["timing"]["train_s"]) for r in recs])
    assert median("var_rel_l2") <= 0.02, summary
    assert median("mean_rel_l2") <= max(0.05, 1.5 * median("mean_rel_l2_floor")), summary
