"""Slow accuracy checks (minutes): run with ``python -m pytest -m slow``."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.interpolate import CubicSpline

import problems
import solvers
from solvers.base import FreeClock
from harness.metrics import rel_l2
from problems.grid import plan_grid, propagate
from problems.grid.reference import DEFAULT_SETTINGS

REFERENCE_GRID = DEFAULT_SETTINGS["crank_nicolson"]

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def test_2d_packet_from_the_command_line_with_defaults(tmp_path):
    res = subprocess.run([sys.executable, "-m", "harness", "run", "--problem", "harmonic_nd",
                          "--solver", "crank_nicolson", "--set", "problem.d=2",
                          "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    rec = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert rec["metrics"]["mean_rel_l2"] < 1e-3 and rec["metrics"]["var_rel_l2"] < 1e-3
    assert rec["diagnostics"]["grid"]["linear_solver"] == "bicgstab"


def test_boson_reference_is_converged():
    """The cached reference's grid against one twice as fine in space and four times in time."""
    p = problems.get("bosons", d=2)
    times = np.linspace(0, 1, 51)
    ref = propagate(p, plan_grid(p, **REFERENCE_GRID), times)
    fine = propagate(p, plan_grid(p, points_per_wavelength=2 * REFERENCE_GRID["points_per_wavelength"],
                                  phase_step=REFERENCE_GRID["phase_step"] / 4, order=8, rtol=1e-11),
                     times)
    assert rel_l2(ref.var, fine.var) < 1e-4
    # final marginal density, the fine one interpolated (cubic: interpolation error ~h^4)
    fine_on_ref = CubicSpline(fine.marginal_x[0], fine.marginal_density[-1, 0])(ref.marginal_x[0])
    coarse = ref.marginal_density[-1, 0]
    assert np.max(np.abs(coarse - fine_on_ref)) < 1e-3 * np.max(coarse)


def test_three_bosons_keep_their_invariants():
    p = problems.get("bosons", d=3)
    cn = solvers.get("crank_nicolson")
    assert cn.skip(p) is None
    cn.setup(p, times=np.linspace(0, 1, 11))
    cn.run(FreeClock())
    obs = cn.evaluate()
    inv = p.invariants()
    assert np.max(np.abs(obs.com_var - inv.com_var)) / inv.com_var < 1e-3
    assert np.max(np.abs(obs.mean)) < 1e-6
    assert obs.energy[0] == pytest.approx(inv.energy, rel=1e-4)
    assert np.ptp(obs.energy) / obs.energy[0] < 1e-6
