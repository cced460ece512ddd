"""Each model class of the default list, tiny and random, saved and loaded through the Hub code path,
scored on a Tiny-ImageNet-layout tree; the label alignment checked image by image, by hand."""
import math

import numpy as np
import pytest
import torch
from PIL import Image

from core.data import load_dataset
from core.errors import UserError
from core.evaluate import evaluate
from core.models.imagenet import imagenet1k
from core.models.registry import create_model
from core.store import Store

# three real ImageNet-1k classes, at their ImageNet-1k indices (sorted WordNet ids)
WNIDS = {"n01443537": 1, "n01629819": 25, "n02124075": 285}  # goldfish, European fire salamander, Egyptian cat


def _tiny(kind: str):
    import transformers as tf

    names = imagenet1k().names
    common = {"num_labels": 1000, "id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)}}
    vit = {"image_size": 32, "patch_size": 8, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
           "intermediate_size": 32}
    if kind == "vit":
        return tf.ViTForImageClassification(tf.ViTConfig(**vit, **common)), tf.ViTImageProcessor(size={"height": 32, "width": 32})
    if kind == "deit":
        return (tf.DeiTForImageClassification(tf.DeiTConfig(**vit, **common)),
                tf.DeiTImageProcessor(size={"height": 36, "width": 36}, crop_size={"height": 32, "width": 32}))
    if kind == "bit":
        cfg = tf.BitConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_groups=2, **common)
        return tf.BitForImageClassification(cfg), tf.BitImageProcessor(size={"shortest_edge": 36},
                                                                       crop_size={"height": 32, "width": 32})
    if kind == "resnet":
        cfg = tf.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic", **common)
        return tf.ResNetForImageClassification(cfg), tf.ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=0.875)
    if kind == "convnext":
        cfg = tf.ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, **common)
        return tf.ConvNextForImageClassification(cfg), tf.ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=0.875)
    if kind == "swin":
        cfg = tf.SwinConfig(image_size=32, patch_size=4, embed_dim=8, depths=[1, 1], num_heads=[1, 2], window_size=4,
                            **common)
        return tf.SwinForImageClassification(cfg), tf.ViTImageProcessor(size={"height": 32, "width": 32})
    raise ValueError(kind)


