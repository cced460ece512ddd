"""Attention maps and rollout for timm's VisionTransformer / DeiT and torchvision's ViT (tiny, random weights,
offline): the captured weights equal attention computed by hand from each block's weights, the logits are the
model's own, the model is left as it was, and every refusal says the real reason."""
import numpy as np
import pytest
import timm
import torch
from torch import nn
from torchvision.models.vision_transformer import VisionTransformer

from core.data.transforms import Preprocess
from core.explain import ExplainError, attention_distances, attention_weights, explain
from core.explain.base import model_input
from core.models.scratch import build_scratch
from core.models.spec import InputShape
from core.models.wrapper import LabelSpace, LoadedModel

RNG = np.random.default_rng(0)
IMAGE = (RNG.random((40, 48, 3)) * 255).astype(np.uint8)
CONTRADICTION = "needs a vision transformer with global attention"
HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called",
              "_forward_pre_hooks_with_kwargs", "_backward_hooks", "_backward_pre_hooks")
TINY = {"pretrained": False, "img_size": 32, "patch_size": 8, "depth": 2, "embed_dim": 16, "num_heads": 2,
        "num_classes": 5}


def _wrap(module: nn.Module, source: str, model_id: str, family: str = "vit") -> LoadedModel:
    pre = Preprocess(size=(32, 32), mean=(0.5,) * 3, std=(0.5,) * 3)
    return LoadedModel(id=model_id, name=model_id, family=family, source=source, module=module, preprocess=pre,
                       labels=LabelSpace([f"c{i}" for i in range(5)]))


def _timm(arch: str, **kw) -> LoadedModel:
    torch.manual_seed(0)
    return _wrap(timm.create_model(arch, **{**TINY, **kw}), "timm", f"timm:{arch}")


def _torchvision() -> LoadedModel:
    torch.manual_seed(0)
    vit = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32,
                            num_classes=5)
    return _wrap(vit, "torchvision", "torchvision:vit_b_16")


def _state(module: nn.Module) -> dict:
    """Hooks, fused-attention flags and the MHA fast-path switch: what capturing attention must put back."""
    return {"hooks": [(n, d, tuple(getattr(m, d, {}) or {})) for n, m in module.named_modules() for d in HOOK_DICTS],
            "fused": [(n, m.fused_attn) for n, m in module.named_modules() if hasattr(m, "fused_attn")],
            "fastpath": torch.backends.mha.get_fastpath_enabled(),
            "training": [m.training for m in module.modules()]}


def _softmax_by_hand(q: torch.Tensor, k: torch.Tensor) -> np.ndarray:
    """(heads, T, d) queries and keys -> (heads, T, T) attention probabilities, in float64."""
    q, k = q.double(), k.double()
    return torch.softmax(q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5, dim=-1).numpy()


def _inputs(model: LoadedModel, attn_modules: list[nn.Module], x: torch.Tensor) -> list[torch.Tensor]:
    """Each attention module's (normalised) input on a plain forward pass."""
    seen = []
    handles = [m.register_forward_pre_hook(lambda m, args: seen.append(args[0][0].detach())) for m in attn_modules]
    try:
        with torch.no_grad():
            model.logits(x)
    finally:
        for h in handles:
            h.remove()
    return seen


@torch.no_grad()
def _timm_by_hand(model: LoadedModel, x: torch.Tensor) -> np.ndarray:
    blocks = [b.attn for b in model.module.blocks]
    maps = []
    for attn, t in zip(blocks, _inputs(model, blocks, x)):
        q, k, _ = attn.qkv(t).reshape(t.shape[0], 3, attn.num_heads, attn.head_dim).permute(1, 2, 0, 3)
        maps.append(_softmax_by_hand(q, k))
    return np.stack(maps)


@torch.no_grad()
def _torchvision_by_hand(model: LoadedModel, x: torch.Tensor) -> np.ndarray:
    mhas = [layer.self_attention for layer in model.module.encoder.layers]
    maps = []
    for mha, t in zip(mhas, _inputs(model, mhas, x)):
        qkv = nn.functional.linear(t, mha.in_proj_weight, mha.in_proj_bias)  # (T, 3 * dim): q | k | v
        q, k, _ = qkv.reshape(t.shape[0], 3, mha.num_heads, mha.head_dim).permute(1, 2, 0, 3)
        maps.append(_softmax_by_hand(q, k))
    return np.stack(maps)


