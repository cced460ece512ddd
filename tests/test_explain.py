"""Explain views: hand-checkable values (rollout, Grad-CAM on a planted cue, attention distance, receptive
fields), every scratch architecture and tiny transformers models, models left untouched, and the CLI's PNGs."""
import io
import math

import numpy as np
import pytest
import torch
from PIL import Image
from test_cli import assert_user_error, cli  # the CLI harness every CLI test shares
from torch import nn

from core.data.transforms import Preprocess
from core.explain import (
    ExplainError,
    attention_distances,
    explain,
    explain_many,
    layer_reach,
    mean_attention_distance,
    receptive_fields,
    render,
)
from core.explain.filters import filter_tiles
from core.models.registry import create_model
from core.models.scratch import ViT, build_scratch, scratch_specs
from core.models.spec import InputShape
from core.models.wrapper import LabelSpace, LoadedModel

RNG = np.random.default_rng(0)
IMAGE = (RNG.random((40, 48, 3)) * 255).astype(np.uint8)  # not square, not the models' size: exercises resize


def _wrap(module: nn.Module, size: int, family: str, classes: int, model_id: str = "test") -> LoadedModel:
    pre = Preprocess(size=(size, size), mean=(0.5,) * 3, std=(0.5,) * 3)
    return LoadedModel(id=model_id, name=model_id, family=family, source="scratch", module=module, preprocess=pre,
                       labels=LabelSpace([f"c{i}" for i in range(classes)]))


def _state(model: LoadedModel) -> dict:
    """Everything an explanation must leave as it was."""
    mods = dict(model.module.named_modules())
    torch.manual_seed(1)
    x = torch.randn(2, model.preprocess.channels, *model.preprocess.size)
    with torch.no_grad():
        out = model.logits(x).clone()
    cfg = getattr(model.module, "config", None)
    return {
        "out": out,
        "hooks": {n: (len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks),
                      len(m._backward_pre_hooks)) for n, m in mods.items()},
        "training": {n: m.training for n, m in mods.items()},
        "requires_grad": {n: p.requires_grad for n, p in model.module.named_parameters()},
        "grads": [n for n, p in model.module.named_parameters() if p.grad is not None],
        "attn": getattr(cfg, "_attn_implementation", None),
        "flags": [(m.return_attention, m.last_attention is None) for m in mods.values() if hasattr(m, "return_attention")],
    }


def _assert_unchanged(before: dict, model: LoadedModel) -> None:
    after = _state(model)
    torch.testing.assert_close(after.pop("out"), before["out"], rtol=0, atol=0)
    for key in ("hooks", "training", "requires_grad", "grads", "attn", "flags"):
        assert after[key] == before[key], key


def _methods(family: str, attention: bool) -> tuple[str, ...]:
    return ("filters", "feature-maps", "gradcam") + (("attention", "rollout") if attention else ())


def _check(model: LoadedModel, methods) -> None:
    before = _state(model)
    for method in methods:
        e = explain(model, IMAGE, method)
        h, w = model.preprocess.size
        assert e.image.shape == (h, w, 3) and e.image.dtype == np.uint8, method
        assert len(e.top5) == min(5, len(model.labels)) and abs(sum(p for _, p in e.top5)) <= 1 + 1e-6
        if method in ("gradcam", "rollout", "attention"):
            assert e.heatmap.shape == (h, w) and 0 <= e.heatmap.min() and e.heatmap.max() <= 1, method
        else:
            assert e.tiles and all(0 <= t.min() and t.max() <= 1 for t in e.tiles), method
        picture = render(e)
        assert picture.ndim == 3 and picture.shape[2] == 3 and picture.dtype == np.uint8
        _assert_unchanged(before, model)


# ------------------------------------------------------------------------------------------- scratch models


CLS_ATTENTION = {"vit-small", "vit-convstem", "vit-spt-lsa", "vit-lite-2"}  # blocks that attend from a CLS token
NO_CONV = {"vit-spt-lsa"}  # a Linear patch projection (after LayerNorm): no conv filters to show


