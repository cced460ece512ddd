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
os.environ["CNNVIT_CACHE_DIR"] = str(_SESSION_CACHE)  # shared by subprocesses
# the generated datasets, once for the whole run, whatever store a test (or a process it starts: torchrun's ranks,
# a worker, the GPU script's commands) points at: each store generating `shapes` for itself cost 9 s on 2 cores,
# about 40 times a run (most of test_distributed's time). tests/test_embedded_datasets.py generates its own.
os.environ["CNNVIT_DATASETS_DIR"] = str(_SESSION_CACHE / "datasets")

os.environ.setdefault("CNNVIT_DEVICE", "cpu")
if os.environ.get("PYTEST_XDIST_WORKER"):  # one torch thread per worker (and its subprocesses): the workers share
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # the cores instead of oversubscribing them


# The modules whose tests take longest, longest first (seconds of their tests on 2 AVX2 cores, 2026-12-06, from a
# timeline of every test's start and end on each worker: 183, 145, 125, 116, 81, 79, 45, 41 of 1,321 in all). They are
# collected first, and pyproject.toml's --no-loadscope-reorder makes xdist hand whole modules to its workers in
# collection order, so the long ones start at once and the short ones fill in around them. Without that flag xdist 3.8
# orders modules by their number of tests: the browser test started at 395 s and the GPU script's at 614 s of a 742 s
# run, and one worker sat idle for the last 106 s. A module missing here runs in its alphabetical place.
LONG_MODULES = ("test_browser.py", "test_distributed.py", "test_overfit.py", "test_train.py", "test_fuzz.py",
                "test_gpu_script.py", "test_rerun_race.py", "test_jobs.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONG_MODULES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONG_MODULES)))  # stable: the rest keep their order


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
