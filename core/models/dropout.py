"""Dropout whose mask is drawn fast on the CPU.

PyTorch's CPU dropout draws its mask with `bernoulli_`, one Mersenne-Twister draw and a float compare per element,
serially: about 5 ns an element here, a quarter of the multi-layer CNN's training step in bf16 (measured with
torch.profiler; the upstream report is github.com/pytorch/pytorch/issues/138199, open). `Dropout` draws the mask
as 16-bit integers cut from PCG64's 64-bit words (numpy's generator, seeded for each call from torch's global
generator, so `torch.manual_seed` still fixes every mask and a run resumes the same): about 0.6 ns an element.

What it computes is dropout: each element is kept independently with probability q and scaled by 1 / q, so the
output's expectation is the input. p is rounded to a multiple of 1 / 65,536 (0.1 becomes 0.100006; 0.25 and 0.5
are exact) and the scale is 1 / q of the rounded p, so the expectation stays exact. Anywhere else (evaluation,
p = 0, in-place, a GPU, where dropout is one fused kernel) it is `nn.Dropout`. The masks differ from
`nn.Dropout`'s for the same seed; their distribution does not.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

_LEVELS = 1 << 16


def keep_mask(like: Tensor, p: float) -> tuple[Tensor, float]:
    """A bool tensor shaped and laid out like `like` (True = keep, each with probability q), and q."""
    drop = round(p * _LEVELS)
    n = like.numel()
    seed = int(torch.randint(0, 2 ** 62, (1,)))
    words = np.random.PCG64(seed).random_raw((n + 3) // 4)
    levels = torch.from_numpy(words.view(np.int16)[:n])  # int16, uniform over [-32768, 32767]
    if like.dim() == 4 and not like.is_contiguous() and like.is_contiguous(memory_format=torch.channels_last):
        n_, c, h, w = like.shape  # the same layout as the input, so the elementwise ops run at full speed
        levels = levels.view(n_, h, w, c).permute(0, 3, 1, 2)
    else:
        levels = levels.view(like.shape)
    return levels >= drop - _LEVELS // 2, (_LEVELS - drop) / _LEVELS


class Dropout(nn.Dropout):
    """`nn.Dropout` with a fast CPU mask (see the module docstring); a drop-in replacement, no state."""

    def forward(self, x: Tensor) -> Tensor:
        if (not self.training or self.inplace or x.device.type != "cpu" or not x.is_floating_point()
                or not 0 < round(self.p * _LEVELS) < _LEVELS):
            return super().forward(x)
        keep, q = keep_mask(x, self.p)
        return x * keep * (1.0 / q)
