"""The arena: budgets, identical data across models, confidence intervals, crossovers, sized `shapes`, the CLI."""
import json
import math
from dataclasses import replace

import numpy as np
import pytest

from core.arena.run import (
    _crossing,
    budget_steps,
    crossovers,
    diverged_key,
    held_equal,
    plan,
    run_arena,
    summarize,
)
from core.arena.spec import ArenaSpec, Budget, chance_level, chance_text, diverged_text, spread_text
from core.data.registry import load_dataset
from core.errors import UserError
from core.metrics import expected_ci95, mean_ci95
from core.settings import get_settings
from core.store import Store
from core.train.runs import build_for_recipe
from test_cli import assert_user_error, cli


def test_confidence_interval_worked_by_hand_for_three_seeds():
    # 0.80, 0.84, 0.88: mean 0.84, sample sd 0.04, t(0.975, 2 df) = 4.3027 -> 4.3027 * 0.04 / sqrt(3) = 0.09937
    mean, half = mean_ci95([0.80, 0.84, 0.88])
    assert mean == pytest.approx(0.84) and half == pytest.approx(0.09937, abs=1e-5)
    # 0.5, 0.6, 0.9: mean 0.6667; deviations -1/6, -1/15, 7/30 -> s^2 = 0.08667 / 2 -> s = 0.20817;
    # 4.3027 * 0.20817 / 1.7321 = 0.51713
    mean, half = mean_ci95([0.5, 0.6, 0.9])
    assert mean == pytest.approx(2 / 3) and half == pytest.approx(0.51713, abs=1e-4)
    assert mean_ci95([0.7]) == (0.7, None)  # one seed: no interval
    assert mean_ci95([]) == (None, None)


def test_a_wide_interval_says_what_more_seeds_would_give_at_its_spread():
    # 0.5, 0.6, 0.9 (s = 0.20817, the test above): over 5 seeds t(0.975, 4) = 2.7764 -> 2.7764 * 0.20817 / sqrt(5)
    # = 0.25847; over 10, t(0.975, 9) = 2.2622 -> 2.2622 * 0.20817 / sqrt(10) = 0.14892
    assert expected_ci95([0.5, 0.6, 0.9], 5) == pytest.approx(0.25847, abs=1e-4)
    assert expected_ci95([0.5, 0.6, 0.9], 10) == pytest.approx(0.14892, abs=1e-4)
    assert expected_ci95([0.7], 5) is None  # no spread from one seed
    wide = {"model": "resnet20", "top1_ci95": 0.51713, "top1_runs": [0.5, 0.6, 0.9]}
    narrow = {"model": "cct-2", "top1_ci95": 0.0994, "top1_runs": [0.80, 0.84, 0.88]}
    assert spread_text([narrow, wide]) == (
        "The widest interval is resnet20's: ± 51.7 points over 3 seeds, whose runs read 50.0, 60.0, 90.0%. At that "
        "spread, 5 seeds would give about ± 25.8 points and 10 about ± 14.9.")
    assert spread_text([narrow]) is None  # under 10 points: nothing to say
    assert spread_text([{"model": "linear", "top1_ci95": None, "top1_runs": [0.5]}]) is None  # one seed: no interval


def test_a_model_whose_interval_reaches_chance_is_named():
    # chance on shapes is 1/10 (its sized sets too), on cifar100 1/100; a folder's is not known without loading it
    assert [chance_level(d) for d in ("shapes", "shapes-20000", "shapes-textured-5000", "cifar100", "/no/folder")] == [
        0.1, 0.1, 0.1, 0.01, None]
    # the demo's fight as docs/arena.md had it on 2026-12-06 (AVX-512 host, vit-small): 11.7 - 2.2 = 9.5 and
    # 28.9 - 38.4 < 0 reach 10%; 71.1 - 55.8 = 15.3 and 38.9 - 8.9 = 30.0 do not; one seed has no interval to read
    demo = [{"model": "cnn-multilayer", "top1_mean": 0.289, "top1_ci95": 0.384},
            {"model": "resnet20", "top1_mean": 0.711, "top1_ci95": 0.558},
            {"model": "vit-small", "top1_mean": 0.117, "top1_ci95": 0.022},
            {"model": "cct-2", "top1_mean": 0.389, "top1_ci95": 0.089},
            {"model": "linear", "top1_mean": 0.09, "top1_ci95": None}]
    assert chance_text(demo, 0.1) == (
        "Within reach of chance (10.0%, a guess among 10 classes): cnn-multilayer (28.9% ± 38.4), vit-small (11.7% ± "
        "2.2). Their 95% intervals reach down to chance, so these seeds do not show that they learned the task in this "
        "budget.")
    assert chance_text(demo[2:3], 0.1) == (
        "Within reach of chance (10.0%, a guess among 10 classes): vit-small (11.7% ± 2.2). Its 95% interval reaches "
        "down to chance, so these seeds do not show that it learned the task in this budget.")
    assert chance_text(demo[1:2] + demo[3:], 0.1) is None
    assert chance_text(demo, None) is None  # a folder: nothing said


