"""Shape bias (Geirhos et al. 2019): the scoring worked by hand, the generated cue-conflict splits, the CLI."""
import json

import numpy as np
import pytest
from test_cli import assert_user_error, cli

from core.data import cue_conflict
from core.errors import UserError
from core.shape_bias import count, score


def test_scoring_worked_by_hand():
    # image:       0  1  2  3  4  5
    shape = [0, 0, 1, 1, 2, 2]
    texture = [1, 2, 0, 2, 2, 0]  # image 4's cues agree: left out
    decision = [0, 2, 0, 1, 2, 1]  # shape, texture, texture, shape, (left out), neither
    d = count(shape, texture, decision)
    assert (d.n, d.shape, d.texture) == (5, 2, 2)
    assert d.shape_bias == 0.5 and d.coverage == 0.8
    out = score(shape, texture, decision, ["a", "b", "c"])
    assert out["shape_bias"] == 0.5 and out["coverage"] == 0.8 and out["n"] == 5
    a, b, c = out["per_class"]
    assert (a["shape"], a["texture"], a["shape_bias"], a["coverage"]) == (1, 1, 0.5, 1.0)
    assert (b["shape"], b["texture"], b["shape_bias"], b["coverage"]) == (1, 1, 0.5, 1.0)
    assert (c["n"], c["shape_bias"], c["coverage"]) == (1, None, 0.0)  # no cue picked: no bias, zero coverage
    assert count([0, 1], [1, 0], [0, 1]).shape_bias == 1.0 and count([0, 1], [1, 0], [1, 0]).shape_bias == 0.0