@pytest.mark.parametrize("spec", scratch_specs(), ids=lambda s: s.id)
def test_every_scratch_architecture_explains_and_is_left_untouched(spec):
    model = build_scratch(spec.id, InputShape(3, 32, 5))
    if spec.id == "linear":  # no conv: filters are its class templates, maps and Grad-CAM are refused
        e = explain(model, IMAGE, "filters")
        assert len(e.tiles) == 5 and e.tiles[0].shape == (32, 32, 3)
        for method in ("feature-maps", "gradcam", "attention"):
            with pytest.raises(ExplainError):
                explain(model, IMAGE, method)
        return
    cls_attention = spec.id in CLS_ATTENTION  # a hybrid may have it (conv-stem ViT) or not (CCT pools tokens)
    methods = _methods(spec.family, cls_attention)
    if spec.id in NO_CONV:
        with pytest.raises(ExplainError, match="no convolution layers"):
            explain(model, IMAGE, "filters")
        methods = tuple(m for m in methods if m != "filters")
    _check(model, methods)
    if not cls_attention:
        with pytest.raises(ExplainError, match="vision transformer"):
            explain(model, IMAGE, "attention")


def test_first_layer_filters_are_rgb_tiles_normalised_per_filter():
    cnn, vit = build_scratch("cnn-2layer", InputShape(3, 32, 5)), build_scratch("vit-small", InputShape(3, 32, 5))
    e = explain(cnn, IMAGE, "filters")
    assert e.layer == "features.0" and len(e.tiles) == 32 and e.tiles[0].shape == (3, 3, 3)
    w = cnn.module.features[0].weight[7].detach().numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(e.tiles[7], (w - w.min()) / (w.max() - w.min()), atol=1e-6)
    v = explain(vit, IMAGE, "filters")  # the patch embedding, the ViT's "first layer": 4x4x3 at 32 px
    assert v.layer == "patch_embed.proj" and v.tiles[0].shape == (4, 4, 3) and len(v.tiles) == 64
    deep = explain(cnn, IMAGE, "filters", layer="features.4")  # 64 filters x 32 inputs: per-channel grid
    assert deep.columns == 8 and len(deep.tiles) == 64 and deep.tiles[0].shape == (3, 3)
    with pytest.raises(ExplainError, match="no layer named 'nope'"):
        explain(cnn, IMAGE, "filters", layer="nope")
    with pytest.raises(ExplainError, match="not a convolution"):
        explain(cnn, IMAGE, "filters", layer="features.1")


def test_filters_of_one_weight_each_share_one_scale_instead_of_going_black():
    # a ViT on 8 px grey digits patchifies 1x1: each filter is one weight, whose own range is a point, so every
    # tile normalised on its own was black (a reviewer's finding); across the bank, -1, 0, 1, 3 are 0, 1/4, 1/2, 1
    tiles, labels, cols = filter_tiles(np.array([-1.0, 0.0, 1.0, 3.0]).reshape(4, 1, 1, 1))
    assert [t.shape for t in tiles] == [(1, 1)] * 4 and labels[3] == "filter 3" and cols == 4
    np.testing.assert_allclose([float(t[0, 0]) for t in tiles], [0.0, 0.25, 0.5, 1.0])
    vit = build_scratch("vit-small", InputShape(1, 8, 10))
    e = explain(vit, np.zeros((8, 8, 3), np.uint8), "filters")
    assert e.data["weight_shape"][1:] == (1, 1, 1) and "one scale across the filters" in e.note
    assert len({float(t.ravel()[0]) for t in e.tiles}) > 1  # not all one grey (all black before)


def test_feature_maps_of_a_named_layer_and_vit_tokens_on_the_patch_grid():
    cnn = build_scratch("cnn-2layer", InputShape(3, 32, 5))
    e = explain(cnn, IMAGE, "feature-maps", layer="features.0")
    assert e.data["maps_shape"] == (32, 32, 32)
    x = cnn.preprocess(IMAGE)
    with torch.no_grad():
        ref = cnn.module.features[0](x)[0]  # conv output before the in-place ReLU
    ch = e.data["channels"][0]
    assert ch == int(ref.mean(dim=(1, 2)).argmax())
    r = ref[ch].numpy()
    np.testing.assert_allclose(e.tiles[0], (r - r.min()) / (r.max() - r.min()), atol=1e-5)
    vit = build_scratch("vit-small", InputShape(3, 32, 5))
    v = explain(vit, IMAGE, "feature-maps", layer="blocks.2")
    assert v.data["maps_shape"] == (192, 8, 8)  # 65 tokens: CLS dropped, 64 patches on the 8x8 grid