@pytest.mark.parametrize("text, kind, amount", [("epochs:8", "epochs", 8), ("steps:500", "steps", 500),
                                                ("seconds:90", "seconds", 90), ("flops:2e13", "flops", 2e13),
                                                (" FLOPS:1e9 ", "flops", 1e9)])
def test_budgets_read(text, kind, amount):
    assert Budget.parse(text) == Budget(kind, amount)


@pytest.mark.parametrize("text, message", [("epochs", "does not read"), ("minutes:3", "does not read"),
                                           ("epochs:abc", "not a number"), ("steps:-5", "positive"),
                                           ("epochs:2.5", "whole number"), ("flops:inf", "positive")])
def test_bad_budgets_say_why(text, message):
    with pytest.raises(UserError, match=message):
        Budget.parse(text)


def test_arena_refuses_what_it_cannot_compare():
    with pytest.raises(UserError, match="from scratch"):
        ArenaSpec(models=("resnet20", "google/vit-base-patch16-224"))
    with pytest.raises(UserError, match="twice"):
        ArenaSpec(models=("resnet20", "resnet20"))
    with pytest.raises(UserError, match="sizes or a limit"):
        ArenaSpec(models=("resnet20",), sizes=(500,), limit=100)


def test_crossover_is_interpolated_on_a_log_scale():
    # the gap goes -10 -> +10 points between 500 and 2000 images: it crosses at the geometric mean, 1000
    out = _crossing([500, 2000], [-0.1, 0.1], "vit", "cnn")
    assert out["size"] == 1000 and "overtakes" in out["text"]
    out = _crossing([500, 2000, 8000], [-0.3, -0.2, -0.1], "vit", "cnn")
    assert out["size"] is None and "stays behind cnn up to 8,000" in out["text"]
    assert "(10.0 points behind at the largest size;" in out["text"]  # top-1 points, not a relative gap
    assert out["settled"] is None and "one seed, so no interval" in out["text"]  # no halves given: one seed


def _result(model: str, family: str, size: int, tops: list[float], seeds: list[int] | None = None) -> dict:
    return {"model": model, "family": family, "size": size, "top1_mean": float(np.mean(tops)), "top1_runs": tops,
            "top1_seeds": seeds if seeds is not None else list(range(len(tops)))}


def test_a_crossover_says_how_sure_it_is_from_gaps_paired_by_seed():
    """Seed s trains every model on the same images in the same order, so the gap is taken per seed. At 500 images
    the CNN's seeds spread from 20% to 40% but the ViT is 1 point ahead on each: +1.0 ± 0.0, beyond seed noise,
    though the two models' own intervals overlap almost entirely. At 2,000 the per-seed gaps are -10, -8, -12
    points: mean -10.0, s = 2.0, half-width 4.303 x 2.0 / sqrt(3) = 5.0."""
    cnn = [_result("cnn", "cnn", 500, [0.20, 0.30, 0.40]), _result("cnn", "cnn", 2000, [0.50, 0.60, 0.70])]
    vit = [_result("vit", "vit", 500, [0.21, 0.31, 0.41]), _result("vit", "vit", 2000, [0.40, 0.52, 0.58])]
    [c] = crossovers(cnn + vit)
    assert (c["model"], c["versus"]) == ("vit", "cnn")
    assert [(g["size"], g["seeds"]) for g in c["gaps"]] == [(500, 3), (2000, 3)]
    assert c["gaps"][0]["gap"] == pytest.approx(0.01) and c["gaps"][0]["gap_ci95"] == pytest.approx(0.0, abs=1e-12)
    assert c["gaps"][1]["gap"] == pytest.approx(-0.10) and c["gaps"][1]["gap_ci95"] == pytest.approx(0.04969, abs=1e-5)
    # +1 -> -10 points between 500 and 2,000: 1/11 of the way on a log scale, 500 x 4^(1/11) = 567
    assert c["size"] == 567 and c["settled"] is True
    assert c["text"] == ("vit falls behind cnn at about 567 training images (the gap: +1.0 ± 0.0 points at 500 and "
                         "-10.0 ± 5.0 points at 2,000 images)")
    # the same means with a ViT whose per-seed gaps at 500 are +5, -3, +1 points: +1.0 ± 9.9, so not settled
    vit[0] = _result("vit", "vit", 500, [0.25, 0.27, 0.41])
    [c] = crossovers(cnn + vit)
    assert c["size"] == 567 and c["settled"] is False
    assert "+1.0 ± 9.9 points at 500" in c["text"] and "within seed noise at 500 images" in c["text"]
    # seed 2 of the ViT not finished at 2,000: the gap there pairs seeds 0 and 1 only (-10, -8: t with 1 degree)
    vit[1] = _result("vit", "vit", 2000, [0.40, 0.52], seeds=[0, 1])
    [c] = crossovers(cnn + vit)
    assert c["gaps"][1]["seeds"] == 2 and c["gaps"][1]["gap"] == pytest.approx(-0.09)
    assert c["gaps"][1]["gap_ci95"] == pytest.approx(12.706 * 0.02 / 2, abs=1e-4)
    assert "within seed noise at 500 and 2,000 images" in c["text"]
    # and says so: the ViT's line at 2,000 is its 2-seed mean, the CNN's its 3-seed one, the gap pairs 2 seeds
    assert [g["partial"] for g in c["gaps"]] == [False, True]
    assert c["text"].endswith("; at 2,000 images only the 2 seeds both models have finished are paired, while the "
                              "plotted means use every finished seed)")


