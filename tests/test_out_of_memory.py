"""Out of device memory: evaluation and training halve the batch, retry, finish with the results of a normal
run and record what they did. There is no GPU here, so the fault is injected: a real scratch model whose
forward raises torch.OutOfMemoryError (what CUDA raises) for batches larger than it can "hold"."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.data import load_dataset
from core.errors import UserError
from core.evaluate import evaluate
from core.models.scratch import build_scratch
from core.models.spec import input_shape_for
from core.models.weights import load_tensors
from core.store import Store
from core.train import runs
from core.train.loop import train
from core.train.recipe import Recipe


def holds_at_most(model, n: int, tried: list[int] | None = None) -> list[int]:
    """Make `model`'s forward raise CUDA's out-of-memory error on batches over n; returns the list that
    collects the batch sizes tried."""
    tried = [] if tried is None else tried

    def hook(_module, args):
        tried.append(len(args[0]))
        if len(args[0]) > n:
            raise torch.OutOfMemoryError(f"CUDA out of memory (injected: a batch of {len(args[0])} > {n})")

    model.module.register_forward_pre_hook(hook)
    return tried


def test_evaluation_halves_the_batch_until_it_fits_and_says_so(tmp_path):
    ds = load_dataset("digits")
    linear = lambda: build_scratch("linear", input_shape_for(ds), class_names=ds.classes)  # noqa: E731
    normal = evaluate(linear(), ds, "val", batch_size=64, store=Store(tmp_path / "a"))
    m = linear()
    tried = holds_at_most(m, 16)
    ev = evaluate(m, ds, "val", batch_size=64, store=Store(tmp_path / "b"))
    assert tried[:3] == [64, 32, 16]  # halved twice on the first batch...
    assert max(tried[3:]) == 16  # ...and every later batch goes in at the size that fitted
    assert (ev.meta["batch_size"], ev.meta["oom_halvings"], ev.meta["batch_size_requested"]) == (16, 2, 64)
    assert (normal.meta["batch_size"], normal.meta["oom_halvings"]) == (64, 0)
    assert ev.meta["n"] == 359 and ev.meta["top1"] == normal.meta["top1"]
    np.testing.assert_array_equal(ev.predictions.top_idx, normal.predictions.top_idx)
    np.testing.assert_allclose(ev.predictions.top_prob, normal.predictions.top_prob, rtol=1e-5)
    stored = Store(tmp_path / "b").get(ev.key)
    assert stored.meta["oom_halvings"] == 2  # the record says so


def test_evaluation_out_of_memory_at_one_image_is_a_clear_error_and_stores_nothing(tmp_path):
    ds = load_dataset("digits")
    m = build_scratch("linear", input_shape_for(ds), class_names=ds.classes)
    tried = holds_at_most(m, 0)
    store = Store(tmp_path)
    with pytest.raises(UserError, match="out of memory on cpu even with a batch of 1 image"):
        evaluate(m, ds, "val", batch_size=8, store=store)
    assert tried == [8, 4, 2, 1]
    assert store.records() == []


def test_training_splits_the_step_into_micro_batches_and_records_it(tmp_path, monkeypatch):
    """The step stays the recipe's (64 images, gradients accumulated over 4 micro-batches of 16), so the weights
    match a run that never ran out of memory up to float rounding; every history row says what happened."""
    # fp32 (amp off): the tolerances below are fp32 rounding; in bf16, summing 4 micro-batches rounds differently
    recipe = Recipe(model="linear", dataset="digits", epochs=2, limit=192, val_limit=64, batch_size=64,
                    schedule="constant", amp=False)
    whole = train(recipe, store=Store(tmp_path / "a"))
    build = runs.build_for_recipe
    tried: list[int] = []

    def build_with_fault(r):
        ds, model = build(r)
        holds_at_most(model, 16, tried)
        return ds, model

    monkeypatch.setattr(runs, "build_for_recipe", build_with_fault)
    faulted = train(recipe, store=Store(tmp_path / "b"))
    # epoch 1: the first step fails at 64 and 32, then 3 steps x 4 micro-batches of 16; validation (its own
    # batch of 256, here the 64 val images) fails at 64 and 32, then 4 x 16; epoch 2 starts at 16 throughout
    assert tried[:20] == [64, 32] + [16] * 12 + [64, 32] + [16] * 4
    assert tried[20:36] == [16] * 16
    assert [(h["micro_batch"], h["oom_halvings"]) for h in faulted.history] == [(16, 2), (16, 2)]
    assert [(h["val_batch"], h["val_oom_halvings"]) for h in faulted.history] == [(16, 2), (16, 2)]
    assert [(h["micro_batch"], h["oom_halvings"], h["val_batch"]) for h in whole.history] == [(64, 0, 256)] * 2
    assert Store(tmp_path / "b").get(recipe.run_id).meta["history"][-1]["micro_batch"] == 16  # the record says so
    for a, b in zip(whole.history, faulted.history):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
        assert b["val_top1"] == a["val_top1"]
    wa = load_tensors(runs.run_folder(Store(tmp_path / "a"), recipe.run_id) / "weights.safetensors")[0]
    wb = load_tensors(runs.run_folder(Store(tmp_path / "b"), recipe.run_id) / "weights.safetensors")[0]
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], rtol=1e-5, atol=1e-6)
