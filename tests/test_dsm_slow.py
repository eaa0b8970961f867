"""DSM accuracy with the solver's defaults (minutes each): python -m pytest -m slow."""

import pytest

from harness.runner import RunRequest, execute, plan

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("problem", ["harmonic_1d", "harmonic_1d_moving"])
def test_default_dsm_meets_the_accuracy_bars(problem, tmp_path):
    """The bars of the DSM issue for one seed: var_rel_l2 <= 0.02 and
    mean_rel_l2 <= max(0.05, 1.5 x the statistical floor of the mean)."""
    rec = execute(plan(RunRequest(problem=problem, solver="dsm", seed=0)), tmp_path)
    assert rec["status"] == "ok", rec["reason"]
    m = rec["metrics"]
    assert m["var_rel_l2"] <= 0.02, m
    assert m["mean_rel_l2"] <= max(0.05, 1.5 * m["mean_floor"]), m
    assert rec["timing"]["train_s"] <= 330  # the default budget is 5 minutes of training
