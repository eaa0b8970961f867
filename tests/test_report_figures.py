"""report writes CSV, markdown and parquet; figures draws every listed figure from records only,
for whichever solvers the records hold, and skips (with a note) what the records cannot show."""

import copy
import shutil

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from harness import figures, records
from harness.cli import main
from harness.figures import anytime, dimensions, solutions
from harness.figures.common import Style


def _ok(directory):
    return [rec for _, rec in records.iter_records(directory) if rec["status"] == "ok"]


def _variant(rec, solver=None, seed=None, d=None, scale=1.0):
    """A copy of ``rec`` under another solver / seed / dimension, observables scaled."""
    out = copy.deepcopy(rec)
    if solver:
        out["solver"] = {"name": solver, "params": {"n_samples": 100}}
    if seed is not None:
        out["seed"] = seed
    if d is not None:
        out["problem"]["params"]["d"] = d
    obs = out["observables"]
    for key in ("var", "com_var"):
        if key in obs:
            obs[key] = (np.array(obs[key], dtype=float) * scale).tolist()
    if "marginal" in obs:
        obs["marginal"]["density"] = (np.array(obs["marginal"]["density"]) * scale).tolist()
    for key in list(out["metrics"]):
        out["metrics"][key] = (out["metrics"][key] or 0.0) * scale + 1e-6
    if solver:
        out["metrics"]["mean_rel_l2_floor"] = 1e-4
        out["metrics"]["com_var_err_floor"] = 1e-3
    out["timing"] = dict(out["timing"], s_per_iter=1e-3 * (d or 1) * scale, train_s=scale * (d or 1))
    out["run_id"] = records.run_id(out["problem"], out["solver"], out["seed"],
                                   {"n_times": out["n_times"]})
    return out


@pytest.fixture
def mixed(quick_local, tmp_path):
    """Real Crank–Nicolson records plus a made-up sample-based solver over seeds and d."""
    out = tmp_path / "mixed"
    shutil.copytree(quick_local, out)
    for rec in _ok(quick_local):
        name = rec["problem"]["name"]
        for seed, scale in ((0, 1.05), (1, 0.97)):
            records.write(_variant(rec, "mock_sampler", seed, scale=scale), out)
        if name in ("harmonic_nd", "bosons"):
            for d in ((1,) if name == "harmonic_nd" else (3, 8, 16)):
                if d <= 3:  # the grid solver only where a grid fits
                    records.write(_variant(rec, d=d), out)
                for seed, scale in ((0, 1.1), (1, 0.9)):
                    records.write(_variant(rec, "mock_sampler", seed, d=d, scale=scale), out)
    return out


EXPECTED = {
    "density_harmonic_1d.png", "density_harmonic_1d_moving.png", "density_singular_1d.png",
    "mean_var_harmonic_1d_d1.png", "mean_var_bosons_d2.png", "mean_var_harmonic_nd_d2.png",
    "cost_vs_d_harmonic_nd.png", "cost_vs_d_bosons.png", "error_vs_d_harmonic_nd.png",
    "error_vs_d_bosons.png", "bosons_d2_d3.png", "bosons_com_invariant.png",
    "singular_1d_variance.png", "anytime_harmonic_1d_d1.png", "anytime_bosons_d2.png",
}


def test_every_figure_is_drawn_for_the_solvers_present(mixed, tmp_path, capsys):
    scaling = tmp_path / "scaling.json"
    scaling.write_text('{"problem": {"name": "harmonic_nd", "params": {}}, "solver": {"name": '
                       '"mock_sampler", "params": {}}, "results": [{"d": 1, "status": "ok", '
                       '"s_per_iter": 0.001}, {"d": 32, "status": "ok", "s_per_iter": 0.01}]}')
    out = tmp_path / "figs"
    assert main(["figures", str(mixed), "--out", str(out), "--scaling", str(scaling)]) == 0
    names = {p.name for p in out.glob("*.png")}
    assert EXPECTED <= names, EXPECTED - names
    for path in out.glob("*.png"):  # real pictures: decodable, not blank
        image = matplotlib.image.imread(path)
        assert image.ndim == 3 and image.shape[0] > 200 and float(image.std()) > 0.01, path
    assert not list(out.glob(".*"))  # no temporaries
    text = capsys.readouterr().out
    assert text.count("wrote ") == len(names)


