"""One answer everywhere: at one precision, an image gets the same top-1 from Predict, from `predict --json`, from
an explanation and from the evaluation behind the confusion matrix; and a prediction names its class without
ambiguity (index and WordNet id, since ImageNet-1k's names repeat).

Real parts: a scratch ResNet-20 with random weights (random heads have near-ties, so fp32 and bf16 disagree on
some images: the test first shows they do, else it would prove nothing), the store, the CLI in a subprocess,
and a tiny transformers ViT with ImageNet-1k's 1000 names saved to a folder.
"""
import json

import numpy as np
import pytest
from PIL import Image
from test_cli import cli

from core.data.registry import load_dataset
from core.evaluate import evaluate
from core.explain import explain
from core.models.imagenet import imagenet1k
from core.models.reference import resolve
from core.models.registry import create_model
from core.predict import predict_image
from core.store import Store

N = 200


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """ResNet-20 (random weights) and its evaluations of 200 `shapes` val images at bf16 and at fp32."""
    store = Store(tmp_path_factory.mktemp("store"))
    ds = load_dataset("shapes")
    model = create_model(resolve("resnet20"), ds)
    evs = {p: evaluate(model, ds, "val", limit=N, precision=p, store=store) for p in ("bf16", "fp32")}
    return model, ds.split("val"), evs


def test_predict_gives_the_evaluations_top1_at_each_precision(evaluated):
    model, val, evs = evaluated
    top = {p: ev.predictions.top_idx[:, 0] for p, ev in evs.items()}
    differ = np.flatnonzero(top["bf16"] != top["fp32"])
    assert len(differ) > 0  # the precisions disagree on near-ties: otherwise this test could not fail
    for p, ev in evs.items():
        assert ev.meta.precision == p
        preds = [predict_image(model, val.load(int(i)), precision=p) for i in ev.predictions.index]
        assert [q.class_indices[0] for q in preds] == top[p].tolist(), p
        assert {q.precision for q in preds} == {p}
        np.testing.assert_allclose([q.probabilities[0] for q in preds], ev.predictions.top_prob[:, 0], atol=1e-5)


def test_an_explanation_names_the_class_predict_names(evaluated):
    model, val, evs = evaluated
    top = {p: ev.predictions.top_idx[:, 0] for p, ev in evs.items()}
    index = evs["bf16"].predictions.index
    for row in np.flatnonzero(top["bf16"] != top["fp32"])[:2]:
        image = val.load(int(index[row]))
        for p in ("bf16", "fp32"):
            e = explain(model, image, "gradcam", precision=p)
            assert e.class_index == top[p][row] and e.precision == p
            assert e.top5[0][0] == model.labels.names[top[p][row]]


def test_predict_timing_is_a_warmed_median_when_asked(evaluated):
    model, val, _ = evaluated
    pred = predict_image(model, val.load(0), precision="fp32", timing_repeats=5)
    assert pred.timing_repeats == 5 and pred.warm_seconds is not None and pred.warm_seconds > 0
    assert predict_image(model, val.load(0), precision="fp32").warm_seconds is None


@pytest.fixture(scope="module")
def imagenet_vit(tmp_path_factory):
    """A tiny transformers ViT whose 1000 outputs carry ImageNet-1k's names, saved as a model folder."""
    import transformers as t

    folder = tmp_path_factory.mktemp("inet-vit")
    names = imagenet1k().names
    config = t.ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32, num_labels=1000, id2label=dict(enumerate(names)),
                         label2id={n: i for i, n in enumerate(names)})
    t.ViTForImageClassification(config).save_pretrained(folder)
    t.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def test_predict_json_gives_each_class_its_index_and_wordnet_id(imagenet_vit, tmp_path):
    inet = imagenet1k()
    cranes = [i for i, n in enumerate(inet.names) if n == "crane"]
    assert cranes == [134, 517] and inet.wnids[134] != inet.wnids[517]  # a name alone is ambiguous
    image = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(image)
    out = json.loads(cli("predict", "--model", str(imagenet_vit), str(image), "--top-k", "3",
                         "--precision", "fp32", "--json").stdout)
    (entry,) = out
    assert entry["precision"] == "fp32" and len(entry["top"]) == 3
    for t in entry["top"]:
        assert {"label", "probability", "index", "wnid"} <= set(t)
        assert inet.names[t["index"]] == t["label"] and inet.wnids[t["index"]] == t["wnid"]
    scratch = json.loads(cli("predict", "--model", "cnn-2layer", str(image), "--json").stdout)
    assert scratch[0]["top"][0]["wnid"] is None and scratch[0]["precision"] in ("fp32", "bf16")
