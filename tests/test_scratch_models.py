"""The scratch architectures: they forward at every dataset shape, and their sizes match hand counts."""
from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from core.models.inception import build_googlenet
from core.models.scratch import build_scratch, scratch_specs
from core.models.spec import InputShape

IDS = [s.id for s in scratch_specs()]
SHAPES = [InputShape(1, 8, 10), InputShape(3, 32, 10), InputShape(3, 64, 10)]


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def logits(model_id: str, shape: InputShape, batch: int = 2) -> torch.Tensor:
    model = build_scratch(model_id, shape)
    with torch.no_grad():
        return model.logits(torch.randn(batch, shape.channels, shape.size, shape.size))


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s.channels}x{s.size}")
@pytest.mark.parametrize("model_id", IDS)
def test_forward_gives_finite_logits(model_id, shape):
    out = logits(model_id, shape)
    assert out.shape == (2, shape.num_classes)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("model_id", ["linear", "cnn-2layer", "resnet20", "leaves-cnn", "resnet18", "vit-small"])
def test_forward_at_224(model_id):
    assert logits(model_id, InputShape(3, 224, 7), batch=1).shape == (1, 7)


@pytest.mark.parametrize("model_id", IDS)
def test_flops_positive(model_id):
    assert build_scratch(model_id, InputShape(3, 32, 10)).flops_per_image() > 0


def test_linear_flops_by_hand():
    # torch's counter: a (1×K)·(K×N) matmul is 2·K·N; the bias add is not counted
    assert build_scratch("linear", InputShape(3, 64, 10)).flops_per_image() == 2 * (3 * 64 * 64) * 10


@pytest.mark.parametrize("model_id", IDS)
def test_registered_with_citation(model_id):
    model = build_scratch(model_id, InputShape(3, 64, 10))
    # convolutions and attention together (CCT) are "hybrid" (shared/DESIGN.md); every other model says what it is
    families = {"vit-small": "vit", "linear": "other", "cct-2": "hybrid", "cct-7": "hybrid", "vit-convstem": "hybrid",
                "vit-spt-lsa": "vit", "vit-lite-2": "vit"}
    assert model.family == families.get(model_id, "cnn")
    assert "Source:" in model.citation


# ----------------------------------------------------------------------------------------- exact parameter counts


def test_cct_params_match_the_paper():
    """Hassani et al. 2021, Table 1, at 32 px and 10 classes: CCT-2/3x2 0.28 M, CCT-7/3x1 3.76 M parameters.
    By hand for CCT-2: tokenizer 3*64*9 + 64*128*9 = 75,456; positions 64 tokens x 128 = 8,192; each of 2 layers
    2*256 (norms) + 128*384 (qkv, no bias) + 128*128+128 (proj) + 2*(128*128+128) (MLP, ratio 1) = 99,200; final
    norm 256, pooling 129, head 1,290: 283,723."""
    assert build_scratch("cct-2", InputShape(3, 32, 10)).params == 283_723
    assert round(build_scratch("cct-7", InputShape(3, 32, 10)).params / 1e6, 2) == 3.76


def test_vit_lite_is_cct_2_with_patches_and_a_cls_token():
    """The reference code's vit_2_4_32 at 32 px, 10 classes, by hand: patchify conv 3*4*4*128 + 128 = 6,272; CLS
    128; positions (64 + 1) x 128 = 8,320; CCT-2's two layers 2 x 99,200; final norm 256; head 1,290: 214,666.
    Its encoder is CCT-2's, weight for weight in shape; only the tokenizer and the pooling differ."""
    lite = build_scratch("vit-lite-2", InputShape(3, 32, 10))
    assert lite.params == 214_666
    cct = build_scratch("cct-2", InputShape(3, 32, 10))

    def encoder(model):
        return {k: v.shape for k, v in model.module.state_dict().items() if k.startswith(("blocks.", "norm.", "fc."))}

    assert encoder(lite) == encoder(cct)
    rest = {k for k in lite.module.state_dict() if k not in encoder(lite)}
    assert rest == {"patch_embed.weight", "patch_embed.bias", "cls_token", "positional_emb"}


def test_baseline_cnn_params():
    # Tiny ImageNet study Table 1: 9×9 valid conv 64 → 56, pool → 28
    conv, fc, out = 9 * 9 * 3 * 16 + 16, (28 * 28 * 16) * 1024 + 1024, 1024 * 200 + 200
    assert build_scratch("baseline-cnn", InputShape(3, 64, 200)).params == conv + fc + out


def test_alexnet_reduced_params():
    convs = (7 * 7 * 3 * 64 + 64) + (5 * 5 * 64 * 64 + 64) + (5 * 5 * 64 * 128 + 128) \
        + (3 * 3 * 128 * 256 + 256) + (3 * 3 * 256 * 256 + 256)
    bns = 2 * 64 + 2 * 128
    fcs = (256 * 7 * 7 * 1024 + 1024) + (1024 * 1024 + 1024) + (1024 * 200 + 200)
    assert convs + bns + fcs == 15_303_176  # the study's "15 million"
    assert build_scratch("alexnet-reduced", InputShape(3, 56, 200)).params == 15_303_176


