"""New heads found through each model's own API, and where a pretrained head's class names come from.

Tiny randomly initialised models of the real classes (scratch, transformers, timm, torchvision); transformers and
timm ones are saved to folders and loaded back through the real loaders."""
import pytest
import torch
from torch import nn

from core.data.transforms import Preprocess
from core.models.heads import classifier_layers, with_new_head
from core.models.imagenet import label_space_for_head
from core.models.registry import create_model
from core.models.scratch import build_scratch, scratch_specs
from core.models.spec import InputShape
from core.models.wrapper import LabelSpace, LoadedModel

NEW = ["ant", "bee", "cat", "dog"]


def _wrap(module: nn.Module, num_classes: int, size: int = 32, source: str = "torchvision") -> LoadedModel:
    pre = Preprocess(size=(size, size), mean=(0.5,) * 3, std=(0.5,) * 3)
    return LoadedModel(id=type(module).__name__, name=type(module).__name__, family="cnn", source=source,
                       module=module, preprocess=pre, labels=LabelSpace([f"class {i}" for i in range(num_classes)]))


def _hf_folder(folder, kind: str, num_labels: int):
    import transformers as t

    tiny = dict(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                intermediate_size=32, num_labels=num_labels)
    if kind == "vit":
        model = t.ViTForImageClassification(t.ViTConfig(**tiny))
    elif kind == "deit-distilled":
        model = t.DeiTForImageClassificationWithTeacher(t.DeiTConfig(**tiny))
    else:
        model = t.ResNetForImageClassification(t.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1],
                                                              layer_type="basic", num_labels=num_labels))
    model.save_pretrained(folder)
    t.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return create_model(str(folder))


def _timm_folder(folder, arch: str, **kw):
    import timm
    from timm.models import save_for_hf

    torch.manual_seed(0)
    m = timm.create_model(arch, pretrained=False, **kw.pop("create", {}))
    if "tag" in kw:
        m.pretrained_cfg["tag"] = kw.pop("tag")
    save_for_hf(m, str(folder), safe_serialization=True, **kw)
    return create_model(f"timm:local-dir:{folder}")


def _trainable(m: LoadedModel) -> int:
    return sum(p.numel() for p in m.module.parameters() if p.requires_grad)


# ------------------------------------------------------------------------------------------------------- heads


def test_a_layer_as_wide_as_the_classes_is_not_taken_for_the_head():
    """vit-small is 192 wide; with 192 classes every block's attn.proj (192 -> 192) and MLP output (768 -> 192)
    have the class count's width. Only `head` is replaced."""
    m = build_scratch("vit-small", InputShape(channels=3, size=16, num_classes=192))
    tuned = with_new_head(m, NEW, freeze_backbone=True)
    assert [n for n, _ in classifier_layers(m.module, 192)] == ["head"]
    assert tuned.module.head.out_features == 4
    assert _trainable(tuned) == 192 * 4 + 4  # the new head only
    for block, old in zip(tuned.module.blocks, m.module.blocks):
        assert block.attn.proj.out_features == 192 and torch.equal(block.attn.proj.weight, old.attn.proj.weight)
        assert block.mlp[2].out_features == 192 and torch.equal(block.mlp[2].weight, old.mlp[2].weight)
    assert tuned.logits(torch.zeros(2, 3, 16, 16)).shape == (2, 4)


def test_transformers_head_is_the_classifier_not_a_same_width_dense(tmp_path):
    """A ViT 16 wide with 16 labels: the attention's q/k/v/o projections and the MLP's fc2 are 16 wide too; only
    `classifier` is replaced."""
    m = _hf_folder(tmp_path / "vit", "vit", num_labels=16)
    tuned = with_new_head(m, NEW, freeze_backbone=True)
    assert _trainable(tuned) == 16 * 4 + 4
    layer, old = tuned.module.vit.layers[0], m.module.vit.layers[0]
    assert layer.attention.o_proj.out_features == 16 and layer.mlp.fc2.out_features == 16
    assert torch.equal(layer.mlp.fc2.weight, old.mlp.fc2.weight)
    assert tuned.module.classifier.out_features == 4
    assert tuned.module.config.id2label == {0: "ant", 1: "bee", 2: "cat", 3: "dog"}


def test_torchvision_mobilenet_keeps_its_1024_wide_hidden_layer():
    """mobilenet_v3_small's classifier is Linear(576, 1024) - Hardswish - Dropout - Linear(1024, classes): with 1024
    classes both Linears are 1024 wide; classifier[-1] is the head."""
    import torchvision

    module = torchvision.models.mobilenet_v3_small(weights=None, num_classes=1024)
    tuned = with_new_head(_wrap(module, 1024), NEW, freeze_backbone=True)
    assert tuned.module.classifier[0].out_features == 1024
    assert torch.equal(tuned.module.classifier[0].weight, module.classifier[0].weight)
    assert tuned.module.classifier[3].out_features == 4 and _trainable(tuned) == 1024 * 4 + 4