def _rollout_by_hand(attn: np.ndarray) -> np.ndarray:
    joint = np.eye(attn.shape[-1])
    for heads in attn:
        a = heads.mean(0) + np.eye(attn.shape[-1])
        joint = (a / a.sum(1, keepdims=True)) @ joint
    return joint


def _check_backend(model: LoadedModel, by_hand, prefix: int) -> None:
    x, _ = model_input(model, IMAGE)
    before = _state(model.module)
    logits, attn = attention_weights(model, x)
    assert _state(model.module) == before
    with torch.no_grad():
        assert torch.equal(logits, model.logits(x))  # the model's own logits, bit for bit
    assert attn.dtype == np.float64 and attn.shape == (2, 2, 16 + prefix, 16 + prefix)
    np.testing.assert_allclose(attn.sum(-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(attn, by_hand(model, x), atol=1e-5)

    e = explain(model, IMAGE, "attention")
    assert e.data["attention"].shape == (2, 2, 4, 4) and len(e.tiles) == 4 and e.heatmap.shape == (32, 32)
    np.testing.assert_allclose(e.data["attention"], attn[:, :, 0, prefix:].reshape(2, 2, 4, 4), atol=1e-6)
    r = explain(model, IMAGE, "rollout")
    cls = _rollout_by_hand(attn)[0, prefix:].reshape(4, 4)
    np.testing.assert_allclose(r.data["rollout"], cls / cls.max(), atol=1e-6)
    assert [(d["layer"], d["head"]) for d in attention_distances(model, IMAGE)] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert _state(model.module) == before


def test_timm_vit_attention_and_rollout_equal_attention_by_hand():
    model = _timm("vit_tiny_patch16_224")
    assert any(getattr(m, "fused_attn", False) for m in model.module.modules())  # the SDPA path is the default
    _check_backend(model, _timm_by_hand, prefix=1)


def test_timm_distilled_deit_grid_drops_cls_and_distillation_tokens():
    model = _timm("deit_tiny_distilled_patch16_224")
    _check_backend(model, _timm_by_hand, prefix=2)


def test_torchvision_vit_attention_and_rollout_equal_attention_by_hand():
    _check_backend(_torchvision(), _torchvision_by_hand, prefix=1)


@pytest.mark.parametrize("model", [
    pytest.param(lambda: build_scratch("resnet20", InputShape(3, 32, 5)), id="scratch-resnet20"),
    pytest.param(lambda: _wrap(timm.create_model("resnet10t", pretrained=False, num_classes=5), "timm",
                               "timm:resnet10t", "cnn"), id="timm-resnet10t"),
])
def test_cnn_refusal_says_it_has_no_attention(model):
    model = model()
    for method in ("attention", "rollout"):
        with pytest.raises(ExplainError) as err:
            explain(model, IMAGE, method)
        assert "convolutional network" in str(err.value) and "no attention" in str(err.value)
        assert CONTRADICTION not in str(err.value)


def test_timm_vit_without_cls_token_refusal_says_it_pools():
    model = _timm("vit_tiny_patch16_224", class_token=False, global_pool="avg")
    with pytest.raises(ExplainError, match="no CLS token") as err:
        explain(model, IMAGE, "rollout")
    assert CONTRADICTION not in str(err.value)


def test_timm_swin_refusal_says_it_attends_in_windows():
    torch.manual_seed(0)
    swin = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, img_size=32, patch_size=4,
                             window_size=4, embed_dim=8, depths=(1, 1), num_heads=(1, 2), num_classes=5)
    model = _wrap(swin, "timm", "timm:swin_tiny_patch4_window7_224")
    with pytest.raises(ExplainError, match="windows") as err:
        explain(model, IMAGE, "attention")
    assert CONTRADICTION not in str(err.value)


def test_torchvision_vit_gradcam_and_feature_maps_drop_its_class_token():
    # torchvision names its CLS token `class_token`: counted, its 16 patch tokens make a 4 x 4 grid (17 tokens
    # fit none, so Grad-CAM and feature maps were refused)
    model = _torchvision()
    with torch.no_grad():  # torchvision zeroes the head: every class score would be constant, every gradient 0
        model.module.heads.head.weight.normal_(0, 0.3)
    cam = explain(model, IMAGE, "gradcam")
    assert cam.layer == "encoder.layers.encoder_layer_1.ln_1" and cam.data["cam"].shape == (4, 4)
    maps = explain(model, IMAGE, "feature-maps", layer="encoder.layers.encoder_layer_0")
    assert len(maps.tiles) == 16 and maps.tiles[0].shape == (4, 4)  # 16 channels on the 4 x 4 patch grid