def test_singular_figure_draws_the_exact_spreading_and_the_heat_kernel(mixed):
    recs = _ok(mixed)
    style = Style([r["solver"]["name"] for r in recs])
    fig = solutions.singular(recs, style)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(figures.HEAT_KERNEL_LABEL in label and "ħt/m" in label for label in labels)
    assert any("σ² + (ħt/2mσ)²" in label for label in labels)
    assert {"crank_nicolson", "mock_sampler"} <= set(labels)
    # the dashed exact curve is sigma^2 + (hbar t / 2 m sigma)^2
    line = next(l for l in fig.axes[0].get_lines() if l.get_linestyle() == "--")
    t, v = line.get_data()
    p = next(r for r in recs if r["problem"]["name"] == "singular_1d")["problem"]["params"]
    assert np.allclose(v, p["sigma2"] + (p["hbar"] * t / (2 * p["mass"] * np.sqrt(p["sigma2"]))) ** 2)


def test_anytime_figure_draws_every_records_points_and_its_floor(quick_local):
    recs = _ok(quick_local)
    style = Style([r["solver"]["name"] for r in recs])
    fig = anytime.anytime_figure(recs, style, "harmonic_1d", 1)
    ax = fig.axes[0]
    assert ax.get_xscale() == ax.get_yscale() == "log" and ax.get_ylabel() == "var_rel_l2"
    drawn = [tuple(np.round(line.get_ydata(), 12)) for line in ax.get_lines()]
    for rec in recs:
        if rec["problem"]["name"] != "harmonic_1d":
            continue
        ys = tuple(np.round([p["metrics"]["var_rel_l2"] for p in rec["anytime"]
                             if "var_rel_l2" in p.get("metrics", {})], 12))
        assert ys in drawn, rec["solver"]["name"]
        floors = rec.get("anytime_info", {}).get("floors")
        if floors:  # the floor's median is drawn as a horizontal line
            assert (round(floors["var_rel_l2_floor"], 12),) * 2 in drawn


def test_anytime_figure_tells_a_solvers_variants_apart(quick_local):
    """Two records of one solver with different parameters (DSM before and after a change of
    defaults) get their own line styles and legend entries naming the difference; seeds of
    the same parameters do not."""
    rec = next(r for r in _ok(quick_local) if r["problem"]["name"] == "harmonic_1d"
               and r.get("anytime") and r["solver"]["name"] == "dsm")
    other = copy.deepcopy(rec)
    other["run_id"] += "-b"
    other["solver"]["params"]["lr"] = 0.125
    seed = copy.deepcopy(rec)
    seed["run_id"] += "-s1"
    seed["seed"] = 1
    labels = anytime.variants([rec, other, seed])
    mine = f"lr={rec['solver']['params']['lr']:g}"
    assert labels[rec["run_id"]] == labels[seed["run_id"]] == mine
    assert labels[other["run_id"]] == "lr=0.125"
    assert set(anytime.variants([rec, seed]).values()) == {""}
    fig = anytime.anytime_figure([rec, other], Style(["dsm"]), "harmonic_1d", 1)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "dsm: lr=0.125" in legend
    ys = [p["metrics"]["var_rel_l2"] for p in rec["anytime"] if "var_rel_l2" in p["metrics"]]
    styles = [line.get_linestyle() for line in fig.axes[0].get_lines()
              if len(line.get_ydata()) == len(ys) and np.allclose(line.get_ydata(), ys)]
    assert len(styles) == 2 and styles[0] != styles[1]


def test_error_against_d_draws_the_records_values(mixed):
    recs = _ok(mixed)
    style = Style([r["solver"]["name"] for r in recs])
    fig = dimensions.error_vs_d(recs, style, "bosons")
    ax = next(a for a in fig.axes if a.get_ylabel() == "com_var_err")
    mine = [r for r in recs if r["problem"]["name"] == "bosons"
            and r["solver"]["name"] == "mock_sampler"]
    by_d = {}
    for r in mine:
        by_d.setdefault(r["problem"]["params"]["d"], []).append(r["metrics"]["com_var_err"])
    expected = [np.mean(by_d[d]) for d in sorted(by_d)]
    assert any(np.allclose(line.get_ydata(), expected) for line in ax.get_lines()
               if len(line.get_ydata()) == len(expected))