def test_a_size_where_every_seed_diverged_is_named_not_read_across_silently():
    vit = [_result("vit", "vit", 500, [0.10, 0.12]), _result("vit", "vit", 5000, [0.50, 0.52]),
           {"model": "vit", "family": "vit", "size": 2000, "top1_mean": None, "top1_runs": [], "top1_seeds": [],
            "runs_diverged": 2, "runs": 2}]
    cnn = [_result("cnn", "cnn", n, [t, t + 0.02]) for n, t in ((500, 0.20), (2000, 0.30), (5000, 0.40))]
    [out] = crossovers(vit + cnn)
    assert [g["size"] for g in out["gaps"]] == [500, 5000]
    assert out["text"].startswith("vit overtakes cnn at about 1,581 training images")  # sqrt(500 x 5,000)
    assert out["text"].endswith("; no gap at 2,000 images, where every seed of vit diverged")
    # one seed of two diverged: that size keeps its gap (from the seed both finished), and no such clause
    vit[2] = _result("vit", "vit", 2000, [0.25], seeds=[1]) | {"runs_diverged": 1, "runs": 2}
    [out] = crossovers(vit + cnn)
    assert [g["size"] for g in out["gaps"]] == [500, 2000, 5000] and "diverged" not in out["text"]


def test_ties_and_missing_intervals_are_said_as_they_are():
    # a gap of exactly 0 (two models at chance on the same images) is a tie: level, not ahead
    out = _crossing([500, 2000], [0.0, 0.0], "vit", "cnn", [0.0, 0.0])
    assert out["size"] is None and out["text"].startswith("vit is level with cnn at every size from 500 images")
    assert out["settled"] is False  # 0 is not beyond an interval of 0
    # a tie is neither side of a crossing: behind, level, ahead crosses between 500 and 8,000 (the geometric mean)
    out = _crossing([500, 2000, 8000], [-0.1, 0.0, 0.1], "vit", "cnn", [0.01, 0.01, 0.01])
    assert out["size"] == 2000 and "overtakes" in out["text"] and "-10.0 ± 1.0 points at 500" in out["text"]
    # a tie between the sides is where it changed side (not skipped: it was at 1,000, not at 500 x 100^(1/2) = 5,000)
    out = _crossing([500, 1000, 50000], [-0.01, 0.0, 0.01], "vit", "cnn", [0.005] * 3)
    assert out["size"] == 1000 and out["text"] == (
        "vit overtakes cnn at about 1,000 training images (the gap: -1.0 ± 0.5 points at 500, 0.0 ± 0.5 points at "
        "1,000 and +1.0 ± 0.5 points at 50,000 images)")
    # ahead, then behind again: both changes said, the last size's settled deficit included; -5 -> +5 crosses at
    # the log-middle of 500 and 2,000 (1,000), +5 -> -10 a third of the way from 2,000 to 8,000: 2,000 x 4^(1/3) = 3,175
    out = _crossing([500, 2000, 8000], [-0.05, 0.05, -0.1], "vit", "cnn", [0.01] * 3)
    assert (out["size"], out["sizes"], out["settled"]) == (1000, [1000, 3175], True)
    assert out["text"].startswith("vit overtakes cnn at about 1,000 training images, then falls behind it at about "
                                  "3,175 (the gap: -5.0 ± 1.0 points at 500, +5.0 ± 1.0 points at 2,000 and -10.0")
    # behind, then level at the largest size: not "stays behind up to 5,000", nor "-0.0 points behind" there
    out = _crossing([500, 2000, 5000], [-0.05, -0.02, 0.0], "vit", "cnn", [0.01] * 3)
    assert out["size"] is None and out["settled"] is False
    assert out["text"].startswith("vit is never ahead of cnn from 500 to 5,000 training images (2.0 ± 1.0 points "
                                  "behind at 2,000 images; level at 5,000 images; within seed noise at 5,000 images")
    out = _crossing([500, 2000, 5000], [0.05, 0.0, 0.0], "vit", "cnn", [0.01] * 3)
    assert out["text"].startswith("vit is never behind cnn from 500 to 5,000 training images (5.0 ± 1.0 points "
                                  "ahead at 500 images; level at 2,000 and 5,000 images")
    # ahead at every size, by more than the noise
    out = _crossing([500, 2000], [0.1, 0.2], "vit", "cnn", [0.01, 0.01])
    assert out == {"size": None, "settled": True, "text": "vit is ahead of cnn at every size from 500 images"}
    # one size with one paired seed, another whose interval includes zero: both said, neither hidden
    out = _crossing([500, 2000], [-0.01, -0.2], "vit", "cnn", [0.09, None])
    assert out["settled"] is False
    assert "within seed noise at 500 images" in out["text"] and "one seed at 2,000 images" in out["text"]


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNVIT_CACHE_DIR", str(tmp_path / "store"))
    return Store(tmp_path / "store")


