"""The README's generated sections: up to date with the committed records, and each kind
rendered from records rather than typed in."""

import json
import shutil
from pathlib import Path

import pytest

from harness import matrix, readme, records

ROOT = Path(__file__).resolve().parents[1]
QUICK = "results/baseline/quick"


def test_readme_sections_match_their_records():
    """``python -m harness readme --check``: a change of records without the README (or of the
    README's tables by hand) fails here; run ``python -m harness readme`` to regenerate."""
    text = (ROOT / "README.md").read_text()
    assert readme.sections(text), "the README has no generated sections"
    assert readme.update(ROOT / "README.md", check=True) == []


def test_every_kind_renders_the_records_it_names(tmp_path):
    out = tmp_path / "results"
    shutil.copytree(ROOT / QUICK, out)
    (out / matrix.JOB_LOG).unlink(missing_ok=True)  # the baseline's own job log: made anew below
    recs = [rec for _, rec in records.iter_records(out)]
    ok = [r for r in recs if r["status"] == "ok"]
    assert ok
    for kind in ("summary", "breaks", "runs"):
        body = readme.render(f"{kind} results", tmp_path)
        for rec in ok:
            assert rec["problem"]["name"] in body, (kind, rec["run_id"])
    breaks = readme.render("breaks results", tmp_path)
    for rec in recs:
        assert rec["solver"]["name"] in breaks.splitlines()[0]
    assert readme.render("job results", tmp_path).startswith("(no job log")
    matrix._log_job(out, {"started": "2026-12-02T18:00:00+00:00", "runs": 3, "planned": 5,
                          "executor": "local, 2 worker(s) x 1 thread(s)", "cpu_count": 2,
                          "load_start": [0.5, 0.4, 0.3], "load_end": [2.0, 1.5, 1.0],
                          "wall_s": 125.4, "failed": 1})
    job = readme.render("job results", tmp_path)
    assert "3 of 5 runs in **2 min 05 s**" in job and "load 0.5 before and 2 after" in job
    assert "1 failed" in job


def test_references_kind_reads_the_stored_entries(tmp_path):
    from problems import cache

    (tmp_path / "refs").mkdir()
    assert readme.render("references refs", tmp_path).startswith("(no stored references")
    src = sorted((ROOT / "problems/data/references").glob("bosons-*.npz"))[0]
    shutil.copy(src, tmp_path / "refs" / src.name)
    meta = cache.read_entry(src)[1]
    body = readme.render("references refs", tmp_path)
    row = body.splitlines()[2]
    assert row.startswith("| bosons") and f"{meta['info']['seconds']:.3g}" in row
    assert f"{meta['convergence']['var_rel_l2']:.3g}" in row
    assert f"{meta['description']['grid']['n']}^d" in row


def test_runs_kind_names_the_problem_parameters_that_differ(tmp_path):
    (tmp_path / "res").mkdir()
    src = next(rec for _, rec in records.iter_records(ROOT / QUICK)
               if rec["status"] == "ok" and rec["problem"]["name"] == "harmonic_1d")
    other = json.loads(json.dumps(src))
    other["run_id"] += "-w2"
    other["problem"]["params"]["omega"] = 2.0
    for rec in (src, other):
        records.write(rec, tmp_path / "res")
    rows = readme.render("runs res", tmp_path).splitlines()[2:]
    assert any("harmonic_1d (omega=2.0)" in r for r in rows)
    assert any(f"harmonic_1d (omega={src['problem']['params']['omega']})" in r for r in rows)


def test_update_rewrites_stale_sections_and_check_leaves_them(tmp_path):
    (tmp_path / "res").mkdir()
    src = next(p for p, _ in records.iter_records(ROOT / QUICK))
    shutil.copy(src, tmp_path / "res" / src.name)
    page = tmp_path / "PAGE.md"
    stale = ("intro\n<!-- begin generated: runs res -->\nhand-typed 0.001\n"
             "<!-- end generated -->\noutro\n")
    page.write_text(stale)
    assert readme.update(page, tmp_path, check=True) == ["runs res"]
    assert page.read_text() == stale
    assert readme.update(page, tmp_path) == ["runs res"]
    text = page.read_text()
    assert "hand-typed" not in text and text.startswith("intro\n") and text.endswith("outro\n")
    assert json.loads(src.read_text())["problem"]["name"] in text
    assert readme.update(page, tmp_path, check=True) == []
    with pytest.raises(ValueError, match="unknown generated section kind"):
        readme.render("nonsense res", tmp_path)


def test_runs_kind_takes_record_files_beside_directories(tmp_path):
    """``runs DIR FILE``: the directory's records and the named record side by side, with only
    the parameters every row's solver has (another solver's would be blank)."""
    ok = [(p, rec) for p, rec in records.iter_records(ROOT / QUICK) if rec["status"] == "ok"]
    by_solver = {}
    for p, rec in ok:
        by_solver.setdefault(rec["solver"]["name"], (p, rec))
    (a_path, a), (b_path, b) = list(by_solver.values())[:2]
    (tmp_path / "res").mkdir()
    shutil.copy(a_path, tmp_path / "res" / a_path.name)
    shutil.copy(b_path, tmp_path / b_path.name)
    body = readme.render(f"runs res {b_path.name}", tmp_path)
    header, _, *rows = body.splitlines()
    assert len(rows) == 2
    assert {a["solver"]["name"], b["solver"]["name"]} == {r.split("|")[2].strip() for r in rows}
    only_a = set(a["solver"]["params"]) - set(b["solver"]["params"])
    assert not any(f" {k} " in header for k in only_a)