def test_figures_that_need_absent_data_are_skipped_with_a_note(quick_local, tmp_path, capsys):
    only = tmp_path / "only"
    only.mkdir()
    for path in quick_local.glob("harmonic_1d-*.json"):
        shutil.copy(path, only)
    assert main(["figures", str(only)]) == 0
    text = capsys.readouterr().out
    assert "wrote " in text and (only / "figures" / "density_harmonic_1d.png").is_file()
    for name in ("bosons_com_invariant.png", "singular_1d_variance.png", "bosons_d2_d3.png"):
        assert f"skip {name}" in text


def test_figures_bad_input(tmp_path, quick_local, capsys):
    assert main(["figures", str(tmp_path / "nope")]) == 2
    assert main(["figures", str(tmp_path)]) == 2  # no records
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    assert main(["figures", str(quick_local), "--scaling", str(bad)]) == 2
    assert capsys.readouterr().err.count("harness: error:") == 3


def md_header(directory):
    return next(line for line in (directory / "report.md").read_text().splitlines()
                if line.startswith("| problem"))


def test_peak_memory_is_the_larger_of_the_run_and_its_worker_process(tmp_path):
    from harness import report

    rec = {"schema": records.SCHEMA, "run_id": "r", "status": "ok",
           "problem": {"name": "p", "params": {"d": 1}},
           "solver": {"name": "s", "params": {}}, "metrics": {},
           "timing": {"peak_mem_mb": 300.0}, "diagnostics": {"worker_peak_rss_mb": 1200.0}}
    records.write(rec, tmp_path)
    assert report.runs_table(tmp_path)["peak_mb"].tolist() == [1200.0]


@pytest.mark.extra  # its last check needs pyarrow
def test_report_writes_csv_markdown_and_parquet(mixed, capsys):
    assert main(["report", str(mixed)]) == 0
    text = capsys.readouterr().out
    assert "mock_sampler" in text and "±" in text
    summary = pd.read_csv(mixed / "report.csv")
    row = summary[(summary.problem == "bosons") & (summary.d == 8)
                  & (summary.solver == "mock_sampler")].iloc[0]
    assert row["runs"] == 2 and row["ok"] == 2
    vals = [r["metrics"]["com_var_err"] for r in _ok(mixed)
            if r["problem"]["name"] == "bosons" and r["problem"]["params"]["d"] == 8]
    assert row["com_var_err_mean"] == pytest.approx(np.mean(vals))
    assert row["com_var_err_std"] == pytest.approx(np.std(vals, ddof=1))
    assert "peak_mb" in md_header(mixed)
    md = (mixed / "report.md").read_text()
    assert md.startswith("# Results in") and "| bosons" in md
    assert "## Accuracy for cost" in md and "s to ≤ 0.05" in md
    pytest.importorskip("pyarrow")
    assert pd.read_parquet(mixed / "report.parquet").shape[0] == summary.shape[0]
    assert pd.read_parquet(mixed / "report_runs.parquet").shape[0] == len(
        list(records.iter_records(mixed)))


def test_accuracy_finer_than_the_anytime_floor_is_not_timed(tmp_path):
    """The seconds to an accuracy are read from the anytime curve only where the curve can
    resolve it: under the record's anytime floor the table says so, for a point that fell
    under it by luck as for a curve that never did; solvers without a floor are timed."""
    from harness import report

    def record(run_id, solver, values, floor):
        rec = {"schema": records.SCHEMA, "run_id": run_id, "status": "ok", "seed": 0,
               "problem": {"name": "p", "params": {"d": 1}},
               "solver": {"name": solver, "params": {}},
               "metrics": {"var_rel_l2": values[-1]}, "timing": {"train_s": 4.0},
               "anytime": [{"train_s": float(k + 1), "iteration": k,
                            "metrics": {"var_rel_l2": v}} for k, v in enumerate(values)],
               "anytime_info": {"kind": "checkpoints",
                                "floors": {} if floor is None else
                                {"var_rel_l2_floor": floor}}}
        records.write(rec, tmp_path)

    record("a", "sampler", [0.3, 0.04, 0.008, 0.015], floor=0.016)
    record("b", "quadrature", [0.3, 0.04, 0.008, 0.009], floor=None)
    table = report.accuracy_for_cost(tmp_path).set_index("solver")
    assert table.loc["sampler", "to_0.05"] == "2"
    assert table.loc["sampler", "to_0.02"] == "3"
    assert table.loc["sampler", "to_0.01"] == report.UNDER_FLOOR
    assert table.loc["quadrature", "to_0.01"] == "3"
    assert report.UNDER_FLOOR in report.accuracy_markdown(table.reset_index())
