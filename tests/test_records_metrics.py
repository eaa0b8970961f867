"""Records are written atomically and read back; metrics follow their documented definitions."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

import problems
from harness import metrics, records
from problems import cache
from solvers.base import Observables


def test_metrics_definitions():
    ref = np.array([[1.0, 2.0], [2.0, 4.0]])
    est = ref * 1.1
    assert metrics.rel_l2(est, ref) == pytest.approx(0.1)
    assert metrics.abs_rms(np.ones((3, 2)), np.zeros((3, 2))) == pytest.approx(1.0)


def test_zero_reference_mean_switches_to_absolute_error():
    times = np.linspace(0, 1, 5)
    obs = Observables(times=times, mean=np.full((5, 2), 1e-3), var=np.full((5, 2), 0.025),
                      com_var=np.full(5, 0.0125))
    p = problems.get("harmonic_nd", d=2, center=0.0)
    m, series = metrics.evaluate(p, p.reference(), obs)
    assert "mean_rel_l2" not in m
    assert m["mean_abs_rms"] == pytest.approx(1e-3)


def test_velocity_errors_and_w1_of_exact_samples():
    """Exact samples and exact velocities as a 'solver': zero velocity errors, W1 at its
    floor; a biased velocity shows."""
    p = problems.get("harmonic_1d_moving")
    ref = p.reference()
    times = np.linspace(0, 1, 11)
    S = 4000
    xs = ref.sample(S, times, np.random.default_rng(99))
    obs = Observables(times=times, mean=xs.mean(1), var=xs.var(1, ddof=1),
                      com_var=xs.mean(2).var(1, ddof=1), samples=xs,
                      velocity=lambda x, t: (ref.u(x, t), ref.v(x, t)))
    m, series = metrics.evaluate(p, ref, obs, seed=3)
    assert obs.n_samples == S and series["floor_kind"] == "exact_draws"
    assert m["u_rel_l2"] == pytest.approx(0.0, abs=1e-12)
    assert m["v_rel_l2"] == pytest.approx(0.0, abs=1e-12)
    for name in ("mean_rel_l2", "var_rel_l2", "w1_mean", "w1_max", "com_var_err"):
        assert m[f"{name}_floor_lo"] <= m[name] <= m[f"{name}_floor_hi"], name
    assert len(series["w1"]["values"]) == 5
    obs.velocity = lambda x, t: (1.1 * ref.u(x, t), ref.v(x, t))
    m2, _ = metrics.evaluate(p, ref, obs, seed=3)
    assert m2["u_rel_l2"] == pytest.approx(0.1, rel=1e-9)


def test_standard_error_floors_where_the_reference_has_no_sampler():
    p = problems.get("bosons", d=16)
    times = np.linspace(0, 1, 5)
    S = 10_000
    x = np.random.default_rng(0).normal(size=(5, S, 16)) * np.sqrt(p.sigma0_sq)
    obs = Observables(times=times, mean=x.mean(1), var=x.var(1, ddof=1),
                      com_var=x.mean(2).var(1, ddof=1), samples=x[:, :, :2])
    m, series = metrics.evaluate(p, p.reference(), obs)
    assert series["floor_kind"] == "standard_error"
    assert m["mean_abs_rms_floor"] == pytest.approx(np.sqrt(p.sigma0_sq / S), rel=0.05)
    assert m["mean_abs_rms"] < 3 * m["mean_abs_rms_floor"]
    # the centre of mass keeps an exact floor (exact draws of its stationary law), with a band
    assert m["com_var_err_floor_lo"] <= m["com_var_err"] <= m["com_var_err_floor_hi"]


def test_json_conversion_drops_non_finite_numbers_and_rounds():
    out = records.jsonable({"a": np.array([1.0, np.nan, np.inf]), "b": np.float32(0.123456789)}, 4)
    assert out == {"a": [1.0, None, None], "b": 0.1235}
    text = records.dumps({"x": [1, 2], "y": {"z": None}})
    assert json.loads(text) == {"x": [1, 2], "y": {"z": None}}


def test_ids_and_seeds_are_deterministic_and_distinct():
    p, s = {"name": "a", "params": {"d": 2}}, {"name": "b", "params": {}}
    assert records.run_id(p, s, 0) == records.run_id(p, s, 0)
    assert records.run_id(p, s, 0) != records.run_id(p, s, 1)
    assert records.derive_seed(p, s, 0) == records.derive_seed(p, s, 0)
    assert records.derive_seed(p, s, 0) != records.derive_seed(p, s, 1)
    assert 0 <= records.derive_seed(p, s, 7) < 2**31


def test_a_crash_during_write_leaves_no_record_and_no_temporary(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise OSError("disk vanished")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        records.write({"run_id": "r1", "schema": records.SCHEMA}, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_iter_records_skips_temporaries_and_corrupt_files(tmp_path):
    records.write({"run_id": "good", "schema": records.SCHEMA, "status": "ok"}, tmp_path)
    (tmp_path / ".good.123.tmp").write_text("{")
    (tmp_path / "broken.json").write_text('{"run_id": "x", "sch')
    (tmp_path / "other.json").write_text('{"not": "a record"}')
    found = [rec["run_id"] for _, rec in records.iter_records(tmp_path)]
    assert found == ["good"]


def test_reference_cache_round_trip_and_atomicity(tmp_path, monkeypatch):
    monkeypatch.setenv("DSM_BENCH_CACHE", str(tmp_path))
    key = cache.cache_key({"a": 1})
    assert key == cache.cache_key({"a": 1}) and key != cache.cache_key({"a": 2})
    assert cache.load("t", key) is None
    cache.store("t", key, {"x": np.arange(3.0)}, {"info": {"k": 1}})
    arrays, meta, path = cache.load("t", key)
    assert np.array_equal(arrays["x"], [0, 1, 2]) and meta == {"info": {"k": 1}}
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_boson_reference_is_computed_once_then_loaded(tmp_path, monkeypatch):
    monkeypatch.setenv("DSM_BENCH_CACHE", str(tmp_path))
    p = problems.get("bosons", d=2, t_final=0.3)
    times = np.linspace(0, 0.3, 7)
    first = p.reference()
    v1 = first.var(times)
    assert first.last["cached"] is False
    second = p.reference()  # a new object, as in a second run
    v2 = second.var(times)
    assert second.last["cached"] is True
    assert np.array_equal(v1, v2)
    desc = second.describe()
    assert desc["kind"] == "grid" and desc["cached"] is True and desc["grid"]["n"] > 0
    # the stored reference satisfies the exact invariants
    sol = second.solution(times)
    assert np.max(np.abs(sol.com_var - 0.025)) / 0.025 < 1e-4


@pytest.mark.parametrize("scaling, d, n_times", [
    ("mean_field", 2, 101), ("mean_field", 3, 101), ("fixed", 2, 101), ("fixed", 2, 21)])
def test_shipped_boson_references_load_for_the_profiles_time_grids(scaling, d, n_times, tmp_path,
                                                                   monkeypatch):
    """The package ships the grid references of the default profile (mean-field coupling, d = 2, 3,
    101 times) and of the quick one, so that a fresh machine does not spend minutes on them; each
    carries its two-grid convergence check."""
    monkeypatch.setenv("DSM_BENCH_CACHE", str(tmp_path))  # an empty user cache
    problem = problems.get("bosons", d=d, scaling=scaling)
    ref = problem.reference()
    sol = ref.solution(np.linspace(0.0, 1.0, n_times))
    assert ref.last["cached"] is True
    assert Path(ref.last["path"]).parent == cache.SHIPPED / "references"
    conv = ref.last["convergence"]
    assert conv["var_rel_l2"] < 1e-3 and conv["com_var_rel_max"] < 1e-3
    assert conv["pair_w1_max"] < 2e-3
    inv = problem.invariants()
    assert np.max(np.abs(sol.com_var - inv.com_var)) / inv.com_var < 1e-3