@pytest.mark.parametrize("source", ["torchvision", "scratch"])
def test_googlenet_aux_heads_get_new_heads_too(source):
    """GoogLeNet's two auxiliary classifiers predict the same classes: aux1.fc2 and aux2.fc2 are replaced with fc;
    the aux heads' hidden fc1 layers are kept."""
    import torchvision

    if source == "torchvision":
        module = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False, num_classes=10)
        m, width = _wrap(module, 10, size=64), 1024  # fc and both fc2 read 1024 features
    else:
        m, width = build_scratch("googlenet-reduced", InputShape(3, 32, 10)), 512  # half width
    tuned = with_new_head(m, NEW, freeze_backbone=True)
    assert {n for n, _ in classifier_layers(m.module, 10)} == {"fc", "aux1.fc2", "aux2.fc2"}
    for head in (tuned.module.fc, tuned.module.aux1.fc2, tuned.module.aux2.fc2):
        assert (head.in_features, head.out_features) == (width, 4)
    assert tuned.module.aux1.fc1.out_features == width
    assert torch.equal(tuned.module.aux1.fc1.weight, m.module.aux1.fc1.weight)
    assert _trainable(tuned) == 3 * (width * 4 + 4)
    size = m.preprocess.size[0]
    tuned.module.train()
    out = tuned.module(torch.zeros(2, 3, size, size))
    assert [tuple(o.shape) for o in out] == [(2, 4)] * 3  # logits and the two aux outputs
    tuned.module.eval()
    assert tuned.logits(torch.zeros(2, 3, size, size)).shape == (2, 4)


def test_leaves_cnn_score_batchnorm_follows_the_new_head():
    """The leaves study's CNN ends Linear(4096, n) - BatchNorm1d(n): both are rebuilt for the new classes."""
    m = build_scratch("leaves-cnn", InputShape(3, 16, 10))
    assert [n for n, _ in classifier_layers(m.module, 10)] == ["head.4", "head.5"]
    tuned = with_new_head(m, NEW, freeze_backbone=True)
    assert tuned.module.head[4].out_features == 4 and tuned.module.head[5].num_features == 4
    assert _trainable(tuned) == (4096 * 4 + 4) + (4 + 4)  # Linear, then the BatchNorm's weight and bias
    assert tuned.logits(torch.zeros(2, 3, 16, 16)).shape == (2, 4)


def _torchvision_models():
    import torchvision

    return {
        "resnet18": lambda: torchvision.models.resnet18(weights=None, num_classes=10),  # fc
        "alexnet": lambda: torchvision.models.alexnet(weights=None, num_classes=10),  # classifier[-1]
        "vit": lambda: torchvision.models.VisionTransformer(image_size=32, patch_size=16, num_layers=1, num_heads=2,
                                                            hidden_dim=32, mlp_dim=64, num_classes=10),  # heads.head
    }


def _loaders(tmp_path):
    """Each supported source: a function giving a LoadedModel with 10 classes."""
    loaders = {f"scratch:{s.id}": (lambda i=s.id: build_scratch(i, InputShape(3, 16, 10))) for s in scratch_specs()}
    for name, build in _torchvision_models().items():
        loaders[f"torchvision:{name}"] = lambda b=build, n=name: _wrap(b(), 10, size=64 if n == "alexnet" else 32)
    for kind in ("vit", "resnet", "deit-distilled"):
        loaders[f"hf:{kind}"] = lambda k=kind: _hf_folder(tmp_path / k, k, num_labels=10)
    for arch in ("test_vit", "test_resnet", "test_convnext", "test_efficientnet"):
        loaders[f"timm:{arch}"] = lambda a=arch: _timm_folder(tmp_path / a, a, create={"num_classes": 10})
    return loaders


SOURCES = ([f"scratch:{s.id}" for s in scratch_specs()] + ["torchvision:resnet18", "torchvision:alexnet",
           "torchvision:vit", "hf:vit", "hf:resnet", "hf:deit-distilled", "timm:test_vit", "timm:test_resnet",
           "timm:test_convnext", "timm:test_efficientnet"])


def _new_head_params(old: nn.Module, hidden: int | None, k: int) -> int:
    """Parameters of the layer that replaces `old`: Linear(in, k), or Linear(in, hidden) + Linear(hidden, k); a
    score BatchNorm1d(k) has a weight and a bias."""
    if isinstance(old, nn.BatchNorm1d):
        return 2 * k
    return old.in_features * hidden + hidden + hidden * k + k if hidden else old.in_features * k + k