def planted_square(gain: float = 5.0, bias: float = 0.0) -> tuple[LoadedModel, np.ndarray]:
    """A 2-class CNN set by hand, and a dark image with one bright 8x8 square (rows 18..25, columns 5..12): conv0
    channel 0 and conv2 channel 0 detect brightness, class 1's logit is `gain` x their mean + `bias`."""
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(4, 4, 3, padding=1),
                        nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    with torch.no_grad():
        for conv in (net[0], net[2]):
            conv.weight.zero_()
            conv.bias.zero_()
        net[0].weight[0] = 1.0 / 27
        net[2].weight[0, 0] = 1.0 / 9
        net[6].weight.zero_()
        net[6].bias.zero_()
        net[6].weight[1, 0] = gain
        net[6].bias[1] = bias
    image = np.full((32, 32, 3), 20, np.uint8)
    image[18:26, 5:13] = 250
    return _wrap(net, 32, "cnn", 2), image


def test_gradcam_peaks_on_a_planted_bright_square():
    model, image = planted_square()
    before = _state(model)
    e = explain(model, image, "gradcam")
    assert e.layer == "2" and e.class_index == 1 and e.top5[0][0] == "c1"
    y, x = np.unravel_index(e.heatmap.argmax(), e.heatmap.shape)
    assert 18 <= y <= 25 and 5 <= x <= 12
    assert e.heatmap[:8, 20:].max() == 0  # far from the square: no evidence
    by_name = explain(model, image, "gradcam", layer="0")  # any conv layer by name
    y, x = np.unravel_index(by_name.heatmap.argmax(), by_name.heatmap.shape)
    assert 18 <= y <= 25 and 5 <= x <= 12
    with pytest.raises(ExplainError, match="outside"):
        explain(model, image, "gradcam", class_index=2)
    _assert_unchanged(before, model)


def _resnets() -> dict[str, tuple[LoadedModel, str]]:
    """A ResNet of each source, random weights, with the name of its last stage."""
    import timm
    import torchvision
    from transformers import ResNetConfig, ResNetForImageClassification

    torch.manual_seed(0)
    hf = ResNetForImageClassification(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1],
                                                   layer_type="basic", num_labels=3))
    return {"torchvision": (_wrap(torchvision.models.resnet18(num_classes=3), 32, "cnn", 3), "layer4"),
            "timm": (_wrap(timm.create_model("resnet18", pretrained=False, num_classes=3), 32, "cnn", 3), "layer4"),
            "transformers": (_wrap(hf, 32, "cnn", 3), "resnet.encoder.stages.1"),
            "scratch": (build_scratch("resnet20", InputShape(3, 32, 3)), "features")}