@pytest.fixture(scope="module")
def tiny_imagenet(tmp_path_factory):
    """A Tiny ImageNet tree in the distributed layout, 4 val images per class."""
    root = tmp_path_factory.mktemp("tiny-imagenet-200")
    (root / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
    (root / "words.txt").write_text("n01443537\tgoldfish, Carassius auratus\n"
                                    "n01629819\tEuropean fire salamander, Salamandra salamandra\n"
                                    "n02124075\tEgyptian cat\n")
    rng = np.random.default_rng(0)
    lines = []
    (root / "val" / "images").mkdir(parents=True)
    for i in range(12):
        wnid = list(WNIDS)[i % 3]
        small = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(small).resize((64, 64), Image.BICUBIC).save(root / "val" / "images" / f"val_{i}.JPEG")
        lines.append(f"val_{i}.JPEG\t{wnid}\t0\t0\t63\t63")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.mark.parametrize("kind, family", [("vit", "vit"), ("deit", "vit"), ("bit", "cnn"), ("resnet", "cnn"),
                                          ("convnext", "cnn"), ("swin", "vit")])
def test_tiny_model_scored_both_ways_and_checked_by_hand(tmp_path, tiny_imagenet, kind, family):
    torch.manual_seed(0)
    model, processor = _tiny(kind)
    with torch.no_grad():  # lean the random head toward two of our classes so both scorings have hits
        head = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
        head.bias[25] += 3.0
        head.bias[285] += 3.0
    model.save_pretrained(tmp_path / kind)
    processor.save_pretrained(tmp_path / kind)

    m = create_model(str(tmp_path / kind))  # the from_pretrained path a Hub id takes
    assert m.family == family and m.labels.wnids == imagenet1k().wnids
    ds = load_dataset(tiny_imagenet)
    assert ds.wnids == list(WNIDS) and ds.classes[0] == "goldfish"
    # fp32: the hand values below are the model's own fp32 forward (bf16 `auto` could reorder near-ties)
    ev = evaluate(m, ds, "val", store=Store(tmp_path / "store"), num_workers=0, precision="fp32")
    assert ev.meta["scoring"] == "all 1000 model classes" and ev.restricted is not None
    assert ev.summary()["top1_restricted"] == ev.meta["restricted"]["top1"]

    # by hand: the model's own processor and forward pass, independent of our pipeline
    model.eval()
    val = ds.split("val")
    cols = list(WNIDS.values())
    for row, i in enumerate(ev.predictions.index):
        pixel = processor(images=Image.open(val.paths[i]).convert("RGB"), return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            logits = model(pixel_values=pixel).logits[0]
        best = int(logits.argmax())
        expect_all = cols.index(best) if best in cols else -1  # outside the dataset: wrong, -1
        expect_restricted = int(logits[cols].argmax())
        assert ev.predictions.model_top_idx[row, 0] == best, (kind, i)
        assert ev.predictions.top_idx[row, 0] == expect_all, (kind, i)
        assert ev.restricted.top_idx[row, 0] == expect_restricted, (kind, i)
        # whole rows: the model's top 5 of 1000 mapped to dataset classes, and the ranking of our 3 classes
        top5 = logits.topk(5).indices.tolist()
        assert ev.predictions.model_top_idx[row].tolist() == top5, (kind, i)
        assert ev.predictions.top_idx[row].tolist() == [cols.index(c) if c in cols else -1 for c in top5]
        assert ev.restricted.top_idx[row].tolist() == logits[cols].argsort(descending=True).tolist()
        probs = torch.softmax(logits, 0)
        np.testing.assert_allclose(ev.predictions.top_prob[row], probs[top5].numpy(), rtol=1e-4, atol=1e-6)
        # calibration terms over all 1000 classes: the true class is the model output standing for it
        p_true = float(probs[cols[int(val.labels[i])]])
        assert ev.predictions.nll[row] == pytest.approx(-math.log(p_true), rel=1e-4)
        assert ev.predictions.brier[row] == pytest.approx(float((probs ** 2).sum()) - 2 * p_true + 1, rel=1e-4)
    # the two scorings, recomputed from the hand values
    y = val.labels[ev.predictions.index]
    assert ev.meta["top1"] == pytest.approx(np.mean(ev.predictions.top_idx[:, 0] == y))
    assert ev.meta["restricted"]["top1"] == pytest.approx(np.mean(ev.restricted.top_idx[:, 0] == y))
    assert ev.meta["restricted"]["top1"] >= ev.meta["top1"]  # restricting can only help
    assert ev.meta["outside"] == int((ev.predictions.top_idx[:, 0] == -1).sum())
    # the two scorings differ exactly on the images whose best class lies outside the dataset
    differ = ev.predictions.top_idx[:, 0] != ev.restricted.top_idx[:, 0]
    assert (differ == (ev.predictions.top_idx[:, 0] == -1)).all()
    assert ev.summary()["outside"] == ev.meta["outside"]
    assert ev.meta["top5"] == pytest.approx(np.mean((ev.predictions.top_idx == y[:, None]).any(axis=1)))
    assert np.isnan(ev.meta["restricted"]["top5"])  # 3 dataset classes: top-5 of 3 says nothing
    assert ev.predictions.logp is None  # 1000 outputs for 3 classes: nothing to refit a temperature on
    assert ev.meta.calibration["nll"] == pytest.approx(float(ev.predictions.nll.mean()))
    cached = evaluate(m, ds, "val", store=Store(tmp_path / "store"), precision="fp32")
    assert cached.cached and (cached.restricted.top_idx == ev.restricted.top_idx).all()


def test_predictions_outside_the_dataset_count_against_all_classes_only(tmp_path, tiny_imagenet):
    """A head that ranks every image the same way, so the numbers can be worked out by hand:
    outputs 7 (cock, not in the dataset) > 25 (salamander) > 285 (Egyptian cat) > 1 (goldfish) > the rest."""
    model, processor = _tiny("vit")
    with torch.no_grad():
        head = model.classifier
        head.weight.zero_()
        head.bias.zero_()
        head.bias[[7, 25, 285, 1]] = torch.tensor([4.0, 3.0, 2.0, 1.0])
    model.save_pretrained(tmp_path / "vit")
    processor.save_pretrained(tmp_path / "vit")
    ev = evaluate(create_model(str(tmp_path / "vit")), load_dataset(tiny_imagenet), "val",
                  store=Store(tmp_path / "store"), num_workers=0)
    assert ev.meta["n"] == 12 and ev.meta["outside"] == 12  # every top-1 is the cock
    assert ev.meta["top1"] == 0.0  # all classes: a prediction outside the dataset is wrong
    assert ev.meta["top5"] == 1.0  # goldfish, salamander and cat are ranks 2-4 of 1000
    assert ev.predictions.top_idx[0, :4].tolist() == [-1, 1, 2, 0]
    assert ev.meta["restricted"]["top1"] == pytest.approx(4 / 12)  # restricted: always salamander, 4 of 12 are
    assert ev.restricted.top_idx[0].tolist() == [1, 2, 0]
    assert np.isnan(ev.meta["restricted"]["top5"])
    s = ev.summary()
    assert s["top1"] == 0.0 and s["top1_restricted"] == pytest.approx(1 / 3) and s["outside"] == 12
    from core.results import evaluation_table

    [row] = evaluation_table(Store(tmp_path / "store"))  # the leaderboard row says which number is which
    assert row["scoring"] == "all 1000 model classes" and row["outside"] == 12
    assert row["top1"] == 0.0 and row["top1_restricted"] == pytest.approx(1 / 3)
    assert row["cohen_kappa_restricted"] == 0.0  # always the same class: no agreement beyond chance


def test_same_weights_other_class_order_is_not_a_cache_hit(tmp_path, tiny_imagenet):
    """Two heads with identical weights whose outputs mean other classes predict other classes."""
    import dataclasses

    from core.models.wrapper import LabelSpace

    torch.manual_seed(0)
    model, processor = _tiny("vit")
    with torch.no_grad():
        [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1].bias[25] += 9.0  # always "salamander"
    model.save_pretrained(tmp_path / "vit")
    processor.save_pretrained(tmp_path / "vit")
    m = create_model(str(tmp_path / "vit"))
    ds = load_dataset(tiny_imagenet)
    store = Store(tmp_path / "store")
    ev = evaluate(m, ds, "val", store=store, num_workers=0)
    assert (ev.predictions.top_idx[:, 0] == 1).all()  # output 25 is the dataset's class 1
    wnids = list(m.labels.wnids)
    wnids[1], wnids[25] = wnids[25], wnids[1]  # output 25 now stands for goldfish (n01443537)
    names = list(m.labels.names)
    names[1], names[25] = names[25], names[1]
    swapped = dataclasses.replace(m, labels=LabelSpace(names, wnids))
    ev2 = evaluate(swapped, ds, "val", store=store, num_workers=0)
    assert not ev2.cached and ev2.key != ev.key
    assert (ev2.predictions.top_idx[:, 0] == 0).all()  # goldfish, the dataset's class 0


def test_dataset_class_missing_from_the_model_is_refused(tmp_path, tiny_imagenet):
    from core.labels import align
    from core.models.wrapper import LabelSpace

    ds = load_dataset(tiny_imagenet)
    partial = LabelSpace(names=["goldfish", "cat"], wnids=["n01443537", "n02124075"])
    with pytest.raises(UserError, match="1 of .* WordNet classes are not among the model's 2"):
        align(partial, ds)
    wrong_names = LabelSpace(names=["a", "b", "c"])
    with pytest.raises(UserError, match="new head"):
        align(wrong_names, ds)


@pytest.mark.parametrize("hidden", [None, 512])
def test_new_head_for_a_datasets_classes(tmp_path, tiny_imagenet, hidden):
    from core.models.heads import with_new_head

    model, processor = _tiny("vit")
    model.save_pretrained(tmp_path / "vit")
    processor.save_pretrained(tmp_path / "vit")
    m = create_model(str(tmp_path / "vit"))
    ds = load_dataset(tiny_imagenet)
    before = {n: p.clone() for n, p in m.module.named_parameters() if "classifier" not in n}
    tuned = with_new_head(m, ds.classes, wnids=ds.wnids, hidden=hidden, freeze_backbone=True)
    assert tuned.labels.names == ["goldfish", "European fire salamander", "Egyptian cat"]
    head_params = 16 * 3 + 3 if hidden is None else (16 * 512 + 512) + (512 * 3 + 3)  # hidden size 16, by hand
    assert sum(p.numel() for p in tuned.module.parameters() if p.requires_grad) == head_params
    x = tuned.preprocess(np.zeros((64, 64, 3), np.uint8))
    assert tuned.logits(x).shape == (1, 3)
    assert m.logits(x).shape == (1, 1000) and len(m.labels) == 1000  # the original is untouched
    ev = evaluate(tuned, ds, "val", store=Store(tmp_path / "store"), num_workers=0)
    assert ev.meta["scoring"] == "native" and ev.restricted is None  # exactly the dataset's classes
    assert all(torch.equal(before[n], p) for n, p in tuned.module.named_parameters() if n in before)
