"""Every test run gets its own store: nothing touches the user's cache/."""
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# one cache for the whole run, xdist workers included (generated datasets are written atomically, so two workers
# generating the same file at once is safe). The process that made it (pytest itself, or xdist's controller, whose
# workers inherit the variable) removes it at the end: runs had left ~35 MB each in /tmp (340 of them, 12 GB here).
# Workers and pytest runs started by tests inherit it and leave it alone.
_OWNER = "CNNVIT_TEST_SESSION_CACHE" not in os.environ
if _OWNER:
    os.environ["CNNVIT_TEST_SESSION_CACHE"] = tempfile.mkdtemp(prefix="cnnvit-test-cache-")
_SESSION_CACHE = Path(os.environ["CNNVIT_TEST_SESSION_CACHE"])
_SESSION_CACHE.mkdir(exist_ok=True)
os.environ["CNNVIT_CACHE_DIR"] = str(_SESSION_CACHE)  # shared by subprocesses; `shapes` is generated once

os.environ.setdefault("CNNVIT_DEVICE", "cpu")
if os.environ.get("PYTEST_XDIST_WORKER"):  # one torch thread per worker (and its subprocesses): the workers share
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # the cores instead of oversubscribing them


def pytest_unconfigure(config):
    if _OWNER:
        shutil.rmtree(_SESSION_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def session_cache() -> Path:
    return _SESSION_CACHE


@pytest.fixture
def store(tmp_path):
    from core.store import Store

    return Store(tmp_path / "store")
