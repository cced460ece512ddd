"""core.models.dropout.Dropout: dropout with a fast CPU mask. What it must keep of nn.Dropout: each element kept
independently with probability q and scaled by 1 / q, the gradient through the same mask, seeds fixing the masks,
and nn.Dropout's behaviour everywhere the fast path does not apply."""
import math

import pytest
import torch
from torch import nn

from core.models.dropout import Dropout
from core.models.registry import create_model
from core.models.spec import SCRATCH


def _five_sigma(q: float, n: int) -> float:
    return 5 * math.sqrt(q * (1 - q) / n)


@pytest.mark.parametrize("p", [0.25, 0.5, 0.7])
def test_each_element_is_kept_with_probability_1_minus_p_and_scaled_by_its_inverse(p):
    x = torch.ones(1000, 1000)
    out = Dropout(p).train()(x)
    kept = out != 0
    q = (65536 - round(p * 65536)) / 65536  # 0.75 and 0.5 exactly; 0.7 drops 45,875 / 65,536: q = 0.3000031
    assert abs(q - (1 - p)) < 1 / 65536
    assert abs(kept.float().mean().item() - q) < _five_sigma(q, x.numel())
    assert torch.unique(out[kept]).tolist() == pytest.approx([1 / q], rel=1e-7)
    # the kept values' scale is 1 / q of the p actually used, so the mean over many draws is the input: here the
    # sample mean of a million elements, within five standard errors
    assert abs(out.mean().item() - 1) < 5 * math.sqrt(p / q / x.numel())


def test_p_is_rounded_to_a_multiple_of_1_over_65536_and_the_scale_follows_it():
    out = Dropout(0.1).train()(torch.ones(200, 200))
    q = (65536 - 6554) / 65536  # round(0.1 * 65536) = 6554
    assert torch.unique(out[out != 0]).item() == pytest.approx(1 / q, rel=1e-7)
    # a multiple of 1/256 is exact: the scale is 1 / 0.75 to fp32's precision
    assert torch.unique(Dropout(0.25).train()(torch.ones(200, 200))).tolist() == [0.0, pytest.approx(4 / 3, rel=1e-7)]


@pytest.mark.parametrize("p", [0.5, 0.1])  # one byte an element (8 from a 64-bit word), and two bytes (4 a word)
def test_neighbouring_decisions_are_uncorrelated(p):
    # the mask is cut from 64-bit words several elements at a time: elements of one word must be independent too
    q = 1 - p
    kept = (Dropout(p).train()(torch.ones(8 * 125_000)) != 0).float() - q
    for lag in range(1, 9):
        corr = (kept[:-lag] * kept[lag:]).mean().item() / (q * (1 - q))
        assert abs(corr) < 5 / math.sqrt(kept.numel()), lag


def test_the_gradient_goes_through_the_same_mask_and_scale():
    x = torch.randn(64, 32, 8, 8, requires_grad=True)
    g = torch.randn(64, 32, 8, 8)
    out = Dropout(0.25).train()(x)
    out.backward(g)
    keep = out != 0  # randn is never exactly 0
    assert torch.equal(x.grad, g * keep * (1 / 0.75))
    assert torch.equal(out, x.detach() * keep * (1 / 0.75))


def test_a_bf16_value_is_rounded_once():
    # nn.Dropout on CPU scales a bf16 mask by 1 / q in bf16 (1 / 0.75 becomes 1.3359) and rounds again in the
    # product; here the product is computed in fp32 and rounded to bf16 once
    x = torch.randn(100_000).bfloat16()
    out = Dropout(0.25).train()(x)
    keep = out != 0
    assert torch.equal(out[keep], (x[keep].float() * (1 / 0.75)).bfloat16())


def test_the_global_seed_fixes_every_mask_and_each_call_draws_a_new_one():
    drop, x = Dropout(0.5).train(), torch.ones(10_000)
    torch.manual_seed(7)
    a, b = drop(x), drop(x)
    torch.manual_seed(7)
    assert torch.equal(drop(x), a)
    assert not torch.equal(a, b)


def test_a_channels_last_input_stays_channels_last():
    x = torch.randn(8, 16, 4, 4).contiguous(memory_format=torch.channels_last)
    out = Dropout(0.5).train()(x)
    assert out.is_contiguous(memory_format=torch.channels_last)
    keep = out != 0
    assert torch.equal(out, x * keep * 2.0)


def test_everywhere_else_it_is_nn_dropout():
    x = torch.randn(1000)
    assert Dropout(0.5).eval()(x) is x
    assert torch.equal(Dropout(0.0).train()(x), x)
    assert torch.equal(Dropout(1.0).train()(x), torch.zeros_like(x))
    y = x.clone()
    assert Dropout(0.5, inplace=True).train()(y) is y  # nn.Dropout's in-place path
    meta = Dropout(0.5).train()(torch.ones(10, device="meta"))  # not the CPU: nn.Dropout's (fused on a GPU)
    assert meta.device.type == "meta" and meta.shape == (10,)


def test_the_lab_s_models_use_it():
    with_dropout = set()
    for name in SCRATCH:
        drops = [m for m in create_model(name, size=32).module.modules() if isinstance(m, nn.Dropout)]
        assert all(type(m) is Dropout for m in drops), name
        with_dropout |= {name} if any(m.p > 0 for m in drops) else set()
    assert {"cnn-multilayer", "cct-2", "alexnet-reduced", "vgg16"} <= with_dropout
