"""The Arena page through AppTest on a real store holding a really trained (tiny) arena: the link reopens it,
the page says what was held equal, draws its charts and table, and turns a bad setting into a message."""
import time
from dataclasses import replace

import pytest
from app_test import open_page
from streamlit.testing.v1 import AppTest
from test_arena import DIVERGES

from core.arena.spec import ArenaSpec, chance_text, spread_text
from core.jobs import Jobs
from core.store import Store

# digits (8x8) at its own size, 2 optimiser steps per run: 2 models x 2 seeds x 2 sizes train in seconds
SPEC = ArenaSpec(models=("cnn-2layer", "linear"), dataset="digits", budget="steps:2", seeds=2, sizes=(500, 1000),
                 val_limit=50, image_size=None)
LINK = {"model": ["cnn-2layer", "linear"], "dataset": "digits", "budget": "steps:2", "seeds": "2",
        "size": ["500", "1000"], "val": "50", "image": "0"}


@pytest.fixture
def fresh_store(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNVIT_CACHE_DIR", str(tmp_path))
    return Store(tmp_path)


@pytest.fixture
def trained(fresh_store) -> dict:
    from core.arena.run import run_arena

    return run_arena(SPEC, store=fresh_store)


def _arena(link: dict) -> AppTest:
    return open_page("app_pages/arena.py", link)


def test_a_link_reopens_a_trained_arena_with_what_was_held_equal(trained):
    at = _arena(LINK)
    assert [w.value for w in at.multiselect if w.label == "Models"] == [["cnn-2layer", "linear"]]
    text = "\n".join(m.value for m in at.markdown)
    assert "digits: the same training images at each size (500, 1,000; each a subset of the next)" in text
    assert "the same 50 validation images" in text and "steps:2" in text
    assert "**precision:** bf16 autocast where the hardware has it (these runs: " in text
    assert not at.warning  # one precision for every run
    assert any(trained["data_digest"] in s.value and "passed" in s.value for s in at.success)
    assert len(at.get("vega_lite_chart")) == 3  # bars with intervals, learning curves, accuracy against size
    table = at.dataframe[0].value
    assert len(table) == 4  # 2 models x 2 sizes
    for r in trained["results"]:  # each row is the summary's mean over the two seeds
        row = table[(table["model"] == r["model"]) & (table["size"] == r["size"])].iloc[0]
        assert row["top1"] == pytest.approx(sum(r["top1_runs"]) / 2) and row["seeds_done"] == "2/2"
    assert at.get("download_button")  # the table as CSV
    assert at.query_params["budget"] in ("steps:2", ["steps:2"])  # the page keeps its settings in the link
    # under the bars, how sure the widest interval is (core.arena.spec.spread_text, worked by hand in test_arena)
    spread = spread_text([r for r in trained["results"] if r["size"] == 1000])
    assert [c.value for c in at.caption if c.value.startswith("The widest interval")] == ([spread] if spread else [])
    # and the models whose interval reaches chance (chance_text, worked by hand in test_arena)
    near = chance_text([r for r in trained["results"] if r["size"] == 1000], 0.1)  # digits: 10 classes
    assert [c.value for c in at.caption if c.value.startswith("Within reach of chance")] == ([near] if near else [])


def test_a_failed_data_check_and_a_partial_arena_are_said(trained, fresh_store):
    rec = fresh_store.get(trained["results"][0]["run_ids"][0])  # cnn-2layer at 500 images, seed 0
    epoch = rec.meta["history"][0]
    fresh_store.put(rec.key, rec.kind, rec.meta | {"history": [epoch | {"data_digest": "0" * 16}]})
    assert fresh_store.delete(trained["results"][1]["run_ids"][1])  # linear at 500 images, seed 1: not finished
    rec = fresh_store.get(trained["results"][3]["run_ids"][0])  # linear at 1,000 images ran out of memory
    fresh_store.put(rec.key, rec.kind, rec.meta | {"history": [h | {"micro_batch": 8, "oom_halvings": 3}
                                                               for h in rec.meta["history"]]})
    at = _arena(LINK)
    assert "- **micro-batches:** not held equal for BatchNorm: linear ran out of memory and took each batch of 64 " \
           "in micro-batches of 8" in "\n".join(m.value for m in at.markdown)
    [error] = at.error
    assert error.value.startswith("Data check failed: the models did not all train on the same images")
    assert not at.success
    assert any(c.value == "Partial results: 7 of 8 runs finished." for c in at.caption)


def test_runs_that_diverged_are_said_beside_the_ones_that_finished(fresh_store, monkeypatch):
    from core.arena.run import run_arena
    from core.models.scratch import SCRATCH

    monkeypatch.setitem(SCRATCH, "linear", replace(SCRATCH["linear"], recipe=DIVERGES))  # NaN at its second step
    run_arena(SPEC, store=fresh_store)
    at = _arena(LINK)
    assert not at.exception
    [warning] = at.warning
    assert warning.value.startswith("4 runs diverged (the loss became NaN or infinite) and have no accuracy (linear "
                                    "seed 0 at 500 images: the loss became ")
    table = at.dataframe[0].value
    assert list(table.loc[table["model"] == "linear", "seeds_done"]) == ["0/2, 2 diverged"] * 2
    assert list(table.loc[table["model"] == "cnn-2layer", "seeds_done"]) == ["2/2"] * 2
    assert not any(c.value.startswith("Partial results") for c in at.caption)  # every run has ended
    # an arena of only the diverging model: the page says so, not "press Run arena"
    run_arena(replace(SPEC, models=("linear",)), store=fresh_store)
    at = _arena({**LINK, "model": ["linear"]})
    [warning] = at.warning
    assert warning.value.startswith("4 runs diverged") and not at.info and not at.dataframe


def test_runs_cached_at_another_precision_are_flagged(trained, fresh_store):
    """A store shared with a machine that has bf16 hardware (or lacks it) can hold runs of one arena trained at two
    precisions: the page says precision was not held equal, and how to get one."""
    rec = fresh_store.get(trained["results"][0]["run_ids"][0])
    other = "bf16" if rec.meta["precision"] == "fp32" else "fp32"
    fresh_store.put(rec.key, rec.kind, rec.meta | {"precision": other})
    at = _arena(LINK)
    assert not at.exception
    [warning] = at.warning
    assert warning.value.startswith("Precision was not held equal: these runs trained in bf16 and fp32")
    assert "--no-amp" in warning.value


def test_a_bad_budget_is_a_message_not_a_traceback(fresh_store):
    at = _arena({**LINK, "budget": "epochs:abc"})
    assert any("'abc' is not a number" in e.value for e in at.error)
    assert not at.get("vega_lite_chart")


def test_one_learning_rate_for_every_model_is_another_arena_kept_in_the_link(trained):
    at = _arena({**LINK, "lr": "0.5"})
    assert not at.exception and not at.error
    assert [w.value for w in at.text_input if w.label == "Learning rate"] == ["0.5"]
    assert at.query_params["lr"] in ("0.5", ["0.5"])
    # the trained arena used each model's own rate: at 0.5 for all, none of its runs is this arena's
    assert any(i.value.startswith("No run of this arena has finished yet") for i in at.info)
    assert not at.dataframe
    assert [e.value for e in _arena({**LINK, "lr": "fast"}).error] == [
        "the learning rate 'fast' is not a number (e.g. 0.001); or leave it empty"]
    assert [e.value for e in _arena({**LINK, "lr": "20"}).error] == ["the learning rate must be positive (and at most 10)"]


def test_run_arena_submits_the_job_and_its_result_shows(trained, fresh_store):
    at = _arena(LINK)
    [button] = [b for b in at.button if b.label == "Run arena"]
    button.click()
    at.run()
    assert not at.exception
    jobs = Jobs(fresh_store)
    [job] = jobs.list()
    assert job.kind == "arena" and job.key == SPEC.key  # the arena the link describes
    if jobs.claim(job.id) is not None:  # unless the spawned worker got there first; every run is a cache hit
        jobs.run(jobs.get(job.id))
    for _ in range(600):
        if jobs.get(job.id).state not in ("queued", "running"):
            break
        time.sleep(0.2)
    assert jobs.get(job.id).state == "done"
    at = _arena(LINK)
    assert len(at.dataframe[0].value) == 4 and not at.warning


def test_one_seed_says_why_there_is_no_interval(fresh_store):
    from core.arena.run import run_arena

    spec = ArenaSpec(models=("linear",), dataset="digits", budget="steps:2", seeds=1, val_limit=50, image_size=None)
    run_arena(spec, store=fresh_store)
    at = _arena({"model": "linear", "dataset": "digits", "budget": "steps:2", "seeds": "1", "val": "50", "image": "0"})
    assert any("No interval for linear" in c.value for c in at.caption)
    assert len(at.get("vega_lite_chart")) == 2  # one size: no data-size chart


def test_a_queued_arena_shows_its_job_and_no_results_yet(fresh_store):
    from core.jobs import ArenaJob

    job = Jobs(fresh_store).submit(ArenaJob(SPEC), start_worker=False)  # stays queued: nothing trains
    at = _arena(LINK)
    [bar] = at.get("progress")
    assert bar.proto.text == f"job {job.id} queued" and bar.proto.value == 0
    assert any("No run of this arena has finished yet" in i.value for i in at.info)
    assert [b for b in at.button if b.label == "Cancel"]
