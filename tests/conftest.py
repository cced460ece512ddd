"""Every test run gets its own store: nothing touches the user's cache/."""
import os
import tempfile
from pathlib import Path

import pytest

# one cache for the whole run, xdist workers included (generated datasets are written atomically, so two workers
# generating the same file at once is safe)
_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID")
_SESSION_CACHE = (Path(tempfile.gettempdir()) / f"cnnvit-test-cache-{_RUN}" if _RUN
                  else Path(tempfile.mkdtemp(prefix="cnnvit-test-cache-")))
_SESSION_CACHE.mkdir(exist_ok=True)
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