def test_gradcam_defaults_to_the_last_stage_output_skip_path_included():
    # pytorch-grad-cam's documented choice (model.layer4[-1], the last block's output); the last conv inside the
    # block (layer4.1.conv2) comes before the residual add, so a map there ignores the skip path
    for source, (model, stage) in _resnets().items():
        e = explain(model, IMAGE, "gradcam")
        assert e.layer == stage, (source, e.layer)
        assert "last stage" in e.note, e.note
    model, stage = _resnets()["torchvision"]
    e = explain(model, IMAGE, "gradcam")
    x = model.preprocess.normalize(model.preprocess.geometry(IMAGE).unsqueeze(0))
    got = {}
    handle = model.module.layer4.register_forward_hook(lambda m, i, o: got.setdefault("a", o))
    try:
        logits = model.logits(x)
    finally:
        handle.remove()
    (g,) = torch.autograd.grad(logits[0, e.class_index], got["a"])
    cam = torch.relu((g[0].mean((1, 2))[:, None, None] * got["a"][0]).sum(0)).detach().numpy()
    np.testing.assert_allclose(e.data["cam"], cam / cam.max(), rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------------------------------- attention


def _tiny_vit() -> LoadedModel:
    torch.manual_seed(3)
    vit = ViT(InputShape(3, 16, 3), dim=8, depth=2, heads=2, grid=4)
    return _wrap(vit, 16, "vit", 3)


def _numpy_rollout(layers: list[np.ndarray], fusion: str, discard: float) -> np.ndarray:
    """Abnar & Zuidema's rollout written out: fuse heads, drop the weakest links, 0.5 A + 0.5 I, rows to 1."""
    t = layers[0].shape[-1]
    joint = np.eye(t)
    for heads in layers:
        a = {"mean": np.mean, "max": np.max, "min": np.min}[fusion](heads, axis=0)
        if discard:
            flat = a.flatten()
            weakest = np.argsort(flat)[:int(flat.size * discard)]
            flat[[i for i in weakest if i != 0]] = 0
            a = flat.reshape(t, t)
        a = 0.5 * a + 0.5 * np.eye(t)
        a = a / a.sum(axis=1, keepdims=True)
        joint = a @ joint
    return joint


@pytest.mark.parametrize("fusion,discard", [("mean", 0.0), ("max", 0.5), ("min", 0.2)])
def test_rollout_on_a_two_layer_vit_equals_numpy(fusion, discard):
    model = _tiny_vit()
    attn_modules = [b.attn for b in model.module.blocks]
    for m in attn_modules:
        m.return_attention = True
    with torch.no_grad():
        model.logits(model.preprocess(IMAGE))
    layers = [m.last_attention[0].double().numpy() for m in attn_modules]
    for m in attn_modules:
        m.return_attention, m.last_attention = False, None
    assert len(layers) == 2 and layers[0].shape == (2, 17, 17)
    before = _state(model)
    e = explain(model, IMAGE, "rollout", head_fusion=fusion, discard_ratio=discard)
    cls = _numpy_rollout(layers, fusion, discard)[0, 1:].reshape(4, 4)
    np.testing.assert_allclose(e.data["rollout"], cls / cls.max(), rtol=1e-6, atol=1e-9)
    _assert_unchanged(before, model)
    # per-head CLS attention: layer 1, head 0 is row 0 of that matrix over the 16 patches
    a = explain(model, IMAGE, "attention")
    np.testing.assert_allclose(a.data["attention"][1, 0], layers[1][0, 0, 1:].reshape(4, 4), atol=1e-9)
    assert len(a.tiles) == 4 and a.tiles[0].shape == (16, 16, 3)
    assert len(explain(model, IMAGE, "attention", layer="1").tiles) == 2
    with pytest.raises(ExplainError, match="0..1"):
        explain(model, IMAGE, "attention", layer="7")


def test_mean_attention_distance_by_hand():
    # 2x2 patch grid of 8-px patches, a CLS token in front: 5 tokens
    self_only = np.eye(5)[None, None]
    assert mean_attention_distance(self_only, (2, 2), (8, 8), prefix=1) == [
        {"layer": 0, "head": 0, "mean_distance_px": 0.0}]
    uniform = np.full((1, 1, 5, 5), 0.2)  # CLS dropped, rows renormalised: each query 1/4 on each patch
    d = mean_attention_distance(uniform, (2, 2), (8, 8), prefix=1)[0]["mean_distance_px"]
    assert d == pytest.approx(8 * (0 + 1 + 1 + math.sqrt(2)) / 4)
    rows = attention_distances(_tiny_vit(), IMAGE)  # 2 layers x 2 heads, within the 16-px image's span
    assert [(r["layer"], r["head"]) for r in rows] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert all(0 < r["mean_distance_px"] < 16 * math.sqrt(2) for r in rows)


def test_attention_distance_of_a_transformer_that_pools_its_tokens():
    # no CLS token: every token is a patch (2x2 grid of 8-px patches), each query 1/4 on each patch
    d = mean_attention_distance(np.full((1, 1, 4, 4), 0.25), (2, 2), (8, 8), prefix=0)[0]["mean_distance_px"]
    assert d == pytest.approx(8 * (0 + 1 + 1 + math.sqrt(2)) / 4)
    cct = build_scratch("cct-2", InputShape(3, 32, 5))
    rows = attention_distances(cct, IMAGE)  # CCT-2: 2 layers x 2 heads over its pooled tokens
    assert [(r["layer"], r["head"]) for r in rows] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert all(0 < r["mean_distance_px"] < 32 * math.sqrt(2) for r in rows)
    with pytest.raises(ExplainError, match="no CLS token"):  # the CLS views still say why they cannot
        explain(cct, IMAGE, "attention")


def test_receptive_field_growth_by_hand():
    rows = receptive_fields(build_scratch("cnn-2layer", InputShape(3, 32, 5)))
    # conv3 -> 3; pool2 -> 3 + 1*1 = 4 (jump 2); conv3 -> 4 + 2*2 = 8; pool2 -> 8 + 1*2 = 10 (jump 4)
    assert [(r["layer"], r["receptive_field_px"], r["jump_px"]) for r in rows] == [
        ("features.0", 3, 1), ("features.2", 4, 2), ("features.4", 8, 2), ("features.6", 10, 4)]
    r20 = receptive_fields(build_scratch("resnet20", InputShape(3, 32, 5)))
    convs = [r["receptive_field_px"] for r in r20]  # 19 3x3 convs; a stage's first conv reads the old jump
    # stem 3; stage 1: 6 convs at jump 1 (+2 each); stage 2: +2 (stride-2 conv), then 5 at jump 2 (+4);
    # stage 3: +4, then 5 at jump 4 (+8)
    assert len(convs) == 19 and convs[-1] == 3 + 6 * 2 + (2 + 5 * 4) + (4 + 5 * 8) == 81 and convs == sorted(convs)


def test_layer_reach_puts_a_hybrids_convolutions_before_its_attention_as_a_share_of_the_side():
    cnn = layer_reach(build_scratch("cnn-2layer", InputShape(3, 32, 5)), IMAGE)
    # the two convs of the receptive-field test above (3 and 8 px; pools are not layers here) on a 32-px side
    assert [(r["depth"], r["pixels"], r["share"], r["what"]) for r in cnn] == [
        (1, 3, 3 / 32, "receptive field"), (2, 8, 8 / 32, "receptive field")]
    cct = layer_reach(build_scratch("cct-2", InputShape(3, 32, 5)), IMAGE)
    assert [(r["depth"], r["what"]) for r in cct] == [(1, "receptive field"), (2, "receptive field")] + [
        (d, "attention distance") for d in (3, 3, 4, 4)]  # CCT-2: its tokenizer's 2 convs, then 2 layers x 2 heads
    assert all(r["family"] == "hybrid" and r["share"] == pytest.approx(r["pixels"] / 32) for r in cct)
    vit = layer_reach(_tiny_vit(), IMAGE)  # a ViT: attention only (its patch embedding is not counted)
    assert {r["what"] for r in vit} == {"attention distance"} and len(vit) == 4
    # the chart pads its scales and starts at the first layer: the first and last layers' points, and a field as
    # wide as the image (cnn-2layer's second on 8-px digits), were drawn half outside the plot, beside a layer 0
    from core.figures import layer_reach as reach_chart

    for layer in reach_chart(cnn + vit).to_dict()["layer"]:
        x, y = layer["encoding"]["x"]["scale"], layer["encoding"]["y"]["scale"]
        assert x["padding"] > 0 and not x["zero"] and y["padding"] > 0


# ------------------------------------------------------------------------------------------- transformers


def _tiny_hf(kind: str):
    import transformers as tf

    common = {"num_labels": 5, "id2label": {i: f"label {i}" for i in range(5)},
              "label2id": {f"label {i}": i for i in range(5)}}
    vit = {"image_size": 32, "patch_size": 8, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
           "intermediate_size": 32}
    square = tf.ViTImageProcessor(size={"height": 32, "width": 32})
    if kind == "vit":
        return tf.ViTForImageClassification(tf.ViTConfig(**vit, **common)), square
    if kind == "deit":
        return tf.DeiTForImageClassification(tf.DeiTConfig(**vit, **common)), square
    if kind == "bit":
        return (tf.BitForImageClassification(tf.BitConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1],
                                                          num_groups=2, **common)), square)
    if kind == "resnet":
        return (tf.ResNetForImageClassification(tf.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16],
                                                                depths=[1, 1], layer_type="basic", **common)), square)
    if kind == "convnext":
        return (tf.ConvNextForImageClassification(tf.ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1],
                                                                    num_stages=2, **common)), square)
    cfg = tf.SwinConfig(image_size=32, patch_size=4, embed_dim=8, depths=[1, 1], num_heads=[1, 2], window_size=4,
                        **common)
    return tf.SwinForImageClassification(cfg), square