def test_conflict_split_is_balanced_over_every_pair_of_different_classes():
    n = cue_conflict.SPLIT_SIZES["conflict"]
    pairs = [cue_conflict.cues("conflict", i) for i in range(n)]
    counts = {p: pairs.count(p) for p in set(pairs)}
    assert len(counts) == 90 and set(counts.values()) == {n // 90}
    assert all(a != b for a, b in counts)
    assert cue_conflict.labels("conflict").tolist() == [a for a, _ in pairs]  # labelled by shape
    assert cue_conflict.texture_labels("conflict").tolist() == [b for _, b in pairs]
    assert cue_conflict.labels("texture-only", 12).tolist() == [i % 10 for i in range(12)]  # labelled by texture
    assert set(cue_conflict.texture_labels("shape-only", 20).tolist()) == {-1}
    assert all(cue_conflict.cues("train", i) == (i % 10, i % 10) for i in range(20))  # cues agree in training


def test_images_are_deterministic_and_the_same_whatever_else_is_generated():
    for split in ("train", "conflict", "shape-only", "texture-only"):
        few, y_few = cue_conflict.generate_split(split, n=3)
        more, y_more = cue_conflict.generate_split(split, n=6)
        np.testing.assert_array_equal(few, more[:3])
        assert y_few.tolist() == y_more[:3].tolist()
    a, _ = cue_conflict.generate_split("conflict", n=2)
    b, _ = cue_conflict.generate_split("conflict", n=2, seed=1)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("kind", range(len(cue_conflict.TEXTURES)))
def test_each_texture_is_a_two_tone_pattern_with_both_tones(kind):
    p = cue_conflict.texture(kind, np.random.default_rng(kind))
    assert p.shape == (cue_conflict.SIZE, cue_conflict.SIZE) and set(np.unique(p).tolist()) == {0.0, 1.0}
    assert 0.05 < p.mean() < 0.95, cue_conflict.TEXTURES[kind]


def test_textures_differ_between_classes():
    # the same random draws, different class: different patterns (a texture is a class cue, not noise)
    pats = [cue_conflict.texture(k, np.random.default_rng(0)) for k in range(len(cue_conflict.TEXTURES))]
    for i in range(len(pats)):
        for j in range(i + 1, len(pats)):
            assert (pats[i] != pats[j]).mean() > 0.1, (cue_conflict.TEXTURES[i], cue_conflict.TEXTURES[j])


def test_shape_bias_cli_json_and_bad_input():
    out = json.loads(cli("shape-bias", "--model", "linear", "--json").stdout)
    assert {"model", "dataset", "n", "shape_bias", "coverage", "per_class", "controls", "cached"} <= set(out)
    assert out["dataset"] == "shapes-textured" and out["n"] == 900 and not out["cached"]
    assert out["shape_decisions"] + out["texture_decisions"] == round(out["coverage"] * 900)
    assert len(out["per_class"]) == 10 and set(out["controls"]) == {"shape-only", "texture-only"}
    again = json.loads(cli("shape-bias", "--model", "linear", "--json").stdout)
    assert again["cached"] and again["shape_bias"] == out["shape_bias"]
    assert_user_error(cli("shape-bias", "--model", "linear", "--dataset", "shapes", ok=False),
                      "shapes-textured")


def test_one_cue_variants_share_the_bias_splits():
    from core.data.registry import load_dataset

    assert cue_conflict.cues("train", 3, "shape") == (3, None) and cue_conflict.cues("val", 13, "texture") == (None, 3)
    assert cue_conflict.cues("conflict", 0, "texture") == cue_conflict.cues("conflict", 0) == (0, 1)
    flat, y = cue_conflict.generate_split("train", n=2, variant="shape")
    both, _ = cue_conflict.generate_split("train", n=2)
    assert y.tolist() == [0, 1] and not np.array_equal(flat, both)
    np.testing.assert_array_equal(cue_conflict.generate_split("conflict", n=2, variant="shape")[0],
                                  cue_conflict.generate_split("conflict", n=2)[0])
    sets = {d: load_dataset(d) for d in ("shapes-textured", "shapes-silhouettes", "shapes-texture-only")}
    for s in cue_conflict.BIAS_SPLITS:  # the same images: one evaluation serves all three
        assert len({ds.split_fingerprint(s) for ds in sets.values()}) == 1
    assert len({ds.split_fingerprint("train") for ds in sets.values()}) == 3


# The sanity checks: a model that only ever saw one cue must decide by it. ResNet-20 with its own recipe
# at 32 px; measured (seed 0, 2 CPU cores): texture-trained shape bias 0.051 at coverage 0.79, silhouette-trained
# 0.867 at coverage 0.37 (a flat-filled shape with a texture inside is new to it, hence the low coverage), its
# shape-only control 98%. Minutes of training: marked slow (`pytest -m slow tests/test_shape_bias.py`).
SANITY = {"shapes-texture-only": {"limit": 2000, "epochs": 6}, "shapes-silhouettes": {"limit": None, "epochs": 10}}


def _trained_on(dataset: str, store) -> dict:
    from core.arena.run import model_recipe
    from core.shape_bias import shape_bias
    from core.train.loop import train
    from core.train.recipe import Recipe

    recipe = Recipe(model="resnet20", dataset=dataset, image_size=32, val_limit=200, augment="none",
                    **SANITY[dataset], **model_recipe("resnet20"))
    return shape_bias(train(recipe, store=store).model_id, dataset, store=store)


@pytest.mark.slow
def test_a_texture_trained_model_decides_by_texture(store):
    r = _trained_on("shapes-texture-only", store)
    assert r["shape_bias"] < 0.2 and r["coverage"] > 0.5, r
    assert r["controls"]["texture-only"] > 0.8


@pytest.mark.slow
def test_a_silhouette_trained_model_decides_by_shape(store):
    r = _trained_on("shapes-silhouettes", store)
    assert r["shape_bias"] > 0.8 and r["coverage"] > 0.2, r
    assert r["controls"]["shape-only"] > 0.8 and r["controls"]["texture-only"] < 0.2


def test_textured_sets_grow_to_any_training_size_with_the_same_images():
    from core.arena.spec import ArenaSpec
    from core.data.registry import load_dataset
    from core.shape_bias import bias_splits

    base, grown = load_dataset("shapes-textured"), load_dataset("shapes-textured-5100")
    assert grown.id == "shapes-textured-5100" and len(grown.split("train")) == 5100
    np.testing.assert_array_equal(grown.split("train").images[:5000], base.split("train").images)
    extra, y = cue_conflict.generate_split("train", n=5100, start=5000)  # image i: a function of (seed, split, i)
    np.testing.assert_array_equal(grown.split("train").images[5000:], extra)
    assert grown.split("train").labels[5000:].tolist() == y.tolist() == cue_conflict.labels("train", 5100)[5000:].tolist()
    for s in ("val", "conflict", "shape-only", "texture-only"):  # shared: one evaluation serves both
        assert grown.split_fingerprint(s) == base.split_fingerprint(s)
    assert grown.split_fingerprint("train") != base.split_fingerprint("train")
    silhouettes = load_dataset("shapes-silhouettes-300")  # its images are not generated until a split is read
    assert silhouettes.id == "shapes-silhouettes-300" and "flat silhouettes" in silhouettes.name
    assert bias_splits("shapes-textured-5100") == bias_splits("shapes-textured")
    spec = ArenaSpec(models=("linear",), dataset="shapes-textured", budget="epochs:1", sizes=(1000, 8000))
    assert spec.train_dataset() == "shapes-textured-8000"
    with pytest.raises(UserError, match="100 to 100,000"):
        load_dataset("shapes-textured-50")