def test_every_model_trains_on_the_same_images_in_the_same_order(store):
    spec = ArenaSpec(models=("linear", "cnn-2layer", "cct-2"), dataset="digits", budget="epochs:2", seeds=2,
                     limit=300, val_limit=60, image_size=None)
    out = run_arena(spec, store=store)
    assert out["same_data"] is True and out["complete"]
    assert [r["model"] for r in out["results"]] == ["linear", "cnn-2layer", "cct-2"]
    digests = [r["data_digests"] for r in out["results"]]
    assert digests[0] == digests[1] == digests[2]  # per seed, identical across the three architectures
    assert digests[0][0] != digests[0][1]  # and a different order for another seed
    for r in out["results"]:
        assert r["runs_done"] == 2 and len(r["top1_runs"]) == 2 and r["top1_ci95"] is not None
        assert r["train_flops"] > 0 and r["params"] > 0
    # per-epoch digests in each run's history agree model by model, and cover 300 images per epoch
    histories = [store.get(run_id).meta["history"] for r in out["results"] for run_id in r["run_ids"][:1]]
    assert len({tuple(h["data_digest"] for h in hist) for hist in histories}) == 1
    assert all(h["images"] == 300 for hist in histories for h in hist)
    # the learning curves count the images (and FLOPs) trained so far, epoch by epoch
    linear = [c for c in out["curves"] if c["model"] == "linear" and c["seed"] == 0]
    per_image = store.get(out["results"][0]["run_ids"][0]).meta["train_flops_per_image"]
    assert [(c["epoch"], c["images_seen"], c["train_flops"]) for c in linear] == [
        (1, 300, 300 * per_image), (2, 600, 600 * per_image)] and per_image == 2560  # 64 x 10 x 2 x 2, by hand
    # runs are ordinary cached runs: asking again trains nothing, and the summary is the same
    again = run_arena(spec, store=store)
    assert again["results"] == out["results"]
    # precision: as each run recorded it (fp32 on a CPU without bf16 hardware); a run cached from a machine that
    # trained it in another precision makes the summary say precision was not held equal
    [precision] = {store.get(i).meta["precision"] for r in out["results"] for i in r["run_ids"]}
    assert out["same_precision"] is True
    assert out["held_equal"]["precision"] == f"bf16 autocast where the hardware has it (these runs: {precision})"
    other = "fp32" if precision == "bf16" else "bf16"
    rec = store.get(out["results"][1]["run_ids"][0])
    store.put(rec.key, rec.kind, rec.meta | {"precision": other})
    mixed = summarize(spec, store)
    assert mixed["same_precision"] is False and mixed["precisions"] == sorted({precision, other})
    both = " and ".join(sorted({precision, other}))
    assert mixed["held_equal"]["precision"].startswith(f"NOT held equal: the runs trained in {both}")
    # a run resumed elsewhere: its last precision agrees, one epoch's does not
    history = [rec.meta["history"][0] | {"precision": other}, *rec.meta["history"][1:]]
    store.put(rec.key, rec.kind, rec.meta | {"history": history})
    assert summarize(spec, store)["same_precision"] is False
    # a run that ran out of memory in its second epoch: its batches of 64 went through in micro-batches of 16
    assert "micro_batches" not in mixed["held_equal"]
    history = [rec.meta["history"][0], rec.meta["history"][1] | {"micro_batch": 16, "oom_halvings": 2}]
    store.put(rec.key, rec.kind, rec.meta | {"history": history})
    assert summarize(spec, store)["held_equal"]["micro_batches"] == (
        "not held equal for BatchNorm: cnn-2layer ran out of memory and took each batch of 64 in micro-batches of 16 "
        "(the optimiser steps are still the whole batch's; BatchNorm normalised each micro-batch)")
    # fp32 asked for and got: said once
    assert held_equal(replace(spec, amp=False), trained_in={"fp32"})["precision"] == "fp32"