@pytest.fixture(scope="module")
def hf_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-hf")
    out = {}
    for kind in ("vit", "deit", "swin", "bit", "resnet", "convnext"):
        torch.manual_seed(0)
        module, processor = _tiny_hf(kind)
        module.save_pretrained(root / kind)
        processor.save_pretrained(root / kind)
        out[kind] = create_model(str(root / kind))
    return out


@pytest.mark.parametrize("kind", ["vit", "deit", "swin", "bit", "resnet", "convnext"])
def test_tiny_transformers_models_explain_and_are_left_untouched(hf_models, kind):
    model = hf_models[kind]
    attention = kind in ("vit", "deit")
    _check(model, _methods(model.family, attention))
    if model.family == "vit":  # eager only inside the explanation (_check compared the whole state too)
        assert model.module.config._attn_implementation == "sdpa"
    if not attention:
        with pytest.raises(ExplainError, match="Swin" if kind == "swin" else "vision transformer"):
            explain(model, IMAGE, "rollout")
    if model.family == "vit":  # Grad-CAM on tokens: CLS (and DeiT's distillation token) dropped, 4x4 grid
        e = explain(model, IMAGE, "gradcam")  # Swin: its final norm, 4x4 after one 2x merge of 8x8
        assert e.data["cam"].shape == (4, 4)