def test_resnet20_params():
    # He et al. 2016 §4.2, option A (parameter-free shortcuts); 272,474 would be option B (1×1 projections)
    stem = 3 * 3 * 3 * 16 + 2 * 16
    stage1 = 3 * (2 * 9 * 16 * 16 + 2 * 2 * 16)
    stage2 = (9 * 16 * 32 + 9 * 32 * 32 + 2 * 2 * 32) + 2 * (2 * 9 * 32 * 32 + 2 * 2 * 32)
    stage3 = (9 * 32 * 64 + 9 * 64 * 64 + 2 * 2 * 64) + 2 * (2 * 9 * 64 * 64 + 2 * 2 * 64)
    fc = 64 * 10 + 10
    assert stem + stage1 + stage2 + stage3 + fc == 269_722
    assert build_scratch("resnet20", InputShape(3, 32, 10)).params == 269_722


def test_vgg16_params_and_torchvision_features():
    model = build_scratch("vgg16", InputShape(3, 224, 176)).module
    assert n_params(model.features) == 14_714_688  # the slides' (and leaves study's) figure
    assert n_params(model) == 14_714_688 + (512 * 4096 + 4096) + (4096 * 176 + 176)
    reference = torchvision.models.vgg16(weights=None).features.state_dict()
    ours = model.features.state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in reference.items()}


def test_resnet18_params():
    assert build_scratch("resnet18", InputShape(3, 224, 1000)).params == 11_689_512
    assert build_scratch("resnet18", InputShape(3, 64, 200)).params == 11_689_512 - 513 * 1000 + 513 * 200


# GoogLeNet Table 1 path widths (#1×1, #3×3, #5×5, pool proj) of the nine Inception modules
INCEPTION_PATHS = [(64, 128, 32, 32), (128, 192, 96, 64), (192, 208, 48, 64), (160, 224, 64, 64),
                   (128, 256, 64, 64), (112, 288, 64, 64), (256, 320, 128, 128), (256, 320, 128, 128),
                   (384, 384, 128, 128)]


def test_googlenet_without_se_is_torchvision():
    shape = InputShape(3, 224, 1000)
    plain = build_googlenet(shape, se_reduction=None)
    assert n_params(plain) == 13_004_888  # the ImageNet study's "SE-GoogLeNet" figure
    reference = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False)
    plain.load_state_dict(reference.state_dict())  # strict: same names and shapes


def test_se_googlenet_params():
    r = 16
    se = sum(2 * c * (c // r) + c // r + c for paths in INCEPTION_PATHS for c in paths)
    assert se == 153_639
    assert build_scratch("se-googlenet", InputShape(3, 224, 1000)).params == 13_004_888 + se


def test_vit_small_params():
    c, size, n, dim, depth = 3, 64, 10, 192, 6
    p, tokens = size // 8, (size // (size // 8)) ** 2
    norms, qkv, proj = 4 * dim, 3 * dim * dim + 3 * dim, dim * dim + dim
    mlp = (dim * 4 * dim + 4 * dim) + (4 * dim * dim + dim)
    block = norms + qkv + proj + mlp
    expected = (c * p * p * dim + dim) + dim + (tokens + 1) * dim + depth * block + 2 * dim + (dim * n + n)
    assert build_scratch("vit-small", InputShape(c, size, n)).params == expected


# ------------------------------------------------------------------------------------------------ behaviour


@pytest.mark.parametrize("model_id", ["googlenet-reduced", "se-googlenet"])
def test_googlenets_return_aux_logits_in_training(model_id):
    module = build_scratch(model_id, InputShape(3, 32, 10)).module
    x = torch.randn(2, 3, 32, 32)
    module.train()
    out = module(x)
    assert isinstance(out, tuple) and len(out) == 3
    assert [o.shape for o in out] == [(2, 10)] * 3
    assert out.logits is out[0]
    module.eval()
    with torch.no_grad():
        assert module(x).shape == (2, 10)


def test_leaves_cnn_matches_table1_at_224():
    module = build_scratch("leaves-cnn", InputShape(3, 224, 176)).module
    shapes = []
    hooks = [m.register_forward_hook(lambda m, i, o: shapes.append(list(o.shape[1:])))
             for m in module.features if isinstance(m, (nn.Conv2d, nn.MaxPool2d))]
    with torch.no_grad():
        out = module(torch.randn(2, 3, 224, 224))
    for h in hooks:
        h.remove()
    assert shapes == [[16, 109, 109], [16, 54, 54], [64, 25, 25], [64, 12, 12], [128, 10, 10], [256, 8, 8]]
    assert out.shape == (2, 176)


def test_vit_keeps_attention_when_asked():
    module = build_scratch("vit-small", InputShape(3, 32, 10)).module
    attn = module.blocks[0].attn
    assert module.patch_embed.proj.kernel_size == (4, 4) and attn.last_attention is None
    attn.return_attention = True
    with torch.no_grad():
        module(torch.randn(2, 3, 32, 32))
    weights = attn.last_attention
    assert weights.shape == (2, 3, 65, 65)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 3, 65))


@pytest.mark.parametrize("model_id", IDS)
def test_trains_on_8px_digits(model_id):
    module = build_scratch(model_id, InputShape(1, 8, 10)).module.train()
    out = module(torch.randn(2, 1, 8, 8))
    outs = out if isinstance(out, tuple) else [out]
    loss = sum(nn.functional.cross_entropy(o, torch.tensor([0, 1])) for o in outs)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in module.parameters())
