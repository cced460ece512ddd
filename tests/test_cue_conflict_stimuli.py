"""The published cue-conflict stimuli (Geirhos et al. 2019; texture-vs-shape / model-vs-human): their folder
layout, the 16-class-ImageNet mapping checked by hand, and the mean-probability decision of an ImageNet model,
through a tiny random Hugging Face model saved to a temp folder."""
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from core.data import imagenet16, load_dataset
from core.data.folders import detect_layout, texture_labels
from core.errors import DatasetError, UserError
from core.evaluate import evaluate
from core.models.imagenet import imagenet1k
from core.shape_bias import shape_bias
from core.store import Store

CATS = ["airplane", "bear", "bicycle", "bird", "boat", "bottle", "car", "cat", "chair", "clock", "dog", "elephant",
        "keyboard", "knife", "oven", "truck"]
# one stimulus per category (shape c, texture: the next category), and five more chosen for the counts below
FILES = [f"{c}/{c}1-{CATS[(i + 1) % 16]}1.png" for i, c in enumerate(CATS)] + [
    "knife/knife2-cat1.png", "cat/cat2-knife2.png", "dog/dog2-knife1.png", "dog/dog3-bird2.png",
    "knife/knife3-knife1.png",  # shape == texture: not a cue conflict, left out
]


def _write(root, files):
    rng = np.random.default_rng(0)
    for f in files:
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(root / f)
    return root


@pytest.fixture(scope="module")
def stimuli(tmp_path_factory):
    return _write(tmp_path_factory.mktemp("cue-conflict"), FILES)


def test_mapping_checked_by_hand():
    assert imagenet16.categories() == CATS  # the toolbox's order: sorted
    wnids = imagenet1k().wnids
    index = {w: i for i, w in enumerate(wnids)}
    # cat: tabby, tiger cat, Persian, Siamese, Egyptian cat and cougar (281-286); knife: cleaver only (499);
    # airplane: airliner only (404); oven: rotisserie only (766)
    assert [index[w] for w in imagenet16.wnids("cat")] == [281, 282, 283, 284, 285, 286]
    assert [index[w] for w in imagenet16.wnids("knife")] == [499]
    assert [index[w] for w in imagenet16.wnids("airplane")] == [404]
    assert [index[w] for w in imagenet16.wnids("oven")] == [766]
    dog = [index[w] for w in imagenet16.wnids("dog")]
    assert dog == [i for i in range(152, 269) if i not in (192, 204, 227, 242, 251, 258, 260, 264)]
    every = [w for c in CATS for w in imagenet16.wnids(c)]
    assert len(every) == len(set(every)) == 207 and set(every) <= set(wnids)
    refs = {r["model"]: r["shape_bias"] for r in imagenet16.reference_figures()}
    assert refs == {"resnet50": 0.214195, "swag-vit-b16-in1k": 0.305035, "humans": 0.958688}


def test_layout_detected_and_labelled_by_folder(stimuli):
    assert detect_layout(stimuli) == "cue-conflict"
    ds = load_dataset(stimuli)
    assert ds.classes == CATS and ds.splits == ["conflict"]
    split = ds.split("conflict")
    names = sorted(p.name for p in split.paths)
    assert len(split) == 20 and "knife3-knife1.png" not in names
    got = {p.name: (CATS[y], CATS[t]) for p, y, t in zip(split.paths, split.labels, texture_labels(ds, "conflict"))}
    assert got["airplane1-bear1.png"] == ("airplane", "bear")
    assert got["dog2-knife1.png"] == ("dog", "knife")
    assert got["truck1-airplane1.png"] == ("truck", "airplane")
    assert [len(g) for g in ds.wnid_groups] == [len(imagenet16.wnids(c)) for c in CATS]


def test_misnamed_stimulus_refused_by_name(tmp_path):
    root = _write(tmp_path / "stimuli", ["dog/dog1-cat1.png", "dog/cat2-dog1.png"])  # a cat-shaped file in dog/
    with pytest.raises(DatasetError, match="dog/cat2-dog1.png"):
        load_dataset(root)


def _tiny_vit(path, bias: dict[int, float]):
    """A tiny random ViT over ImageNet-1k whose logits are `bias` whatever the image (zero head weights)."""
    import transformers as tf

    names = imagenet1k().names
    cfg = tf.ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=32, num_labels=1000, id2label=dict(enumerate(names)),
                       label2id={n: i for i, n in enumerate(names)})
    model = tf.ViTForImageClassification(cfg)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
        for i, b in bias.items():
            model.classifier.bias[i] = b
    model.save_pretrained(path)
    tf.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(path)
    return str(path)


def test_decision_is_the_mean_probability_and_shape_bias_counted_by_hand(tmp_path, stimuli):
    # tabby (281, a cat class) has the highest logit, cleaver (499, knife's only class) the second. The cat category
    # averages six classes: (e^5 + 5) / 6 = 25.6 < e^4 = 54.6, so by the mean the decision is knife, not cat
    model = _tiny_vit(tmp_path / "vit", {281: 5.0, 499: 4.0})
    store = Store(tmp_path / "store")
    ev = evaluate(model, str(stimuli), "conflict", store=store, precision="fp32")
    z = 998 + math.exp(5) + math.exp(4)
    assert ev.meta.scoring.startswith("mean probability")
    assert (ev.predictions.top_idx[:, 0] == CATS.index("knife")).all()
    assert (ev.predictions.top_idx[:, 1] == CATS.index("cat")).all()
    np.testing.assert_allclose(ev.predictions.top_prob[:, 0], math.exp(4) / z, rtol=1e-5)
    np.testing.assert_allclose(ev.predictions.top_prob[:, 1], (math.exp(5) + 5) / 6 / z, rtol=1e-5)
    # the 16 mean probabilities do not sum to one: no calibration figures are made of them
    assert ev.meta.calibration is None and ev.predictions.nll is None and ev.predictions.logp is None

    r = shape_bias(model, str(stimuli), store=store, precision="fp32")
    # knife every time: shape decisions are the knife-shaped images (knife1-oven1, knife2-cat1), texture decisions
    # the knife-textured ones with another shape (keyboard1-knife1, cat2-knife2, dog2-knife1)
    assert (r["n"], r["shape_decisions"], r["texture_decisions"]) == (20, 2, 3)
    assert r["shape_bias"] == pytest.approx(2 / 5) and r["coverage"] == pytest.approx(5 / 20)
    per = {c["class"]: c for c in r["per_class"]}
    assert (per["knife"]["n"], per["knife"]["shape"], per["knife"]["texture"]) == (2, 2, 0)
    assert (per["dog"]["n"], per["dog"]["shape"], per["dog"]["texture"]) == (3, 0, 1)
    assert r["controls"] is None and [x["model"] for x in r["reference"]] == ["resnet50", "swag-vit-b16-in1k", "humans"]
    assert json.loads(json.dumps(r)) == r  # what --json prints


def test_a_model_without_imagenet_classes_is_refused(tmp_path, stimuli):
    with pytest.raises(UserError, match="WordNet ids"):
        evaluate("resnet20", str(stimuli), "conflict", store=Store(tmp_path / "store"))