def test_hf_rollout_matches_numpy_on_eager_attentions(hf_models):
    for kind, prefix in (("vit", 1), ("deit", 2)):
        model = hf_models[kind]
        x = model.preprocess(IMAGE)
        model.module.set_attn_implementation("eager")
        with torch.no_grad():
            layers = [a[0].double().numpy() for a in model.module(pixel_values=x, output_attentions=True).attentions]
        model.module.set_attn_implementation("sdpa")
        assert layers[0].shape == (2, 16 + prefix, 16 + prefix)
        e = explain(model, IMAGE, "rollout")
        cls = _numpy_rollout(layers, "mean", 0.0)[0, prefix:].reshape(4, 4)
        np.testing.assert_allclose(e.data["rollout"], cls / cls.max(), rtol=1e-6, atol=1e-9)


def test_explain_many_same_class_and_errors_per_model(hf_models):
    models = [hf_models["vit"], hf_models["resnet"], build_scratch("vit-small", InputShape(3, 32, 5))]
    rows = explain_many(models, IMAGE, "rollout", class_index=3)
    assert [r.model_id for r in rows] == [m.id for m in models]
    assert rows[0].error is None and rows[0].explanation.class_index == 3 and len(rows[0].explanation.top5) == 5
    assert rows[1].explanation is None and "vision transformer" in rows[1].error
    assert rows[2].error is None and rows[2].explanation.heatmap.shape == (32, 32)
    rows = explain_many(models, IMAGE, "gradcam", class_index=4)
    assert all(r.error is None and r.explanation.class_index == 4 for r in rows)


# ------------------------------------------------------------------------------------------- CLI


def test_cli_writes_a_png_per_method(tmp_path):
    path = tmp_path / "in.png"
    Image.fromarray(IMAGE).save(path)
    shapes_vit = create_model("vit-small", _shapes())
    for method in ("filters", "feature-maps", "attention", "rollout", "gradcam"):
        out = tmp_path / f"{method}.png"
        proc = cli("explain", "--model", "vit-small", "--image", str(path), "--method", method, "--out", str(out))
        assert str(out) in proc.stdout
        assert out.stat().st_size > 0
        with Image.open(io.BytesIO(out.read_bytes())) as img:
            size = img.size
        expected = render(explain(shapes_vit, IMAGE, method)).shape
        assert (size[1], size[0]) == expected[:2], method
        if method in ("gradcam", "rollout"):  # image | overlay, each 224 px, 2-px gap
            assert size == (450, 224)
    out = tmp_path / "cnn.png"
    cli("explain", "--model", "cnn-2layer", "--image", str(path), "--method", "gradcam", "--out", str(out),
        "--layer", "features.0", "--class-index", "1")
    assert out.stat().st_size > 0


def test_cli_user_errors_are_one_line(tmp_path):
    path = tmp_path / "in.png"
    Image.fromarray(IMAGE).save(path)
    base = ("explain", "--image", str(path), "--out", str(tmp_path / "o.png"))
    assert_user_error(cli(*base, "--model", "cnn-2layer", "--method", "attention", ok=False), "vision transformer")
    assert_user_error(cli(*base, "--model", "cnn-2layer", "--method", "gradcam", "--layer", "nope", ok=False),
                      "no layer named")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert_user_error(cli("explain", "--model", "cnn-2layer", "--method", "filters", "--image", str(bad),
                          "--out", str(tmp_path / "o.png"), ok=False), "not an image")
    assert not (tmp_path / "o.png").exists()


def _shapes():
    from core.data.registry import load_dataset

    return load_dataset("shapes")
