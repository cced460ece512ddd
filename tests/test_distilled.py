"""Distilled ViTs (DeiT, LeViT: a class head and a distillation head) load as the classes they were saved as, and
score as their authors score them: the mean of the two heads' logits. Tiny random models, saved and loaded offline
through the same path a Hub id takes. AutoModelForImageClassification picks the saved class from config.architectures
(its mapping lists both DeiT and LeViT classifiers); were it to load the first one, DeiT would be refused (no
`classifier`) and LeViT would silently drop its distillation head: these tests say so."""
import numpy as np
import pytest
import torch

from core.errors import ModelError
from core.models.heads import classifier_layers, with_new_head
from core.models.registry import create_model

LABELS = {0: "ant", 1: "bee", 2: "cat", 3: "dog", 4: "eel"}


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (48, 40, 3), dtype=np.uint8)


def _randomize(model: torch.nn.Module) -> torch.nn.Module:
    """Every weight drawn from N(0, 0.3): the default inits give near-zero scores (LeViT's come out ~1e-11), which
    would make any two heads, or any two ways of combining them, look equal."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return model.eval()


def _heads_disagree(a: torch.Tensor, b: torch.Tensor) -> bool:
    """The two heads' scores differ by far more than the comparison's tolerance, so their mean is neither alone."""
    return (a - b).abs().max().item() > 0.1


def _save_deit(folder, architecture: str = "DeiTForImageClassificationWithTeacher"):
    """A tiny DeiT saved as `architecture` (a distilled classifier, or a bare DeiTModel backbone)."""
    import transformers
    from transformers import DeiTConfig, DeiTImageProcessor

    cfg = DeiTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, num_labels=5, id2label=LABELS, label2id={v: k for k, v in LABELS.items()})
    model = _randomize(getattr(transformers, architecture)(cfg))
    model.save_pretrained(folder)
    DeiTImageProcessor(size={"height": 32, "width": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return model


def _save_levit(folder):
    """A tiny distilled LeViT: 64 px images, 16 px patches (4x4 tokens), subsampled to 2x2 and 1x1."""
    from transformers import (
        LevitConfig,
        LevitForImageClassificationWithTeacher,
        LevitImageProcessor,
    )

    cfg = LevitConfig(image_size=64, hidden_sizes=[16, 32, 48], num_attention_heads=[1, 2, 3], depths=[1, 1, 1],
                      key_dim=[8, 8, 8], num_labels=5, id2label=LABELS, label2id={v: k for k, v in LABELS.items()})
    model = _randomize(LevitForImageClassificationWithTeacher(cfg))
    model.save_pretrained(folder)
    LevitImageProcessor(size={"shortest_edge": 64}, crop_size={"height": 64, "width": 64}).save_pretrained(folder)
    return model


def _deit_by_hand(model, x: torch.Tensor) -> torch.Tensor:
    """DeiT's distilled score: the class token's head and the distillation token's head, averaged."""
    h = model.deit(x).last_hidden_state
    return (model.cls_classifier(h[:, 0]) + model.distillation_classifier(h[:, 1])) / 2


def _levit_by_hand(model, x: torch.Tensor) -> torch.Tensor:
    """LeViT's distilled score: both heads on the mean-pooled tokens, averaged."""
    h = model.levit(x).last_hidden_state.mean(1)
    return (model.classifier(h) + model.classifier_distill(h)) / 2


@pytest.mark.parametrize("save, by_hand, family", [(_save_deit, _deit_by_hand, "vit"),
                                                   (_save_levit, _levit_by_hand, "vit")], ids=["deit", "levit"])
def test_distilled_checkpoint_loads_and_scores_the_mean_of_both_heads(tmp_path, save, by_hand, family):
    saved = save(tmp_path / "model")
    m = create_model(str(tmp_path / "model"))
    assert type(m.module).__name__ == type(saved).__name__, type(m.module).__name__
    assert m.family == family and m.labels.names == list(LABELS.values())
    with torch.inference_mode():
        x = m.preprocess(_image())
        got = m.logits(x)
        want = by_hand(saved, x)  # the saved weights, both heads, averaged by hand
        out = m.module(x)
    torch.testing.assert_close(got, want)
    assert got.argmax(1).tolist() == want.argmax(1).tolist()
    # the two heads disagree, so the mean is not either head's score alone
    assert _heads_disagree(out.cls_logits, out.distillation_logits)


@pytest.mark.parametrize("save, by_hand, heads", [
    (_save_deit, _deit_by_hand, ["cls_classifier", "distillation_classifier"]),
    (_save_levit, _levit_by_hand, ["classifier.linear", "classifier_distill.linear"]),
], ids=["deit", "levit"])
def test_new_head_replaces_both_distilled_heads(tmp_path, save, by_hand, heads):
    """Fine-tuning a distilled model for 3 classes gives both heads 3 outputs; its score stays their mean."""
    save(tmp_path / "model")
    m = create_model(str(tmp_path / "model"))
    assert [p for p, _ in classifier_layers(m.module, 5)] == heads
    tuned = with_new_head(m, ["a", "b", "c"], seed=1)
    assert [p for p, _ in classifier_layers(tuned.module, 3)] == heads
    assert classifier_layers(tuned.module, 5) == []
    old = dict(m.module.named_modules())
    assert all(tuned.module.get_submodule(p) is not old[p] for p in heads)  # new layers, and m keeps its own
    tuned.module.eval()
    with torch.inference_mode():
        x = tuned.preprocess(_image(1))
        got = tuned.logits(x)
        want = by_hand(tuned.module, x)
    assert got.shape == (1, 3)
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("architecture", ["DeiTModel", "DeiTForMaskedImageModeling"])
def test_distilled_backbone_without_a_classification_head_is_refused(tmp_path, architecture):
    """A checkpoint saved as a non-classifier class still gets no random head: refused, as for a ViTModel."""
    _save_deit(tmp_path / "model", architecture)
    with pytest.raises(ModelError, match="no trained classification head") as e:
        create_model(str(tmp_path / "model"))
    assert architecture in str(e.value) and "classifier" in str(e.value), str(e.value)


def test_timm_distilled_deit_scores_the_mean_of_both_heads(tmp_path, monkeypatch):
    """timm's distilled DeiT, through the project's timm loader (a local folder), averages its two heads in eval."""
    import socket

    import timm
    from timm.models import save_for_hf

    def refuse(*a, **k):
        raise OSError("offline (test)")

    monkeypatch.setattr(socket, "create_connection", refuse)
    saved = timm.create_model("deit_tiny_distilled_patch16_224", pretrained=False, img_size=32, num_classes=5,
                              depth=1)
    _randomize(saved)
    save_for_hf(saved, str(tmp_path / "timm"), safe_serialization=True)
    m = create_model(f"timm:local-dir:{tmp_path / 'timm'}")
    assert m.family == "vit" and not m.module.training
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        got = m.logits(x)
        tokens = saved.forward_features(x)
        cls, dist = saved.head(tokens[:, 0]), saved.head_dist(tokens[:, 1])
    assert _heads_disagree(cls, dist)
    torch.testing.assert_close(got, (cls + dist) / 2)
    assert [p for p, _ in classifier_layers(m.module, 5)] == ["head", "head_dist"]
