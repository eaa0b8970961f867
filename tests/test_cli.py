"""The command line end to end: list, run, report, run --all, and bad input."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import run_bad_input, smoke_argv, smoke_overrides
import torch

import solvers
from dataclasses import dataclass
from harness import profiles, records
from core import Parametrized, param
from harness.cli import main
from harness.runner import RunRequest, execute, plan
from solvers.base import Observables, Solver

ROOT = Path(__file__).resolve().parent.parent
BASE = ["run", "--problem", "harmonic_1d", "--solver", "crank_nicolson"]
# Tests of what a record holds run in this process (--executor inline), which is fast; the
# default executor (a process per run) is tested end to end below and in test_executors.py.
INLINE = ["--executor", "inline"]
CN_FAST = ["--set", "solver.points_per_wavelength=2.5", "--set", "solver.phase_step=0.03"]


def _json_files(d: Path):
    return sorted(d.rglob("*.json")) if d.exists() else []


def test_run_writes_one_record_per_seed_with_the_documented_fields(tmp_path, capsys):
    out = tmp_path / "D"
    assert main(BASE + INLINE + ["--seeds", "0,1", "--out", str(out)]) == 0
    files = _json_files(out)
    assert len(files) == 2
    rec = json.loads(files[0].read_text())
    for key in ("status", "reason", "seed", "env", "timing", "metrics", "observables"):
        assert key in rec
    assert rec["status"] == "ok" and rec["reason"] is None
    assert rec["problem"]["name"] == "harmonic_1d" and rec["problem"]["params"]["d"] == 1
    assert rec["solver"]["name"] == "crank_nicolson" and "order" in rec["solver"]["params"]
    for key in ("python", "torch", "numpy", "scipy", "device", "git"):
        assert key in rec["env"]
    for key in ("setup_s", "train_s", "eval_s", "iterations", "s_per_iter", "peak_mem_mb"):
        assert key in rec["timing"]
    assert rec["metrics"]["mean_rel_l2"] < 1e-3 and rec["metrics"]["var_rel_l2"] < 1e-3
    obs = rec["observables"]
    assert len(obs["times"]) == 101 and np.array(obs["mean"]).shape == (101, 1)
    assert np.array(obs["reference_var"]).shape == (101, 1)
    assert np.array(obs["marginal"]["density"]).shape == (101, 100)
    assert {r["seed"] for r in map(lambda f: json.loads(f.read_text()), files)} == {0, 1}


def test_overrides_change_the_reference_and_solver_still_agrees(tmp_path):
    out = tmp_path / "D"
    assert main(BASE + INLINE + ["--set", "problem.omega=2", "--set", "problem.hbar=0.05",
                                 "--out", str(out)]) == 0
    rec = json.loads(_json_files(out)[0].read_text())
    assert rec["problem"]["params"]["omega"] == 2.0 and rec["problem"]["params"]["hbar"] == 0.05
    t = np.array(rec["observables"]["times"])
    s = 0.05 / (2 * 2.0)
    exact_var = 0.1 * np.cos(2 * t) ** 2 + s**2 / 0.1 * np.sin(2 * t) ** 2
    assert np.allclose(np.array(rec["observables"]["reference_var"])[:, 0], exact_var)
    assert rec["metrics"]["var_rel_l2"] < 1e-3 and rec["metrics"]["mean_rel_l2"] < 1e-3


def test_report_prints_markdown_and_writes_csv(tmp_path, capsys):
    out = tmp_path / "D"
    main(BASE + CN_FAST + INLINE + ["--seeds", "0-2", "--out", str(out)])
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| harmonic_1d" in text and "var_rel_l2" in text
    import pandas as pd
    table = pd.read_csv(out / "report.csv")
    summary, accuracy = (out / "report.md").read_text().split("## Accuracy for cost")
    assert summary.count("| harmonic_1d") == 1 and accuracy.count("| harmonic_1d") == 1
    assert table.loc[0, "runs"] == 3 and table.loc[0, "ok"] == 3
    assert len(pd.read_csv(out / "report_runs.csv")) == 3


def test_run_all_and_resume(quick_copy, capsys):
    out = quick_copy  # the smoke matrix, run once per session through the local pool
    first = [rec for _, rec in records.iter_records(out)]
    expected = profiles.requests(profiles.load("quick", smoke_overrides()))
    assert len(first) == len(expected) and all(r["profile"] == "quick" for r in first)
    skipped = [r for r in first if r["status"] == "skipped"]
    assert all(r["reason"] for r in skipped)
    assert all(r["status"] == "ok" for r in first if r["status"] != "skipped")
    capsys.readouterr()
    # --resume runs only what has no ok record: the two declined pairs (decided here, no process)
    assert main(smoke_argv() + ["--out", str(out), "--resume"]) == 0
    text = capsys.readouterr().out
    assert text.count("[done]") == len(first) - len(skipped)
    assert text.count("[skipped]") == len(skipped)


def test_list_needs_no_optional_dependencies():
    code = ("import sys; from harness.cli import main; rc = main(['list']); "
            "assert rc == 0; assert 'deepxde' not in sys.modules and 'dask' not in sys.modules")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "harmonic_1d" in res.stdout and "crank_nicolson" in res.stdout and "phase_step" in res.stdout


def test_module_entry_point_runs(tmp_path):
    res = subprocess.run([sys.executable, "-m", "harness", "run", "--problem", "bosons",
                          "--solver", "crank_nicolson", "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    rec = json.loads(_json_files(tmp_path)[0].read_text())
    assert rec["metrics"]["com_var_err"] < 1e-3 and rec["metrics"]["mean_abs_rms"] < 1e-6


BAD = {
    "unknown problem": ["run", "--problem", "nope", "--solver", "crank_nicolson"],
    "unknown solver": ["run", "--problem", "harmonic_1d", "--solver", "nope"],
    "unknown problem parameter": BASE + ["--set", "problem.omgea=1"],
    "unknown solver parameter": BASE + ["--set", "solver.nope=1"],
    "int parameter given text": ["run", "--problem", "harmonic_nd", "--solver", "crank_nicolson",
                                 "--set", "problem.d=abc"],
    "int parameter given a fraction": ["run", "--problem", "harmonic_nd", "--solver",
                                       "crank_nicolson", "--set", "problem.d=2.5"],
    "negative hbar": BASE + ["--set", "problem.hbar=-1"],
    "zero dimension": ["run", "--problem", "harmonic_nd", "--solver", "crank_nicolson",
                       "--set", "problem.d=0"],
    "fixed dimension": BASE + ["--set", "problem.d=2"],
    "set without equals": BASE + ["--set", "problem.hbar"],
    "set with unknown owner": BASE + ["--set", "foo.bar=1"],
    "choice not allowed": BASE + ["--set", "solver.order=3"],
    "string choice not allowed": BASE + ["--set", "solver.linear_solver=lu"],
    "seeds not integers": BASE + ["--seeds", "a,b"],
    "negative seed": BASE + ["--seeds=0,-1"],
    "duplicate seed": BASE + ["--seeds", "0,0"],
    "nan value": BASE + ["--set", "problem.hbar=nan"],
    "infinite value": BASE + ["--set", "problem.sigma2=inf"],
    "empty value": BASE + ["--set", "problem.hbar="],
    "missing solver": ["run", "--problem", "harmonic_1d"],
    "one time point": BASE + ["--times", "1"],
    "times not a number": BASE + ["--times", "many"],
    "conflicting duplicate set": BASE + ["--set", "problem.hbar=1", "--set", "problem.hbar=2"],
    "negative time limit": BASE + ["--time-limit", "-5"],
    "all with a problem": ["run", "--all", "--problem", "harmonic_1d"],
    "unknown profile": ["run", "--all", "--profile", "nope"],
    "negative grid size": BASE + ["--set", "solver.n=-1"],
}


@pytest.mark.parametrize("argv", BAD.values(), ids=BAD.keys())
def test_bad_input_gives_one_clear_line_exit_2_and_no_record(argv, tmp_path, capsys):
    run_bad_input(argv, tmp_path / "out", capsys)
    assert not _json_files(tmp_path)


def test_out_path_that_is_a_file_is_rejected(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert main(BASE + ["--out", str(target)]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_report_of_missing_or_empty_directory(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert main(["report", str(tmp_path)]) == 2
    assert capsys.readouterr().err.count("harness: error:") == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_cuda(tmp_path, capsys):
    assert main(BASE + ["--device", "cuda", "--out", str(tmp_path / "o")]) == 2
    assert "CUDA" in capsys.readouterr().err


# --- failures become records -----------------------------------------------------------
class _Broken(Solver):
    name = "broken"
    description = "test double"

    @dataclass(frozen=True)
    class Params(Parametrized):
        mode: str = param("raise", "how to fail", choices=("raise", "nan"))

    def setup(self, problem, *, times, device="cpu", seed=0, budget=None, workdir=None):
        self.problem, self.times = problem, np.asarray(times)

    def run(self, clock):
        self.iterations = 1
        self.history = {"loss": [1.0, float("nan")]}
        if self.params.mode == "raise":
            raise RuntimeError("diverged on purpose")

    def evaluate(self):
        d = self.problem.d
        mean = np.zeros((len(self.times), d))
        mean[3:] = np.nan
        return Observables(times=self.times, mean=mean, var=np.ones_like(mean))


@pytest.fixture
def broken(monkeypatch):
    monkeypatch.setitem(solvers.REGISTRY, "broken", _Broken)


@pytest.mark.parametrize("mode, fragment", [("raise", "run: RuntimeError: diverged on purpose"),
                                            ("nan", "non-finite mean")])
def test_a_failing_solver_becomes_a_failed_record(broken, tmp_path, mode, fragment):
    run = plan(RunRequest(problem="harmonic_1d", solver="broken", solver_params={"mode": mode}))
    rec = execute(run, tmp_path)
    assert rec["status"] == "failed" and fragment in rec["reason"]
    stored = records.load(Path(rec["path"]))
    assert stored["status"] == "failed" and stored["error"]["traceback"]
    history = json.loads((tmp_path / stored["history_file"]).read_text())
    assert history == {"loss": [1.0, None]}
    # the side file is not mistaken for a record
    assert [r["run_id"] for _, r in records.iter_records(tmp_path)] == [rec["run_id"]]


def test_run_exits_1_when_a_run_failed(broken, tmp_path, capsys):
    # the monkeypatched registry exists only in this process: run inline (the same with the
    # default executor, through a plug-in, is in test_executors.py)
    rc = main(["run", "--problem", "harmonic_1d", "--solver", "broken", "--out", str(tmp_path)]
              + INLINE)
    assert rc == 1
    assert "[failed]" in capsys.readouterr().out


def test_declined_runs_are_skipped_records(tmp_path):
    run = plan(RunRequest(problem="harmonic_nd", solver="crank_nicolson", problem_params={"d": 5}))
    rec = execute(run, tmp_path)
    assert rec["status"] == "skipped" and "d <= 3" in rec["reason"]
    assert records.load(Path(rec["path"]))["status"] == "skipped"


def test_scaling_records_cost_per_dimension_and_declined_sizes(tmp_path, capsys):
    out = tmp_path / "scaling.json"
    rc = main(["scaling", "--solver", "crank_nicolson", "--problem", "harmonic_nd", "--dims", "1,4",
               "--set", "problem.t_final=0.1", "--set", "solver.points_per_wavelength=2.5",
               "--out", str(out)])
    assert rc == 0
    study = json.loads(out.read_text())
    ok, declined = study["results"]
    assert ok["d"] == 1 and ok["status"] == "ok" and ok["s_per_iter"] > 0 and ok["peak_mem_mb"] > 0
    assert declined["d"] == 4 and declined["status"] == "skipped" and "d <= 3" in declined["reason"]
    assert study["solver"]["params"]["points_per_wavelength"] == 2.5


@pytest.mark.parametrize("extra", [
    ["--dims", "0,2"],
    ["--dims", "1", "--set", "problem.d=2"],
    ["--dims", "1", "--iterations", "5"],  # crank_nicolson has no iteration budget
    ["--dims", "a"],
])
def test_scaling_bad_input(extra, tmp_path, capsys):
    out = tmp_path / "s.json"
    rc = main(["scaling", "--solver", "crank_nicolson", "--problem", "harmonic_nd", "--out", str(out)]
              + extra)
    assert rc == 2 and not out.exists()
    assert capsys.readouterr().err.startswith("harness: error:")
