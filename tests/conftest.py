import os
import shutil
from pathlib import Path

import numpy as np
import pytest

#: The fault-injecting plug-in solver (see tests/plugins_fault.py).
FAULT_PLUGIN = Path(__file__).resolve().with_name("plugins_fault.py")


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Reference caches of the test session live in a temporary directory."""
    old = os.environ.get("DSM_BENCH_CACHE")
    os.environ["DSM_BENCH_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("DSM_BENCH_CACHE", None)
    else:
        os.environ["DSM_BENCH_CACHE"] = old


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def fault_plugin(monkeypatch):
    """The ``fault_test`` solver, registered here and (through the environment) in every process
    the executors start; unregistered afterwards."""
    import solvers
    from core import PLUGINS_ENV, load_plugins

    monkeypatch.setenv(PLUGINS_ENV, str(FAULT_PLUGIN))
    module = load_plugins([str(FAULT_PLUGIN)])[0]
    solvers.register(module.FaultSolver)
    yield module
    solvers.REGISTRY.pop(module.FaultSolver.name, None)


def smoke_overrides() -> list[str]:
    """``--set-profile`` items that cut the quick profile down to the fast suite's smoke matrix:
    Crank–Nicolson on every problem of the quick profile (its d = 4 pairs are declined, so the
    matrix holds skipped records too), and every other solver of the profile only on
    ``harmonic_1d`` (where the anytime figure and the regression gate need learned solvers).
    The whole quick profile runs in CI's second phase (``.ci/run``), not here."""
    from harness import profiles

    quick = profiles.load("quick").data
    solvers = [name for name in quick["solvers"] if name != "tvmc"]  # t-VMC: tests/test_tvmc.py
    out = []
    for name in quick["problems"]:
        chosen = solvers if name == "harmonic_1d" else ["crank_nicolson"]
        out.append(f"problems.{name}.solvers={chosen!r}".replace("'", '"'))
    return out


def smoke_argv() -> list[str]:
    """``run --all`` arguments of the smoke matrix (see :func:`smoke_overrides`)."""
    argv = ["run", "--all", "--profile", "quick"]
    for item in smoke_overrides():
        argv += ["--set-profile", item]
    return argv


@pytest.fixture(scope="session")
def quick_local(tmp_path_factory):
    """The smoke matrix (the quick profile cut down, see :func:`smoke_overrides`) run once
    through the local pool (2 workers, 1 thread each)."""
    from harness.cli import main

    out = tmp_path_factory.mktemp("quick-local")
    assert main(smoke_argv() + ["--workers", "2", "--threads", "1", "--out", str(out)]) == 0
    return out


@pytest.fixture
def quick_copy(quick_local, tmp_path):
    """A private copy of the quick-profile records, free to edit."""
    dest = tmp_path / "quick"
    shutil.copytree(quick_local, dest)
    return dest


def run_bad_input(argv, out, capsys):
    """Run the command line with bad input: exit status 2, one line on stderr, no record."""
    from harness.cli import main

    rc = main(argv + ["--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("harness: error: "), err
    assert not out.exists() or not list(out.rglob("*.json"))
