import os

import numpy as np
import pytest


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
