"""compare: identical directories pass; worse errors, new failures and missing runs fail and are
named; tolerances and the timing gate behave as documented; bad input exits 2."""

import json
import shutil
from pathlib import Path

import pytest

from harness import records
from harness.cli import main
from harness.compare import compare, is_error_metric


def _edit(directory: Path, problem: str, fn) -> str:
    """Apply ``fn`` to the record of ``problem`` in ``directory``; return its run id."""
    for path, rec in records.iter_records(directory):
        if rec["problem"]["name"] == problem and rec["status"] == "ok":
            fn(rec)
            records.write(rec, directory)
            return rec["run_id"]
    raise AssertionError(problem)


@pytest.fixture
def pair(quick_local, tmp_path):
    base, new = tmp_path / "base", tmp_path / "new"
    shutil.copytree(quick_local, base)
    shutil.copytree(quick_local, new)
    return base, new


def test_error_metrics_are_the_documented_ones():
    for name in ("mean_rel_l2", "var_rel_l2", "u_rel_l2", "mean_abs_rms", "com_var_err",
                 "energy_err", "w1_mean", "w1_max", "pair_w1_mean", "pair_w1_max",
                 "energy_drift", "norm_drift"):
        assert is_error_metric(name), name
    for name in ("var_rel_l2_floor", "var_rel_l2_floor_lo", "w1_mean_floor_hi",
                 "com_var_err_floor", "floor_repetitions", "max_wall_mass", "train_s",
                 "s_per_iter"):
        assert not is_error_metric(name), name


def test_identical_directories_pass(pair, capsys):
    base, new = pair
    assert main(["compare", str(base), str(new)]) == 0
    out = capsys.readouterr().out
    n = len(list(records.iter_records(base)))
    assert "**PASS**" in out and f"{n} runs matched" in out and "## Timing" in out


def test_a_worse_error_beyond_tolerance_fails_and_names_the_run(pair, capsys):
    base, new = pair
    run_id = _edit(new, "harmonic_1d", lambda r: r["metrics"].update(
        var_rel_l2=r["metrics"]["var_rel_l2"] * 1.5))
    assert main(["compare", str(base), str(new)]) == 1
    out = capsys.readouterr().out
    assert "**FAIL: 1 regression(s)**" in out
    row = next(line for line in out.splitlines() if run_id in line)
    assert "var_rel_l2" in row
    # within a looser tolerance it passes, and the relative and absolute parts add up
    assert main(["compare", str(base), str(new), "--rtol", "0.6"]) == 0
    b = json.loads((base / f"{run_id}.json").read_text())["metrics"]["var_rel_l2"]
    assert main(["compare", str(base), str(new), "--rtol", "0.25", "--atol", str(0.26 * b)]) == 0
    assert main(["compare", str(base), str(new), "--rtol", "0.25", "--atol", str(0.2 * b)]) == 1


def test_floors_diagnostics_and_better_errors_do_not_gate(pair, capsys):
    base, new = pair

    def change(rec):
        rec["metrics"]["max_wall_mass"] = 1.0
        rec["metrics"]["mean_floor"] = 1.0
        rec["metrics"]["var_rel_l2"] /= 10

    _edit(new, "singular_1d", change)
    assert main(["compare", str(base), str(new)]) == 0
    assert "## Improvements" in capsys.readouterr().out


def test_a_new_failure_fails(pair, capsys):
    base, new = pair

    def fail(rec):
        rec.update(status="failed", reason="run: RuntimeError: diverged", metrics={})

    run_id = _edit(new, "bosons", fail)
    assert main(["compare", str(base), str(new)]) == 1
    out = capsys.readouterr().out
    assert f"| `{run_id}` | status | ok | failed |" in out and "diverged" in out


def test_a_missing_metric_fails(pair, capsys):
    base, new = pair
    run_id = _edit(new, "harmonic_1d", lambda r: r["metrics"].pop("w1_mean"))
    assert main(["compare", str(base), str(new)]) == 1
    assert f"| `{run_id}` | w1_mean |" in capsys.readouterr().out


def test_missing_runs_fail_unless_allowed_and_new_runs_are_listed(pair, capsys):
    base, new = pair
    gone = next(p for p in new.glob("harmonic_1d-*.json") if not p.name.endswith(".history.json"))
    gone.unlink()
    assert main(["compare", str(base), str(new)]) == 1
    assert "1 missing run(s)" in capsys.readouterr().out
    assert main(["compare", str(base), str(new), "--allow-missing"]) == 0
    capsys.readouterr()
    assert main(["compare", str(new), str(base)]) == 0  # the other way round it is a new run
    assert "## New runs" in capsys.readouterr().out


def test_timing_is_reported_and_gates_only_when_asked(pair, capsys):
    base, new = pair

    def slow_base(rec):
        rec["timing"].update(train_s=2.0, s_per_iter=0.01)

    def slower(rec):
        rec["timing"].update(train_s=6.0, s_per_iter=0.03)

    _edit(base, "harmonic_nd", slow_base)
    run_id = _edit(new, "harmonic_nd", slower)
    assert main(["compare", str(base), str(new)]) == 0
    assert main(["compare", str(base), str(new), "--gate-timing", "4"]) == 0
    capsys.readouterr()
    assert main(["compare", str(base), str(new), "--gate-timing", "2", "--out",
                 str(base.parent / "r.md")]) == 1
    out = capsys.readouterr().out
    assert f"| `{run_id}` | train_s |" in out and f"| `{run_id}` | s_per_iter |" in out
    assert (base.parent / "r.md").read_text() == out


def test_matching_uses_the_records_not_the_file_names(pair):
    base, new = pair
    for path in list(new.glob("*.json")):
        sub = new / "nested"
        sub.mkdir(exist_ok=True)
        shutil.move(path, sub / path.name)
    assert compare(base, new).matched == len(list(records.iter_records(base)))


@pytest.mark.parametrize("extra", [["--rtol", "abc"], ["--rtol", "-1"], ["--atol", "nan"],
                                   ["--gate-timing", "0"], ["--gate-timing", "x"]])
def test_bad_tolerances_exit_2(pair, extra, capsys):
    base, new = pair
    assert main(["compare", str(base), str(new)] + extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("harness: error:")


def test_missing_or_empty_directories_exit_2(tmp_path, quick_local, capsys):
    assert main(["compare", str(tmp_path / "nope"), str(quick_local)]) == 2
    assert main(["compare", str(quick_local), str(tmp_path)]) == 2
    assert capsys.readouterr().err.count("harness: error:") == 2
