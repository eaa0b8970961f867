"""DSM's defaults on packets no other test uses (python -m pytest -m slow).

The defaults are derived from each problem's own scales (time grid from Problem.time_scale, the
velocity scale, the time feature), so a user's first run on their own parameters should be as
good as on the presets.  A seeded random family of Gaussian packets, d = 1 and 2, each run once
through the harness with DSM's defaults (one thread each, two at a time, at most 300 s of
training each): the median var_rel_l2 must be <= 0.03 and the worst <= 0.06 against the exact
packets.  The cheap, hard members run first, so that a family that fails is known after one pair.
"""

import json
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import problems

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
#: d of the family's members (the seed below draws the rest); four, so that the slow job stays
#: within CI's limit (two at a time: about two default trainings' time).
DIMS = (1, 1, 1, 2)
#: training seconds per member at most (see _run)
MAX_SECONDS = 300
#: the family's bars on var_rel_l2: its median and its worst member
MEDIAN, WORST = 0.03, 0.06


def family(seed: int = 20261202) -> list[dict]:
    """The packets: omega in [0.5, 3], hbar log-uniform in [0.005, 0.1], sigma2 log-uniform in
    [0.03, 0.3] and phase in [-3, 3] (in units of the packet's own wavenumber scale 1/sigma), the
    trap centre in [-0.2, 0.2]."""
    rng = np.random.default_rng(seed)
    out = []
    for d in DIMS:
        sigma2 = float(np.exp(rng.uniform(np.log(0.03), np.log(0.3))))
        out.append({
            "d": d, "omega": float(rng.uniform(0.5, 3.0)),
            "hbar": float(np.exp(rng.uniform(np.log(0.005), np.log(0.1)))),
            "sigma2": sigma2, "phase": float(rng.uniform(-3, 3) / np.sqrt(sigma2)),
            "center": float(rng.uniform(-0.2, 0.2)),
        })
    return out


def _problem(params: dict) -> tuple[str, dict]:
    """The registered problem of a member and its parameters (harmonic_1d fixes d = 1)."""
    problem = "harmonic_1d" if params["d"] == 1 else "harmonic_nd"
    return problem, {k: v for k, v in params.items() if not (k == "d" and problem == "harmonic_1d")}


def _run(index: int, params: dict, out: Path) -> dict:
    problem, kw = _problem(params)
    sets = [f"problem.{k}={v!r}" for k, v in kw.items()]
    # 3000 iterations or 300 s of training, whichever comes first: the 5 minutes per run that
    # the defaults' 3000 iterations take on the presets (tests/test_dsm_slow.py); members with a
    # fine time grid would otherwise train for up to 11 minutes each (measured in CI: 1382 s
    # for the four, two at a time)
    cmd = [sys.executable, "-m", "harness", "run", "--problem", problem, "--solver", "dsm",
           "--threads", "1", "--set", f"solver.max_seconds={MAX_SECONDS}",
           "--out", str(out / str(index))]
    for s in sets:
        cmd += ["--set", s]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    (rec,) = [json.loads(p.read_text()) for p in (out / str(index)).glob("*.json")
              if not p.name.endswith(".history.json")]
    return rec


def squeeze(params: dict) -> float:
    """How far the exact variance of a member breathes: max over min of Var(x0) on [0, t_final]
    (the wide packets in a stiff trap, whose variance DSM lags, are the hard members)."""
    name, kw = _problem(params)
    p = problems.get(name, **kw)
    var = p.reference().var(np.linspace(0, p.t_final, 201))[:, 0]
    return float(var.max() / var.min())


@pytest.mark.xfail(strict=True, reason=(
    "measured 2026-12-02: the third member (omega 2.43, hbar 0.080, sigma2 0.085: a packet 5x "
    "wider than the trap's ground state, whose variance breathes down 20x to 0.0042 at t = 0.6 "
    "and back) reached var_rel_l2 = 0.29 after 800 iterations: DSM's variance lags the squeeze "
    "(0.021 at t = 0.6) and does not come back; measured in CI 2026-12-03: 0.26 for it and 31.6 "
    "for the fourth (d = 2, hbar 0.0082, its variance breathing 5810x); open in the "
    "DSM-defaults issue.  strict: this "
    "fails as soon as DSM's defaults pass, so the mark must then go"))
def test_default_dsm_holds_across_the_packet_family(tmp_path):
    """Members run cheap and hard first (lower d first, then by :func:`squeeze`), two at a time;
    once a member of a pair is above the worst bar the family cannot pass, so the pairs not
    yet started are left out (a failing family costs one pair of trainings, a passing one
    two)."""
    members = sorted(enumerate(family()), key=lambda m: (m[1]["d"], -squeeze(m[1])))
    done = []
    with ThreadPoolExecutor(2) as pool:
        for pair in (members[k:k + 2] for k in range(0, len(members), 2)):
            recs = list(pool.map(lambda im: _run(im[0], im[1], tmp_path), pair))
            done += [(m, r) for (_, m), r in zip(pair, recs)]
            if any(r["status"] != "ok" or r["metrics"]["var_rel_l2"] > WORST for r in recs):
                break
    table = [(m, r["status"], round(r["metrics"].get("var_rel_l2", float("nan")), 4),
              round(r["metrics"].get("var_rel_l2_floor", float("nan")), 4)) for m, r in done]
    assert all(r["status"] == "ok" for _, r in done), [r["reason"] for _, r in done]
    errors = [r["metrics"]["var_rel_l2"] for _, r in done]
    assert max(errors) <= WORST, table  # so every pair ran
    assert statistics.median(errors) <= MEDIAN, table
