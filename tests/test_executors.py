"""Executors: the local process pool and Dask give the same records; faults become failed
records; interrupting or killing the command leaves no half-written record; --resume finishes."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import run_bad_input, smoke_argv, smoke_overrides

from harness import dask_cluster, pool, profiles, protocol, records
from harness.cli import main
from harness.runner import RunRequest, plan

ROOT = Path(__file__).resolve().parent.parent


def _records(directory: Path) -> dict[str, dict]:
    return {rec["run_id"]: rec for _, rec in records.iter_records(directory)}


def _assert_clean(directory: Path) -> None:
    """Every JSON file parses; no temporary file is left behind."""
    for path in directory.rglob("*.json"):
        json.loads(path.read_text())
    assert not list(directory.rglob("*.tmp")), list(directory.rglob("*.tmp"))


# --- thread caps and the process model ------------------------------------------------------
def test_default_threads_share_the_cores():
    assert protocol.default_threads(1, cores=2) == 2
    assert protocol.default_threads(2, cores=2) == 1
    assert protocol.default_threads(3, cores=2) == 1
    assert protocol.default_threads(2, cores=16) == 8


def test_dask_workers_share_the_cores_they_have_in_common():
    workers = {"tcp://a:1": {"host": "a", "nthreads": 1}, "tcp://a:2": {"host": "a", "nthreads": 1},
               "tcp://b:1": {"host": "b", "nthreads": 2}, "tcp://b:2": {"host": "b", "nthreads": 1}}
    cpus = {"tcp://a:1": [0, 1], "tcp://a:2": [0, 1],            # a LocalCluster: shared cores
            "tcp://b:1": list(range(8)), "tcp://b:2": list(range(8, 16))}  # two SLURM jobs
    assert dask_cluster.worker_threads(workers, cpus) == {
        "tcp://a:1": 1, "tcp://a:2": 1, "tcp://b:1": 4, "tcp://b:2": 8}


def test_child_environment_caps_threads_and_points_at_this_code():
    env = protocol.child_env(3, plugins="")
    assert all(env[k] == "3" for k in protocol.THREAD_ENV)
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(ROOT)
    assert "DSM_BENCH_PLUGINS" not in env


def test_smoke_matrix_through_the_local_pool(quick_local):
    recs = _records(quick_local)
    assert len(recs) == len(profiles.requests(profiles.load("quick", smoke_overrides())))
    assert {r["status"] for r in recs.values()} <= {"ok", "skipped"}
    assert all(r["reason"] for r in recs.values() if r["status"] == "skipped")
    for rec in (r for r in recs.values() if r["status"] == "ok"):
        assert rec["execution"]["executor"] == "local" and rec["execution"]["threads"] == 1
        assert rec["execution"]["workers"] == 2
        assert "torch threads 1" in rec["env"]["device"]  # the cap held inside the child
    _assert_clean(quick_local)


def test_scheduler_addresses_are_parsed_or_rejected():
    assert dask_cluster.parse_scheduler("local") == ("local", 2)
    assert dask_cluster.parse_scheduler("local:3") == ("local", 3)
    assert dask_cluster.parse_scheduler("tcp://10.0.0.5:8786") == ("address", "tcp://10.0.0.5:8786")
    assert dask_cluster.parse_scheduler("node7:8786") == ("address", "tcp://node7:8786")
    for bad in ("", "local:0", "local:x", "tcp://host", "host:99999", "ftp://h:1", "a b:1"):
        with pytest.raises(ValueError, match="scheduler"):
            dask_cluster.parse_scheduler(bad)


def test_a_stopped_isolated_run_is_killed(fault_plugin):
    run = plan(RunRequest(problem="harmonic_1d", solver="fault_test",
                          solver_params={"mode": "sleep"}, n_times=11))
    from dataclasses import asdict

    t0 = time.monotonic()
    outcome = protocol.run_isolated(asdict(run.request), run.run_id, threads=1, execution={},
                                     stop=lambda: time.monotonic() - t0 > 2)
    assert outcome["failure"]["reason"].startswith("cancelled in phase")
    assert outcome["failure"]["error"]["type"] == "Cancelled"


@pytest.mark.extra
def test_unreachable_scheduler_is_a_connection_error():
    pytest.importorskip("distributed")
    ex = dask_cluster.DaskExecutor("tcp://127.0.0.1:9", connect_timeout_s=2)
    with pytest.raises(ConnectionError, match="cannot reach the Dask scheduler"):
        ex.connect()


@pytest.mark.extra
def test_dask_local_cluster_gives_the_same_records_as_the_local_pool(quick_local, tmp_path):
    distributed = pytest.importorskip("distributed")
    out = tmp_path / "dask"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        workers = set(cluster.scheduler_info["workers"])
        # the same thread cap as the local pool's (set explicitly, so on any machine)
        rc = main(smoke_argv() + ["--executor", "dask", "--scheduler", cluster.scheduler_address,
                                  "--threads", "1", "--out", str(out)])
        # without --threads, the two workers share this machine's cores
        with dask_cluster.DaskExecutor(cluster.scheduler_address) as ex:
            share = ex._per_worker_threads()
        assert share == {w: protocol.default_threads(2) for w in workers}
    assert rc == 0
    local, remote = _records(quick_local), _records(out)
    assert set(local) == set(remote)
    for run_id, rec in remote.items():
        assert rec["status"] == local[run_id]["status"]
        if rec["status"] == "skipped":  # declined by the client, no task
            continue
        assert rec["execution"]["executor"] == "dask" and rec["execution"]["worker"] in workers
        assert rec["execution"]["exit_code"] == 0
        # same seeds, same thread caps: bitwise-equal metrics and observables
        assert rec["metrics"] == local[run_id]["metrics"], run_id
        assert rec["observables"] == local[run_id]["observables"], run_id
    _assert_clean(out)


# --- faults ---------------------------------------------------------------------------------
FAULT_PROFILE = """
seeds = [0]
n_times = 11
time_limit_s = 1
kill_grace_s = 1

