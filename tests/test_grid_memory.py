"""The grid engines' memory estimates are not below the peaks measured in fresh processes
(slow: each case starts an interpreter and propagates a few million points)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
PROBE = Path(__file__).resolve().with_name("grid_memory_probe.py")
ROOT = PROBE.parent.parent


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("args", [
    ["crank_nicolson", "3", "129", "--steps", "20", "--times", "11"],
    ["crank_nicolson", "2", "1024", "--steps", "20", "--times", "11"],
    ["crank_nicolson", "4", "33", "--problem", "bosons"],
    ["split_operator", "3", "128", "--steps", "20", "--times", "11"],
    ["split_operator", "3", "128", "--order", "2", "--steps", "20", "--times", "11"],
    ["split_operator", "4", "48", "--problem", "bosons"],
    ["split_operator", "3", "128", "--problem", "forced_trap"],
], ids=lambda a: "-".join(a[:3] + a[4:5]))
def test_estimate_covers_the_measured_peak(args):
    env = {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, str(PROBE), *args], capture_output=True, text=True,
                         cwd=ROOT, env=env, timeout=170)
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout.strip().splitlines()[-1])
    print(row)
    assert row["hwm_reset"]
    assert row["estimate_bytes"] >= row["peak_added_bytes"], row
    # and not wildly above it either: the estimate decides what a run declines
    assert row["estimate_bytes"] < 2.5 * row["peak_added_bytes"], row
