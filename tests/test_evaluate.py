import numpy as np
import pytest
import torch

from core.data import load_dataset
from core.errors import UserError
from core.evaluate import evaluate
from core.models.scratch import build_scratch
from core.models.spec import input_shape_for


def constant_linear(ds, cls: int):
    """A linear model whose weights are zero and whose bias picks `cls`: predictions known by hand."""
    m = build_scratch("linear", input_shape_for(ds), class_names=ds.classes)
    with torch.no_grad():
        for p in m.module.parameters():
            p.zero_()
        bias = [p for n, p in m.module.named_parameters() if n.endswith("bias")][-1]
        bias[cls] = 1.0
    m._digest = None
    return m


def test_constant_model_scores_the_share_of_its_class():
    ds = load_dataset("digits")
    ev = evaluate(constant_linear(ds, 3), ds, "val", store=None)
    val = ds.split("val")
    assert ev.meta["n"] == len(val) == 359
    assert ev.meta["top1"] == pytest.approx(np.mean(val.labels == 3))  # 36/359
    assert (ev.predictions.top_idx[:, 0] == 3).all()
    assert ev.metrics.confusion[:, 3].sum() == 359


def test_second_call_is_a_cache_hit_with_identical_results(store):
    ds = load_dataset("digits")
    first = evaluate("cnn-2layer", ds, "val", store=store)
    second = evaluate("cnn-2layer", ds, "val", store=store)
    assert not first.cached and second.cached
    assert second.key == first.key
    np.testing.assert_array_equal(first.predictions.top_idx, second.predictions.top_idx)
    assert second.summary() | {"cached": False} == first.summary()


def test_key_changes_with_every_input(store):
    ds = load_dataset("digits")
    base = evaluate("linear", ds, "val", store=store)
    assert not evaluate("linear", ds, "test", store=store).cached  # split
    assert not evaluate("linear", ds, "val", limit=50, store=store).cached  # limit
    assert not evaluate("cnn-2layer", ds, "val", store=store).cached  # model
    other = constant_linear(ds, 1)
    assert not evaluate(other, ds, "val", store=store).cached  # weights
    import dataclasses

    m = build_scratch("linear", input_shape_for(ds), class_names=ds.classes)
    m.preprocess = dataclasses.replace(m.preprocess, mean=(0.4,))
    assert not evaluate(m, ds, "val", store=store).cached  # preprocessing
    assert evaluate("linear", ds, "val", store=store).key == base.key


def test_truncated_artifact_is_recomputed(store):
    ds = load_dataset("digits")
    first = evaluate("linear", ds, "val", store=store)
    path = store.artifacts / store.get(first.key).artifact
    path.write_bytes(path.read_bytes()[:100])
    again = evaluate("linear", ds, "val", store=store)
    assert not again.cached
    np.testing.assert_array_equal(again.predictions.top_idx, first.predictions.top_idx)
    assert evaluate("linear", ds, "val", store=store).cached


def test_limit_takes_a_fixed_mixed_subset(store):
    ds = load_dataset("shapes")
    a = evaluate("linear", ds, "val", limit=50, store=store)
    assert a.meta["n"] == 50
    assert len(np.unique(a.predictions.y_true)) >= 8  # a permutation, not the first 50 of one class
    b = evaluate("linear", ds, "val", limit=50, store=store, force=True)
    np.testing.assert_array_equal(a.predictions.index, b.predictions.index)  # the same subset every time
    # stored indices point into the full split: the labels there are the stored true labels
    full = ds.split("val")
    assert a.predictions.index.max() > 50
    np.testing.assert_array_equal(full.labels[a.predictions.index], a.predictions.y_true)


def test_a_limit_covering_the_split_is_no_limit(store):
    ds = load_dataset("digits")
    whole = evaluate("linear", ds, "val", store=store)
    assert evaluate("linear", ds, "val", limit=359, store=store).cached
    assert evaluate("linear", ds, "val", limit=10_000, store=store).key == whole.key


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
def test_cuda_without_cuda_is_refused_even_on_a_cache_hit(store):
    ds = load_dataset("digits")
    evaluate("linear", ds, "val", store=store)
    with pytest.raises(UserError, match="no CUDA"):
        evaluate("linear", ds, "val", device="cuda", store=store)
    with pytest.raises(UserError, match="--limit"):
        evaluate("linear", ds, "val", limit=0, store=store)
    with pytest.raises(UserError, match="no split"):
        evaluate("linear", ds, "nope", store=store)