[solvers.crank_nicolson]
params = {{ points_per_wavelength = 2.5, phase_step = 0.03, order = 4 }}

[solvers.fault_test]
params = {{ marker = "{marker}" }}

[problems.harmonic_1d]
solver_params = {{ fault_test = {{ mode = "killwrite" }} }}

[problems.harmonic_nd]
dims = [1]
solvers = ["fault_test"]
solver_params = {{ fault_test = {{ mode = "sleep", marker = "" }} }}  # forever
"""

EXPECTED = {
    ("harmonic_1d", "fault_test"): "SIGKILL",
    ("harmonic_nd", "fault_test"): "timeout after",
}
OK_RUN = ("harmonic_1d", "crank_nicolson")


def _by_pair(directory):
    return {(r["problem"]["name"], r["solver"]["name"]): r for r in _records(directory).values()}


@pytest.mark.slow  # 15-20 s of child processes with their time limits
def test_faults_become_failed_records_and_resume_finishes_what_is_missing(
        fault_plugin, tmp_path, capsys):
    marker = tmp_path / "killed-once"  # killwrite kills only while it is absent
    profile = tmp_path / "faults.toml"
    profile.write_text(FAULT_PROFILE.format(marker=marker))
    out = tmp_path / "out"
    args = ["run", "--all", "--profile", str(profile), "--workers", "2", "--out", str(out)]
    assert main(args) == 1  # the matrix completes; failures make the exit status 1
    recs = _by_pair(out)
    assert set(recs) == {OK_RUN, *EXPECTED}
    assert recs[OK_RUN]["status"] == "ok"
    for pair, fragment in EXPECTED.items():
        assert recs[pair]["status"] == "failed" and fragment in recs[pair]["reason"], \
            (pair, recs[pair]["reason"])
    killed = recs[("harmonic_1d", "fault_test")]
    assert killed["error"]["phase"] == "write"  # killed half-way through writing the record
    assert recs[("harmonic_nd", "fault_test")]["error"]["phase"] == "run"
    _assert_clean(out)
    ok_path = out / f"{recs[OK_RUN]['run_id']}.json"
    ok_before = ok_path.stat().st_mtime_ns

    capsys.readouterr()
    assert main(args + ["--resume"]) == 1
    text = capsys.readouterr().out
    assert text.count("[done]") == 1 and f"[done] {recs[OK_RUN]['run_id']}" in text
    after = _by_pair(out)
    assert ok_path.stat().st_mtime_ns == ok_before  # not run again
    assert after[("harmonic_1d", "fault_test")]["status"] == "ok"  # the killed run is finished
    assert after[("harmonic_nd", "fault_test")]["status"] == "failed"  # still sleeping forever
    _assert_clean(out)


@pytest.mark.slow  # 15 s of child processes
def test_raising_nan_and_crashing_runs_become_failed_records(fault_plugin, tmp_path):
    modes = {"raise": "run: RuntimeError: diverged on purpose",
             "nan": "evaluate: FloatingPointError: non-finite mean", "segfault": "SIGSEGV",
             "exit": "exited with code 3", "memory": "run: MemoryError", "ok": None}
    runs = [plan(RunRequest(problem="harmonic_1d", solver="fault_test",
                            solver_params={"mode": m}, n_times=11)) for m in modes]
    seen = []
    pool.LocalExecutor(2, threads=1).run(runs, tmp_path, seen.append)
    assert len(seen) == len(modes)  # the matrix goes on after each failure
    by_mode = {r["solver"]["params"]["mode"]: r for r in _records(tmp_path).values()}
    for mode, fragment in modes.items():
        rec = by_mode[mode]
        if fragment is None:
            assert rec["status"] == "ok"
            # the child saw its thread caps before anything loaded
            assert rec["diagnostics"]["omp_num_threads"] == "1"
            assert rec["diagnostics"]["torch_threads"] == 1
            assert rec["diagnostics"]["pid"] != os.getpid()
        else:
            assert rec["status"] == "failed" and fragment in rec["reason"], rec["reason"]
    assert by_mode["segfault"]["error"]["exit_code"] == -signal.SIGSEGV
    assert any("Fatal Python error" in line or "Segmentation" in line
               for line in by_mode["segfault"]["error"]["log_tail"])
    assert by_mode["exit"]["error"]["exit_code"] == 3
    _assert_clean(tmp_path)


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_for(cond, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow  # the command killed mid-run, then resumed: 22 s
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_killing_the_command_leaves_no_record_and_resume_finishes(fault_plugin, tmp_path):
    marker = tmp_path / "wake-up"  # the sleeping runs finish once it exists
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "harness", "run", "--problem", "harmonic_1d", "--solver",
           "fault_test", "--set", "solver.mode=sleep", "--set", f"solver.marker={marker}",
           "--seeds", "0,1", "--workers", "2", "--times", "11", "--out", str(out)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    private = Path(tempfile.gettempdir())
    for sig in (signal.SIGTERM, signal.SIGKILL):
        before = set(private.glob("dsm-bench-run-*"))
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        assert _wait_for(lambda: len(_children(proc.pid)) == 2), "the pool did not start"
        kids = _children(proc.pid)
        time.sleep(1.0)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        if sig == signal.SIGTERM:
            assert proc.returncode == 128 + signal.SIGTERM
            assert "interrupted (SIGTERM)" in err and "--resume" in err
        else:
            assert proc.returncode == -signal.SIGKILL
        # the children are gone (after SIGKILL they notice their parent's end themselves)
        assert _wait_for(lambda: not any(_alive(k) for k in kids), 30), kids
        # and took their private directories (result, log) with them
        assert _wait_for(lambda: set(private.glob("dsm-bench-run-*")) <= before, 10)
        assert not list(out.glob("*.json")) if out.exists() else True
        if out.exists():
            _assert_clean(out)
    marker.touch()
    res = subprocess.run(cmd + ["--resume"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    recs = _records(out)
    assert len(recs) == 2 and all(r["status"] == "ok" for r in recs.values())
    _assert_clean(out)


# --- command-line checks of execution options ------------------------------------------------
BASE = ["run", "--problem", "harmonic_1d", "--solver", "crank_nicolson"]
BAD = {
    "zero workers": BASE + ["--workers", "0"],
    "workers not a number": BASE + ["--workers", "two"],
    "zero threads": BASE + ["--threads", "0"],
    "unknown executor": BASE + ["--executor", "slurm"],
    "dask without scheduler": BASE + ["--executor", "dask"],
    "bad scheduler address": BASE + ["--executor", "dask", "--scheduler", "not an address"],
    "bad scheduler port": BASE + ["--executor", "dask", "--scheduler", "tcp://h:70000"],
    "local cluster of zero": BASE + ["--executor", "dask", "--scheduler", "local:0"],
    "scheduler without dask": BASE + ["--scheduler", "tcp://h:8786"],
    "workers with inline": BASE + ["--executor", "inline", "--workers", "2"],
    "workers with dask": BASE + ["--executor", "dask", "--scheduler", "local", "--workers", "2"],
    "negative kill grace": BASE + ["--kill-grace", "-1"],
    "nan time limit": BASE + ["--time-limit", "nan"],
    "set-profile without all": BASE + ["--set-profile", "seeds=[0]"],
    "set-profile not key=value": ["run", "--all", "--profile", "quick", "--set-profile", "seeds"],
    "set-profile bad toml": ["run", "--all", "--profile", "quick", "--set-profile", "seeds=[0"],
    "set-profile bad seeds": ["run", "--all", "--profile", "quick", "--set-profile", "seeds=[-1]"],
    "set-profile unknown key": ["run", "--all", "--profile", "quick", "--set-profile", "sedes=[0]"],
    "profile path missing": ["run", "--all", "--profile", "/nonexistent/p.toml"],
    "profile unknown solver": ["run", "--all", "--profile", "quick",
                               "--set-profile", "solvers.nope.params={}"],
}


@pytest.mark.parametrize("argv", BAD.values(), ids=BAD.keys())
def test_bad_execution_options_give_one_line_and_exit_2(argv, tmp_path, capsys):
    run_bad_input(argv, tmp_path / "out", capsys)


def test_plugins_register_solvers_in_fresh_processes(tmp_path):
    plugin = Path(__file__).resolve().with_name("plugins_fault.py")
    env = dict(os.environ, PYTHONPATH=str(ROOT), DSM_BENCH_PLUGINS=str(plugin))
    res = subprocess.run([sys.executable, "-m", "harness", "list"], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "fault_test" in res.stdout and "crank_nicolson" in res.stdout


def test_a_plugin_that_cannot_load_is_one_line_and_exit_2(monkeypatch, capsys):
    monkeypatch.setenv("DSM_BENCH_PLUGINS", "no_such_module_for_dsm_bench")
    assert main(["list"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "harness: error: DSM_BENCH_PLUGINS: cannot load plug-in 'no_such_module_for_dsm_bench': "
        "ModuleNotFoundError: No module named 'no_such_module_for_dsm_bench'"]


def test_registry_register_rules(fault_plugin):
    import solvers
    from core import ParameterError
    from solvers.base import Solver

    assert solvers.register(fault_plugin.FaultSolver) is fault_plugin.FaultSolver  # idempotent
    other = type("Other", (fault_plugin.FaultSolver,), {})
    with pytest.raises(ParameterError, match="already registered"):
        solvers.register(other)
    with pytest.raises(ParameterError, match="does not subclass"):
        solvers.register(type("X", (), {"name": "x"}))
    with pytest.raises(ParameterError, match="non-empty 'name'"):
        solvers.register(type("Y", (Solver,), {}))
    assert "fault_test" in solvers.names()
