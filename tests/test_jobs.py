"""Jobs with real worker processes and the store's SQLite: duplicates, cancel, a killed worker, resume."""
import os
import signal
import time
from pathlib import Path

import pytest
import torch

from core.errors import UserError
from core.jobs import WORKER_NICENESS, Jobs
from core.models.trained import run_folder
from core.models.weights import load_tensors
from core.store import Store
from core.train.loop import train
from core.train.recipe import Recipe

RECIPE = Recipe(model="cnn-2layer", dataset="digits", epochs=12, batch_size=32, lr=0.05, schedule="cosine",
                augment="flip")


def _spec(recipe: Recipe = RECIPE) -> dict:
    return {"recipe": recipe.to_dict(), "device": "cpu"}


def _wait(jobs: Jobs, job_id: int, until, timeout: float = 120.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        job = jobs.get(job_id)
        if until(job):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never got there; last: {job.state} {job.progress} {job.error}")


def test_the_same_job_submitted_twice_runs_once(tmp_path):
    jobs = Jobs(Store(tmp_path))
    small = Recipe(model="linear", dataset="digits", epochs=1)
    a = jobs.submit("train", _spec(small), "t", start_worker=False)
    b = jobs.submit("train", _spec(small), "t", start_worker=False)
    assert a.id == b.id and a.state == "queued"
    assert jobs.work() == 1 and jobs.work() == 0  # one run, nothing left
    done = jobs.submit("train", _spec(small), "t", start_worker=False)
    assert done.id == a.id and done.state == "done" and done.result["run_id"] == small.run_id
    assert len(jobs.list()) == 1


def test_concurrency_limit_holds_jobs_in_the_queue(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNVIT_MAX_JOBS", "1")
    jobs = Jobs(Store(tmp_path))
    first = jobs.submit("evaluate", {"model": "linear", "dataset": "digits", "split": "val"}, "e1", start_worker=False)
    second = jobs.submit("evaluate", {"model": "linear", "dataset": "digits", "split": "test"}, "e2", start_worker=False)
    claimed = jobs.claim()
    assert claimed.id == first.id and claimed.state == "running"
    assert jobs.claim() is None  # the limit is full: the second waits
    jobs.run(claimed)
    assert jobs.get(first.id).result["top1"] is not None
    assert jobs.claim().id == second.id


def test_cancel_a_queued_job_and_refuse_cancelling_a_finished_one(tmp_path):
    jobs = Jobs(Store(tmp_path))
    job = jobs.submit("train", _spec(), "t", start_worker=False)
    assert jobs.cancel(job.id).state == "cancelled"
    assert jobs.claim() is None
    with pytest.raises(UserError, match="only queued or running"):
        jobs.cancel(job.id)


def test_cancel_a_running_worker_then_resume(tmp_path):
    store = Store(tmp_path)
    jobs = Jobs(store)
    job = jobs.submit("train", _spec(), "t")  # a real background worker process
    job = _wait(jobs, job.id, lambda j: j.state == "running" and j.progress.get("epoch", 0) >= 1)
    # the worker yields the CPU to the app's pages: its niceness is ours + WORKER_NICENESS (field 19 of stat)
    nice = int(Path(f"/proc/{job.pid}/stat").read_text().rpartition(")")[2].split()[16])
    assert nice == min(19, os.nice(0) + WORKER_NICENESS)
    jobs.cancel(job.id)
    job = _wait(jobs, job.id, lambda j: j.state != "running")
    assert job.state == "cancelled" and "stopped during epoch" in job.error
    assert (run_folder(store, RECIPE.run_id) / "checkpoint.safetensors").exists()
    jobs.resume(job.id, start_worker=False)
    assert jobs.work() == 1 and jobs.get(job.id).state == "done"


def test_killed_worker_is_marked_interrupted_and_resume_matches_an_uninterrupted_run(tmp_path):
    store = Store(tmp_path / "killed")
    jobs = Jobs(store)
    job = jobs.submit("train", _spec(), "t")
    job = _wait(jobs, job.id, lambda j: j.state == "running" and j.progress.get("epoch", 0) >= 2)
    os.kill(job.pid, signal.SIGKILL)
    job = _wait(jobs, job.id, lambda j: j.state != "running", timeout=30)
    assert job.state == "interrupted" and f"pid {job.pid}" in job.error
    ckpt = load_tensors(run_folder(store, RECIPE.run_id) / "checkpoint.safetensors")[1]
    assert 1 <= ckpt["epoch"] + 1 < RECIPE.epochs  # killed part-way, with complete epochs on disk

    jobs.resume(job.id, start_worker=False)
    assert jobs.work() == 1
    assert jobs.get(job.id).state == "done"
    whole = Store(tmp_path / "whole")
    train(RECIPE, store=whole, device="cpu")
    a = load_tensors(run_folder(store, RECIPE.run_id) / "weights.safetensors")[0]
    b = load_tensors(run_folder(whole, RECIPE.run_id) / "weights.safetensors")[0]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [h["epoch"] for h in store.get(RECIPE.run_id).meta["history"]] == list(range(1, RECIPE.epochs + 1))


def test_a_failing_job_keeps_its_message(tmp_path):
    jobs = Jobs(Store(tmp_path))
    job = jobs.submit("evaluate", {"model": "no-such-model", "dataset": "digits"}, "e", start_worker=False)
    jobs.work()
    job = jobs.get(job.id)
    assert job.state == "failed" and "unknown model 'no-such-model'" in job.error


def test_a_finished_job_keeps_its_last_progress(tmp_path):
    """Progress is written at most twice a second, so the evaluation's last batches (359 digits images in batches
    of 64: 64, 128, ..., 359, all inside half a second of the first write) are held back; the end state carries
    the last one, so `core jobs` shows 359/359 and not 64/359."""
    jobs = Jobs(Store(tmp_path))
    job = jobs.submit("evaluate", {"model": "linear", "dataset": "digits", "split": "val"}, "e", start_worker=False)
    done = jobs.run(jobs.claim(job.id))
    assert done.state == "done" and done.result["n"] == 359
    assert (done.progress.step, done.progress.steps) == (359, 359)
