"""Every test run gets its own store: nothing touches the user's cache/."""
import os
import tempfile
from pathlib import Path

import pytest

_SESSION_CACHE = Path(tempfile.mkdtemp(prefix="cnnvit-test-cache-"))
os.environ["CNNVIT_CACHE_DIR"] = str(_SESSION_CACHE)  # shared by subprocesses; `shapes` is generated once
os.environ.setdefault("CNNVIT_DEVICE", "cpu")
if os.environ.get("PYTEST_XDIST_WORKER"):  # one torch thread per worker (and its subprocesses): the workers share
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # the cores instead of oversubscribing them


@pytest.fixture(scope="session")
def session_cache() -> Path:
    return _SESSION_CACHE


@pytest.fixture
def store(tmp_path):
    from core.store import Store

    return Store(tmp_path / "store")