@pytest.mark.parametrize("source, hidden", [(s, None) for s in SOURCES] + [
    (s, 512) for s in ("scratch:leaves-cnn", "scratch:googlenet-reduced", "torchvision:vit", "hf:deit-distilled",
                       "timm:test_convnext")])
def test_every_source_gets_a_head_for_the_new_classes(tmp_path, source, hidden):
    m = _loaders(tmp_path)[source]()
    old = classifier_layers(m.module, 10)
    assert old, source
    tuned = with_new_head(m, NEW, hidden=hidden, freeze_backbone=True, seed=3)
    new = classifier_layers(tuned.module, 4)
    assert [n for n, _ in new] == [n for n, _ in old] or hidden is not None  # an MLP head's last Linear is deeper
    assert len(new) == len(old)
    assert _trainable(tuned) == sum(_new_head_params(o, hidden, 4) for _, o in old)
    x = torch.zeros(2, 3, *m.preprocess.size)
    assert tuned.logits(x).shape == (2, 4) and m.logits(x).shape == (2, 10)  # the original keeps its head
    assert tuned.labels.names == NEW
    again = classifier_layers(with_new_head(m, NEW, hidden=hidden, seed=3).module, 4)
    assert all(torch.equal(a.weight, b.weight) for (_, a), (_, b) in zip(new, again))  # the seed fixes the new head


def test_a_module_without_a_known_head_is_refused():
    from core.errors import ModelError

    m = _wrap(nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10)), 10, size=8)
    with pytest.raises(ModelError, match="found no classification head with 10 outputs"):
        with_new_head(m, NEW)


# ------------------------------------------------------------------------------------------------- label spaces


def test_placeholder_labels_become_imagenet_only_for_exactly_1000():
    placeholders = [f"LABEL_{i}" for i in range(1000)]
    labels = label_space_for_head(placeholders)
    assert labels.names[1].startswith("goldfish") and labels.wnids[1] == "n01443537"
    assert labels.assumed and "ImageNet-1k" in labels.assumed and "LABEL_0" in labels.assumed
    short = label_space_for_head(placeholders[:999])
    assert short.names[0] == "LABEL_0" and short.wnids is None and short.assumed is None
    one_named = label_space_for_head(placeholders[:999] + ["teapot"])
    assert one_named.names[999] == "teapot" and one_named.wnids is None and one_named.assumed is None
    from core.models.imagenet import imagenet1k

    real = label_space_for_head(list(imagenet1k().names))
    assert real.wnids[1] == "n01443537" and real.assumed is None  # the head names them itself


def test_transformers_head_with_1000_placeholders_says_imagenet_was_assumed(tmp_path):
    m = _hf_folder(tmp_path / "vit", "vit", num_labels=1000)  # transformers' default id2label: LABEL_0 ...
    assert m.labels.names[1].startswith("goldfish") and "assumed" in m.labels.assumed
    named = _hf_folder(tmp_path / "named", "vit", num_labels=3)
    assert named.labels.names == ["LABEL_0", "LABEL_1", "LABEL_2"] and named.labels.assumed is None


def test_timm_label_names_come_before_the_imagenet_assumption(tmp_path, monkeypatch):
    """A 1000-class timm head whose config names its own classes keeps them."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    names = [f"place{i}" for i in range(1000)]
    m = _timm_folder(tmp_path / "places", "test_resnet", model_config={
        "label_names": names, "label_descriptions": {n: f"a place called {n}" for n in names}})
    assert m.labels.names[:2] == ["a place called place0", "a place called place1"]
    assert m.labels.wnids is None and m.labels.assumed is None


def test_timm_imagenet_1k_is_assumed_only_when_nothing_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tagged = _timm_folder(tmp_path / "tagged", "test_resnet")  # tag r160_in1k: the weights say ImageNet-1k
    assert tagged.labels.wnids[1] == "n01443537" and tagged.labels.assumed is None
    untagged = _timm_folder(tmp_path / "untagged", "test_resnet", tag="custom")
    assert untagged.labels.wnids[1] == "n01443537"
    assert "ImageNet-1k class names assumed" in untagged.labels.assumed
    ten = _timm_folder(tmp_path / "ten", "test_resnet", create={"num_classes": 10}, tag="custom")
    assert ten.labels.names[:2] == ["class 0", "class 1"] and ten.labels.assumed is None
    named = _timm_folder(tmp_path / "named", "test_resnet", create={"num_classes": 3},
                         model_config={"label_names": ["cat", "dog", "fox"]})
    assert named.labels.names == ["cat", "dog", "fox"] and named.labels.wnids is None


def test_head_module_names_match_the_scratch_registry():
    """Every scratch architecture names its score layers (head_names) and they resolve to real layers."""
    for spec in scratch_specs():
        m = build_scratch(spec.id, InputShape(3, 16, 7))
        assert [n for n, _ in classifier_layers(m.module, 7)] == list(m.module.head_names), spec.id
