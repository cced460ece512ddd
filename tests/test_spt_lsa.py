"""vit-spt-lsa (Lee, Lee & Song 2021): the shifted patch tokenizer moves pixels by half a patch, LSA masks the
diagonal and learns its temperature, the model builds at the lab's sizes, and the other transformers are unchanged."""
from __future__ import annotations

from functools import cache

import pytest
import torch
from torch import nn

from core.models.attention import Attention
from core.models.scratch import build_scratch
from core.models.spec import InputShape
from core.models.spt_lsa import ShiftedPatchTokenizer, shift_diagonally, to_patches
from core.models.wrapper import LoadedModel


@cache
def _model(side: int) -> LoadedModel:
    """Built once per size (the trunc-normal init takes about a second)."""
    return build_scratch("vit-spt-lsa", InputShape(3, side, 10))


def _one_pixel(row: int, col: int, side: int = 8) -> torch.Tensor:
    x = torch.zeros(1, 1, side, side)
    x[0, 0, row, col] = 1.0
    return x


def _where(group: torch.Tensor) -> list[tuple[int, int]]:
    return [tuple(rc) for rc in group.nonzero().tolist()]


def test_shift_moves_a_pixel_by_half_a_patch_in_each_group():
    shifted = shift_diagonally(_one_pixel(3, 4), 2)  # a 4-px patch: shifts of 2
    assert shifted.shape == (1, 5, 8, 8)
    groups = [_where(shifted[0, g]) for g in range(5)]
    # the image; then the left-up, right-up, left-down, right-down crops of the padded image (the reference's order)
    assert groups == [[(3, 4)], [(5, 6)], [(5, 2)], [(1, 6)], [(1, 2)]]


def test_shift_fills_with_zeros_and_does_not_wrap():
    shifted = shift_diagonally(_one_pixel(0, 0), 1)
    assert [len(_where(shifted[0, g])) for g in range(5)] == [1, 1, 0, 0, 0]  # only right-and-down keeps it


def test_patches_are_row_major_tokens_flattened_row_column_channel():
    x = torch.arange(2 * 8 * 8, dtype=torch.float32).reshape(1, 2, 8, 8)
    patches = to_patches(x, 4)
    assert patches.shape == (1, 4, 4 * 4 * 2)
    # token 1 is the top-right patch; its feature (row 1, column 2, channel 1) is at (1 * 4 + 2) * 2 + 1
    assert patches[0, 1, (1 * 4 + 2) * 2 + 1] == x[0, 1, 1, 4 + 2]


@pytest.mark.parametrize("side,patch,shift,tokens", [(32, 4, 2, 64), (34, 4, 2, 64), (8, 1, 1, 64)])
def test_tokenizer_shapes(side, patch, shift, tokens):
    spt = ShiftedPatchTokenizer(3, 16, patch)
    assert spt.shift == shift and spt.norm.normalized_shape == (5 * 3 * patch * patch,)
    assert spt(torch.randn(2, 3, side, side)).shape == (2, tokens, 16)


def test_lsa_masks_the_diagonal_and_keeps_rows_normalised():
    torch.manual_seed(0)
    attn = Attention(8, 2, locality=True)
    attn.return_attention = True
    attn(torch.randn(2, 5, 8))
    weights = attn.last_attention
    assert weights.shape == (2, 2, 5, 5)
    assert (torch.diagonal(weights, dim1=-2, dim2=-1) == 0).all()
    assert torch.allclose(weights.sum(-1), torch.ones(2, 2, 5))


def test_lsa_temperature_is_a_learned_parameter_per_head():
    attn = Attention(8, 2, locality=True)
    assert isinstance(attn.scale, nn.Parameter) and attn.scale.shape == (2, 1, 1)
    assert torch.allclose(attn.scale, torch.full((2, 1, 1), 4 ** -0.5))  # 1/sqrt(head dim) at the start
    attn(torch.randn(2, 5, 8)).square().sum().backward()
    assert attn.scale.grad is not None and attn.scale.grad.abs().sum() > 0
    assert not isinstance(Attention(8, 2).scale, nn.Parameter)  # plain attention: a constant, no new weight


@pytest.mark.parametrize("side,patch", [(32, 4), (64, 8)])  # the paper's patches on CIFAR and Tiny-ImageNet
def test_model_builds_and_uses_lsa(side, patch):
    module = _model(side).module.eval()
    assert module.patch_embed.patch == patch and len(module.blocks) == 9
    attn = module.blocks[-1].attn
    attn.return_attention = True
    with torch.no_grad():
        out = module(torch.randn(2, 3, side, side))
    attn.return_attention = False
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    assert (torch.diagonal(attn.last_attention, dim1=-2, dim2=-1) == 0).all()


def test_params_by_hand_and_the_other_transformers_unchanged():
    dim, hidden, tokens, heads, depth, features = 192, 384, 64, 3, 9, 5 * 3 * 4 * 4
    block = 4 * dim + (3 * dim * dim + 3 * dim) + (dim * dim + dim) + heads + (dim * hidden + hidden) \
        + (hidden * dim + dim)
    spt = 2 * features + features * dim + dim
    expected = spt + dim + (tokens + 1) * dim + depth * block + 2 * dim + (dim * 10 + 10)
    assert _model(32).params == expected == 2_734_981
    # counted before LSA was added to Attention: the option must not change the existing models
    assert build_scratch("vit-small", InputShape(3, 32, 10)).params == 2_693_578
    assert build_scratch("cct-2", InputShape(3, 32, 10)).params == 283_723