def test_what_was_held_equal_names_the_validation_images_the_runs_were_scored_on(store):
    """A limit above the split's size validates the whole split: digits' validation images under a limit of 500
    are all of them, and the held-equal line said "the same 500 validation images" (a reviewer found it)."""
    n = len(load_dataset("digits").split("val"))
    assert n < 500  # 359: the arena below asks for more than there are
    spec = ArenaSpec(models=("linear",), dataset="digits", budget="steps:1", seeds=1, limit=64, val_limit=500,
                     image_size=None)
    assert run_arena(spec, store=store)["held_equal"]["validation"] == (
        f"the same {n} validation images (all of them: 500 were asked for)")
    assert run_arena(replace(spec, val_limit=40), store=store)["held_equal"]["validation"] == (
        "the same 40 validation images")
    assert run_arena(replace(spec, val_limit=None), store=store)["held_equal"]["validation"] == (
        f"all {n} validation images")
    # before any run has finished, what was asked for; runs scored on different counts are said not equal
    assert held_equal(spec)["validation"] == "the same 500 validation images"
    assert held_equal(spec, val_images={40, n})["validation"] == (
        f"NOT held equal: the runs were scored on 40 and {n} images")


def test_the_data_check_fails_when_a_model_saw_other_images(store):
    # 100 images in batches of 64: epoch 1 has 2 steps (100 images), the budget's third step is 64 of epoch 2
    spec = ArenaSpec(models=("linear", "cnn-2layer"), dataset="digits", budget="steps:3", seeds=1, limit=100,
                     val_limit=40, image_size=None)
    out = run_arena(spec, store=store)
    assert out["same_data"] is True
    rec = store.get(out["results"][1]["run_ids"][0])
    first, last = rec.meta["history"]
    assert (first["images"], last["images"]) == (100, 64)

    def check(epoch_1: dict, epoch_2: dict) -> bool | None:
        store.put(rec.key, rec.kind, rec.meta | {"history": [first | epoch_1, last | epoch_2]})
        return summarize(spec, store)["same_data"]

    assert check({"data_digest": "0" * 16}, {}) is False  # other images or another order
    assert check({"images": 99}, {}) is False  # fewer images in a whole epoch: a smaller subset, skipped files
    assert check({}, {"data_digest": "0" * 16}) is False  # the last epoch, as many images, in another order
    # a FLOPs or seconds budget ends each model's run at its own step: fewer images of the same order, so the last
    # epoch's count, and with it its digest, may differ
    assert check({}, {"images": 36, "data_digest": "0" * 16}) is True
    assert check({}, {}) is True


