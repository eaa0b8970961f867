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


@pytest.fixture(scope="session")
def quick_local(tmp_path_factory):
    """The quick profile run once through the local pool (2 workers, 1 thread each)."""
    from harness.cli import main

    out = tmp_path_factory.mktemp("quick-local")
    assert main(["run", "--all", "--profile", "quick", "--workers", "2", "--threads", "1",
                 "--out", str(out)]) == 0
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