def test_folder_dataset_with_unreadable_file_is_scored_and_the_file_reported(tmp_path, store):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / "data" / cls).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)).save(tmp_path / "data" / cls / f"{i}.png")
    (tmp_path / "data" / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    ev = evaluate("cnn-2layer", tmp_path / "data", store=store, num_workers=0)
    assert ev.meta["n"] == 10 and ev.meta["skipped"] == 1
    assert "broken.png" in ev.meta["skipped_files"][0]
    ev2 = evaluate("cnn-2layer", tmp_path / "data", store=store, num_workers=2, force=True)
    np.testing.assert_array_equal(np.sort(ev2.predictions.index), np.sort(ev.predictions.index))
    # the CPU's own pipeline (threads decode and normalise each batch, the broken file mid-batch) gives the same
    # predictions, in fp32 and in bf16 (channels-last input written by the threads)
    for precision in ("fp32", "bf16"):
        ref = evaluate("cnn-2layer", tmp_path / "data", store=store, num_workers=0, precision=precision, force=True)
        threaded = evaluate("cnn-2layer", tmp_path / "data", store=store, batch_size=4, precision=precision,
                            force=True)  # 11 files > a batch of 4: the threaded path
        assert threaded.meta["n"] == 10 and threaded.meta["skipped"] == 1
        assert "broken.png" in threaded.meta["skipped_files"][0]
        np.testing.assert_array_equal(threaded.predictions.index, ref.predictions.index)
        np.testing.assert_array_equal(threaded.predictions.top_idx, ref.predictions.top_idx)
        np.testing.assert_allclose(threaded.predictions.top_prob, ref.predictions.top_prob, atol=1e-6)


@pytest.mark.parametrize("dataset_id", ["digits", "shapes"])
def test_every_scratch_model_evaluates_on_every_embedded_dataset(dataset_id, store):
    """The whole registry, so a new architecture is tested for free."""
    from core.models.scratch import scratch_specs

    ds = load_dataset(dataset_id)
    for spec in scratch_specs():
        ev = evaluate(spec.id, ds, "val", limit=40, batch_size=16, store=store)
        assert ev.meta["n"] == 40 and ev.meta["params"] > 0 and ev.meta["flops_per_image"] > 0, spec.id
        assert ev.predictions.top_idx.shape == (40, 5)
        assert np.all(np.diff(ev.predictions.top_prob, axis=1) <= 1e-6), spec.id  # ranked
        assert evaluate(spec.id, ds, "val", limit=40, batch_size=16, store=store).cached, spec.id


def test_digest_covers_buffers_and_changes_with_weights():
    ds = load_dataset("digits")
    a = build_scratch("resnet20", input_shape_for(ds))  # has 0-dim BatchNorm counters
    b = build_scratch("resnet20", input_shape_for(ds))
    assert a.weights_digest() == b.weights_digest()  # same seed, same weights
    assert build_scratch("resnet20", input_shape_for(ds), seed=1).weights_digest() != a.weights_digest()
    bn = next(m for m in b.module.modules() if isinstance(m, torch.nn.BatchNorm2d))
    with torch.no_grad():
        bn.running_mean += 0.5  # a buffer, not a parameter: changes predictions, so must change the key
    b._digest = None
    assert b.weights_digest() != a.weights_digest()


def test_a_model_built_once_keys_like_the_built_model_without_being_built_again(store):
    """The second evaluate of an id reads the identity remembered from the first build; its key
    must be the one the built model gives, in either order."""
    from core.models import identity
    from core.models.registry import create_model

    ds = load_dataset("digits")
    first = evaluate("cnn-2layer", ds, "val", store=store)
    assert identity.known(identity.token("cnn-2layer", ds, store)) is not None
    built = evaluate(create_model("cnn-2layer", ds), ds, "val", store=store)
    assert built.cached and built.key == first.key
    # another seed or another label space is another model: not the remembered one
    assert identity.token("cnn-2layer", ds, seed=1) != identity.token("cnn-2layer", ds)
    assert identity.token("cnn-2layer", load_dataset("shapes")) != identity.token("cnn-2layer", ds)


def test_a_run_whose_weights_are_rewritten_is_evaluated_again(tmp_path):
    """A trained run's remembered identity is tied to its files: new weights under the same run id
    are a new evaluation, with the new weights' predictions (zero weights, bias on class 3)."""
    from core.models.trained import run_folder
    from core.models.weights import load_tensors, save_tensors
    from core.store import Store
    from core.train.loop import train
    from core.train.recipe import Recipe

    store = Store(tmp_path)
    res = train(Recipe(model="linear", epochs=1, dataset="digits", limit=64, batch_size=32), store=store)
    before = evaluate(res.model_id, "digits", "val", store=store)
    assert evaluate(res.model_id, "digits", "val", store=store).cached
    path = run_folder(store, res.run_id) / "weights.safetensors"
    tensors, meta = load_tensors(path)
    constant = {k: torch.zeros_like(v) for k, v in tensors.items()}
    bias = [k for k in constant if k.endswith("bias")][-1]
    constant[bias][3] = 1.0
    save_tensors(path, constant, meta)
    after = evaluate(res.model_id, "digits", "val", store=store)
    assert not after.cached and after.key != before.key
    assert (after.predictions.top_idx[:, 0] == 3).all()
    assert evaluate(res.model_id, "digits", "val", store=store).cached