def test_a_flops_budget_buys_a_cheaper_model_more_steps(store):
    spec = ArenaSpec(models=("linear", "cnn-2layer"), dataset="digits", budget="flops:2e9", seeds=1, limit=300,
                     image_size=None)
    cells = plan(spec, store)
    # by hand: the linear model on 8 x 8 digits is 64 x 10 multiply-adds, 1,280 FLOPs forward, and as many again for
    # its weight gradient (no input gradient): 2,560 a training image, 163,840 a step of 64; 2e9 of them buy 12,207
    assert {c.model: c.recipe.max_steps for c in cells}["linear"] == 12_207
    steps = {}
    for c in cells:
        _, model = build_for_recipe(c.recipe)
        per_step = model.train_flops_per_image() * c.recipe.batch_size
        assert c.recipe.max_steps == max(1, int(2e9 // per_step))  # what the budget buys, counted
        steps[c.model] = c.recipe.max_steps
    assert steps["linear"] > steps["cnn-2layer"]


def test_a_seconds_budget_buys_what_the_measured_rate_trains_in_that_time(store):
    spec = ArenaSpec(models=("linear",), dataset="digits", budget="seconds:10", seeds=1, limit=300, image_size=None)
    [cell] = plan(spec, store)  # times a few training steps of the model once, and keeps the rate
    [cal] = store.records("calibration")
    assert cal.meta["images_per_second"] > 0 and cell.recipe.max_steps >= 1
    # later plans read the kept rate: 640 images/s for 10 s at batch 64 is 100 steps
    store.put(cal.key, cal.kind, cal.meta | {"images_per_second": 640.0})
    assert budget_steps(Budget("seconds", 10), cell.recipe, store) == 100
    assert budget_steps(Budget("seconds", 0.05), cell.recipe, store) == 1  # at least one step


def test_training_flops_are_about_three_forward_passes():
    # backward costs about twice the forward (input and weight gradients): 3x per image in all, for a CNN
    spec = ArenaSpec(models=("cnn-2layer",), dataset="digits", budget="epochs:1", seeds=1, image_size=None)
    _, model = build_for_recipe(plan(spec, Store())[0].recipe)
    ratio = model.train_flops_per_image() / model.flops_per_image()
    assert 2.5 <= ratio <= 3.0  # the first layer needs no input gradient, hence a bit under 3


def test_smaller_training_sets_are_subsets_of_larger_ones(store):
    spec = ArenaSpec(models=("linear",), dataset="digits", budget="steps:1", seeds=1, sizes=(200, 600),
                     image_size=None)
    cells = plan(spec, store)
    assert [c.size for c in cells] == [200, 600] and [c.recipe.limit for c in cells] == [200, 600]
    train = load_dataset("digits").split("train")
    small, large = train.limited(200).index, train.limited(600).index
    assert set(small) <= set(large)
    # all 1,078 training images, asked for as a limit or as nothing: the same runs (the same data, one cache entry)
    every = ArenaSpec(models=("linear",), dataset="digits", budget="steps:1", seeds=1, image_size=None)
    assert [c.recipe.run_id for c in plan(replace(every, limit=1078), store)] == [
        c.recipe.run_id for c in plan(every, store)]
    with pytest.raises(UserError, match="digits has 1,078 training images; a size of 5,000 needs more"):
        plan(replace(spec, sizes=(200, 5000)), store)


def test_shapes_at_any_training_size_extends_the_same_images(store):
    base = load_dataset("shapes")
    big = load_dataset("shapes-5040")
    tb, tg = base.split("train"), big.split("train")
    assert len(tg) == 5040 and np.array_equal(tg.images[:5000], tb.images)
    assert list(tg.labels[5000:5010]) == list(range(10))  # balanced, continuing the class cycle
    assert np.array_equal(big.split("val").images, base.split("val").images)
    assert big.split_fingerprint("val") == base.split_fingerprint("val")  # val evaluations are shared
    small = load_dataset("shapes-300")
    assert np.array_equal(small.split("train").images, tb.images[:300])
    with pytest.raises(UserError, match="100 to 100,000"):
        load_dataset("shapes-50")
    # an arena asking for more than shapes' 5,000 grows it
    assert ArenaSpec(models=("linear",), sizes=(500, 5040)).train_dataset() == "shapes-5040"
    assert ArenaSpec(models=("linear",), sizes=(500, 2000)).train_dataset() == "shapes"


def test_arena_cli_json_keys_and_bad_input(tmp_path):
    out = json.loads(cli("arena", "--models", "linear,cnn-2layer", "--dataset", "digits", "--budget", "steps:3",
                         "--seeds", "2", "--val-limit", "60", "--image-size", "0", "--limit", "200",
                         "--json").stdout)
    assert set(out) >= {"dataset", "budget", "seeds", "data_digest", "results"}
    assert out["budget"] == "steps:3" and out["seeds"] == 2 and out["same_data"] is True
    for r in out["results"]:
        assert set(r) >= {"model", "size", "top1_mean", "top1_ci95", "top1_runs", "train_flops", "seconds",
                          "params", "run_ids"}
        assert r["size"] == 200 and len(r["top1_runs"]) == 2 and math.isfinite(r["top1_ci95"])
        assert r["top1_mean"] == pytest.approx(sum(r["top1_runs"]) / 2)
    assert_user_error(cli("arena", "--models", "linear", "--budget", "weeks:2", ok=False), "does not read")
    assert_user_error(cli("arena", "--models", "nope", "--budget", "steps:2", ok=False), "from scratch")


def test_one_learning_rate_for_every_model_overrides_their_own(store):
    spec = ArenaSpec(models=("resnet20", "vit-small", "cct-2"), budget="epochs:1", seeds=1, lr=3e-4)
    cells = plan(spec, store)
    assert {c.recipe.lr for c in cells} == {3e-4}
    assert {c.recipe.optimizer for c in cells} == {"adam", "adamw"}  # the rest of each recipe stays its own
    summary = summarize(spec, store, cells=cells)
    assert summary["held_equal"]["learning_rate"] == "0.0003 for every model"
    # each model's recipe, as the page's table, the CSV and the JSON give it, is the one its runs trained with (it
    # said each model's own 0.002)
    assert [(r["model"], r["recipe"]["lr"], r["recipe"]["optimizer"]) for r in summary["results"]] == [
        ("resnet20", 3e-4, "adam"), ("vit-small", 3e-4, "adamw"), ("cct-2", 3e-4, "adamw")]


def test_the_plan_is_stored_so_a_page_never_measures(store, monkeypatch):
    spec = ArenaSpec(models=("linear", "cnn-2layer"), dataset="digits", budget="flops:2e9", seeds=1, limit=300,
                     image_size=None)
    first = plan(spec, store)
    assert len(store.records("arena-plan")) == 1

    def measure(*args, **kwargs):
        raise AssertionError("the plan was made again")

    monkeypatch.setattr("core.arena.run._plan", measure)
    assert plan(spec, store) == first  # read back: the FLOPs were counted once


# the linear model's own recipe at an absurd learning rate: its loss overflows within its first steps, every seed
DIVERGES = {"optimizer": "sgd", "lr": 1e38, "momentum": 0.0, "weight_decay": 0.0, "schedule": "constant"}


def test_a_run_that_diverges_is_said_and_the_arena_goes_on(store, monkeypatch, capsys):
    import core.arena.run as arena_run
    from core.models.scratch import SCRATCH

    monkeypatch.setitem(SCRATCH, "linear", replace(SCRATCH["linear"], recipe=DIVERGES))
    spec = ArenaSpec(models=("linear", "cnn-2layer"), dataset="digits", budget="steps:3", seeds=2, limit=100,
                     val_limit=40, image_size=None)
    out = run_arena(spec, store=store)  # the old arena stopped here, at the first diverged run
    linear, cnn = out["results"]
    assert (linear["runs_done"], linear["runs_diverged"], linear["top1_mean"], linear["top1_runs"]) == (0, 2, None, [])
    assert (cnn["runs_done"], cnn["runs_diverged"], len(cnn["top1_runs"])) == (2, 0, 2)
    assert out["complete"]  # every run has ended: trained, or diverged
    assert [(d["model"], d["size"], d["seed"]) for d in out["diverged"]] == [("linear", 100, 0), ("linear", 100, 1)]
    assert all(d["message"].startswith(("the loss became nan at epoch 1, step ", "the loss became inf at epoch 1, "))
               for d in out["diverged"])
    assert [d["run_id"] for d in out["diverged"]] == linear["run_ids"]
    said = diverged_text(out["diverged"])
    assert said.startswith("2 runs diverged (the loss became NaN or infinite) and have no accuracy (linear seed 0 at "
                           "100 images: the loss became ")
    assert "; linear seed 1 at 100 images: the loss became " in said and "over its seeds that finished" in said
    # the same arena again trains nothing: the finished runs are cached, and a diverged run is not retried (the
    # same recipe, seed and machine diverge the same way)
    trained = []
    real = arena_run.train
    monkeypatch.setattr(arena_run, "train", lambda recipe, **kw: trained.append(recipe.model) or real(recipe, **kw))
    again = run_arena(spec, store=store)
    assert trained == ["cnn-2layer", "cnn-2layer"]  # cache hits through train(); linear is not asked again
    assert again["diverged"] == out["diverged"] and again["results"] == out["results"]
    # the CLI's table: no number for what no run measured, and the runs that diverged said
    from core.cli import main  # in this process, where linear's recipe is the diverging one

    assert main(["arena", "--models", "linear,cnn-2layer", "--dataset", "digits", "--budget", "steps:3", "--seeds",
                 "2", "--limit", "100", "--val-limit", "40", "--image-size", "0"]) == 0
    text = capsys.readouterr().out
    [row] = [line.split() for line in text.splitlines() if line.startswith("linear ")]
    assert row == ["linear", "100", "-", "0", "-", "-", "-"]  # size, top-1, seeds, PFLOPs, seconds, params
    [cnn_row] = [line.split() for line in text.splitlines() if line.startswith("cnn-2layer ")]
    assert cnn_row[2:5] == [f"{cnn['top1_mean']:.1%}", "±", f"{cnn['top1_ci95']:.1%}"]  # one decimal, as the report
    assert cnn["train_flops"] > 0 and float(cnn_row[6]) == pytest.approx(cnn["train_flops"] / 1e15, rel=1e-2)
    assert diverged_text(out["diverged"]) in text
    spread = spread_text(out["results"])  # how sure the widest interval is (worked by hand above), as the page says
    assert (spread in text) if spread else "The widest interval" not in text
    near = chance_text(out["results"], 0.1)  # digits: 10 classes (worked by hand above)
    assert (near in text) if near else "Within reach of chance" not in text
    # a marker from another machine or precision (a store shared with a bf16 host, say) is tried again here, and
    # diverging here too, it is recorded as here
    marker = store.get(diverged_key(linear["run_ids"][0]))
    store.put(marker.key, marker.kind, marker.meta | {"precision": "elsewhere"})
    trained.clear()
    run_arena(spec, store=store)
    assert trained == ["linear", "cnn-2layer", "cnn-2layer"]
    assert store.get(marker.key).meta == marker.meta
    # a run of that recipe finished since (trained elsewhere, say) counts as finished, not diverged
    monkeypatch.setattr(arena_run, "train", real)
    store.put(linear["run_ids"][0], "run", store.get(cnn["run_ids"][0]).meta)
    third = summarize(spec, store)
    assert (third["results"][0]["runs_done"], third["results"][0]["runs_diverged"]) == (1, 1)
    assert [d["seed"] for d in third["diverged"]] == [1]


def test_adding_a_size_keeps_the_runs_at_the_others(store):
    """Each size trains on the smallest `shapes` that holds it, so an arena's runs at 500 and 5,000 images do not
    change when 5,100 is added (they did: every size became a subset of `shapes-5100`, all retrained), the
    subsets still nest, and the arena's 5,000 is the demo's own run."""
    from core.demo import demo_arena

    small = ArenaSpec(models=("linear",), dataset="shapes", budget="epochs:1", seeds=1, sizes=(500, 5000))
    grown = replace(small, sizes=(500, 5000, 5100))
    before, after = plan(small, store), plan(grown, store)
    assert [c.recipe.run_id for c in after[:2]] == [c.recipe.run_id for c in before]
    assert [(c.size, c.recipe.dataset, c.recipe.limit) for c in after] == [
        (500, "shapes", 500), (5000, "shapes", None), (5100, "shapes-5100", None)]
    # nested: the 500 are some of shapes's 5,000, which are the first 5,000 of shapes-5100 (checked image by image
    # in test_shapes_at_any_training_size_extends_the_same_images)
    assert set(load_dataset("shapes").split("train").limited(500).index) <= set(range(5000))
    demo = replace(demo_arena(), models=("resnet20",))
    assert plan(replace(demo, sizes=(500, 5000)), store)[1].recipe.run_id == plan(demo, store)[0].recipe.run_id
    # a sized dataset named as such is the arena's at every size, as before
    named = replace(small, dataset="shapes-5100")
    assert {c.recipe.dataset for c in plan(named, store)} == {"shapes-5100"}
    # said as it is: which sizes came from which dataset, per result too
    assert held_equal(grown)["data"] == ("shapes (500, 5,000 from shapes; 5,100 from shapes-5100): the same training "
                                         "images at each size (500, 5,000, 5,100; each a subset of the next), in the "
                                         "same order per seed")
    assert [r["dataset"] for r in summarize(grown, store)["results"]] == ["shapes", "shapes", "shapes-5100"]
    # a limit without sizes is a limit on shapes, which has 5,000
    with pytest.raises(UserError, match="shapes has 5,000 training images; a size of 5,100 needs more"):
        plan(ArenaSpec(models=("linear",), dataset="shapes", budget="epochs:1", limit=5100), store)


def test_a_smaller_shapes_n_is_sliced_from_a_larger_one_not_generated_again():
    from core.data import embedded

    big = load_dataset("shapes-5230").split("train")  # sizes no other test uses (workers share the datasets folder)
    mid = load_dataset("shapes-5170").split("train")  # in this process: the first 5,170 of the 5,230
    embedded._GROWN.clear()
    small = load_dataset("shapes-5110").split("train")  # from the 5,230's cache file
    made = {f.name for f in get_settings().datasets_dir.glob("*-train-5000-*.npz")}
    assert any(f.endswith("-5230.npz") for f in made)
    assert not any(f.endswith(("-5170.npz", "-5110.npz")) for f in made)  # neither generated again
    assert np.array_equal(mid.images, big.images[:5170]) and np.array_equal(small.images, big.images[:5110])
    assert np.array_equal(small.labels, big.labels[:5110])
