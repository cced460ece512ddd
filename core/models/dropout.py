"""Dropout whose mask is drawn fast on the CPU.

PyTorch's CPU dropout draws its mask with `bernoulli_`, one Mersenne-Twister draw and a float compare per element,
serially: about 5 ns an element here, a quarter of the multi-layer CNN's training step in bf16 (measured with
torch.profiler; the upstream report is github.com/pytorch/pytorch/issues/138199, open). `Dropout` cuts the mask's
draws from PCG64's 64-bit words, one byte an element where p is a multiple of 1 / 256 and two bytes otherwise
(numpy's generator, seeded for each call from torch's global generator, so `torch.manual_seed` still fixes every
mask and a run resumes the same), and keeps the mask in the input's dtype for the backward.

What it computes is dropout: each element is kept independently with probability q and scaled by 1 / q, so the
output's expectation is the input. p is exact where it is a multiple of 1 / 256 (0.25, 0.5), else rounded to a
multiple of 1 / 65,536 (0.1 becomes 0.100006), and the scale is 1 / q of the p used, so the expectation stays
exact. Anywhere else (evaluation, p = 0 or 1, in place, a GPU, where dropout is one fused kernel) it is
`nn.Dropout`. The masks differ from
`nn.Dropout`'s for the same seed; their distribution does not.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn


def _levels(p: float) -> tuple[int, int]:
    """How many equally likely levels each element's draw has, and how many of them drop it: 256 levels where p is
    a multiple of 1/256 (0.25, 0.5: one byte an element, p exact), else 65,536 (p rounded to a multiple of
    1/65,536)."""
    levels = 256 if float(p * 256).is_integer() else 65536
    return levels, round(p * levels)


def keep_mask(like: Tensor, p: float) -> tuple[Tensor, float]:
    """A bool tensor shaped and laid out like `like` (True = keep, each independently with probability q), and q."""
    levels, drop = _levels(p)
    n = like.numel()
    per_word = 8 if levels == 256 else 4  # 8 bytes or 4 16-bit levels from each 64-bit PCG64 word
    seed = int(torch.randint(0, 2 ** 62, (1,)))
    words = np.random.PCG64(seed).random_raw(-(-n // per_word))
    draws = torch.from_numpy(words.view(np.int8 if levels == 256 else np.int16)[:n])  # uniform over the signed range
    if like.dim() == 4 and not like.is_contiguous() and like.is_contiguous(memory_format=torch.channels_last):
        n_, c, h, w = like.shape  # the same layout as the input, so the elementwise ops run at full speed
        draws = draws.view(n_, h, w, c).permute(0, 3, 1, 2)
    else:
        draws = draws.view(like.shape)
    return draws >= drop - levels // 2, (levels - drop) / levels


class _Masked(torch.autograd.Function):
    """x * mask * scale, the mask saved in x's dtype for the backward: the same values as `x * keep * scale` (the
    mask is 0 or 1, so one rounding, in the scalar product), with no bool-to-float cast in either pass."""

    @staticmethod
    def forward(ctx, x: Tensor, keep: Tensor, scale: float) -> Tensor:
        mask = keep.to(x.dtype)
        ctx.save_for_backward(mask)
        ctx.scale = scale
        return x.mul(mask).mul_(scale)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
        (mask,) = ctx.saved_tensors
        return grad.mul(mask).mul_(ctx.scale), None, None


class Dropout(nn.Dropout):
    """`nn.Dropout` with a fast CPU mask (see the module docstring); a drop-in replacement, no state."""

    def forward(self, x: Tensor) -> Tensor:
        levels, drop = _levels(self.p)
        if not self.training or self.inplace or x.device.type != "cpu" or not x.is_floating_point() \
                or not 0 < drop < levels:
            return super().forward(x)
        keep, q = keep_mask(x, self.p)
        return _Masked.apply(x, keep, 1.0 / q)
