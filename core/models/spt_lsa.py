"""Shifted Patch Tokenization (Lee, Lee & Song 2021, "Vision Transformer for Small-Size Datasets", arXiv
2112.13492), the tokenizer of the `vit-spt-lsa` model; its other half, Locality Self-Attention, is
`Attention(locality=True)` in core/models/attention.py.

Written from the paper and its reference code (github.com/aanna0701/SPT_LSA_ViT, models/SPT.py):
- the image and four copies of it shifted diagonally by half a patch, zero filled, are stacked on the channels
  (5·C): pad by the shift on every side, then crop the image-sized windows at the padded image's left-up, right-up,
  left-down and right-down corners, in that order (the reference's x_lu, x_ru, x_lb, x_rb);
- the stack is cut into non-overlapping p×p patches, each flattened in the reference's (row, column, channel)
  order, then LayerNorm and a Linear to the token width.
So each token also sees half a patch of its diagonal neighbours' pixels. Adapted: at a 1-px patch (8-px images
on the lab's 8×8 grid) half a patch rounds to 0 and the reference code fails (it slices `[:-0]`); the shift is
then 1 px, so the tokens still see their neighbours. An image side that is not a multiple of the patch loses its
last rows and columns, as the patchify conv of `vit-small` does.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def shift_diagonally(x: Tensor, shift: int) -> Tensor:
    """`x` (N, C, H, W) and its crops at the four corners of `x` zero-padded by `shift`: (N, 5·C, H, W).

    Channel groups, in order: `x`; the left-up crop (content moved `shift` px right and down); right-up (left and
    down); left-down (right and up); right-down (left and up)."""
    h, w = x.shape[-2:]
    padded, far = F.pad(x, (shift,) * 4), 2 * shift
    crops = [padded[..., top:top + h, left:left + w] for top, left in ((0, 0), (0, far), (far, 0), (far, far))]
    return torch.cat([x, *crops], dim=1)


def to_patches(x: Tensor, patch: int) -> Tensor:
    """(N, C, H, W) → (N, tokens, patch·patch·C): non-overlapping patches in row-major order, each flattened
    row, column, channel (einops `b c (h p1) (w p2) -> b (h w) (p1 p2 c)`); a remainder under a patch is cut."""
    n, c, h, w = x.shape
    gh, gw = h // patch, w // patch
    x = x[..., :gh * patch, :gw * patch].reshape(n, c, gh, patch, gw, patch)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(n, gh * gw, patch * patch * c)


class ShiftedPatchTokenizer(nn.Module):
    """SPT: `shift_diagonally` by half a patch (at least 1 px), `to_patches`, LayerNorm, Linear to `dim`."""

    def __init__(self, channels: int, dim: int, patch: int):
        super().__init__()
        self.patch, self.shift = patch, max(1, patch // 2)
        features = 5 * channels * patch * patch
        self.norm = nn.LayerNorm(features)
        self.proj = nn.Linear(features, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.norm(to_patches(shift_diagonally(x, self.shift), self.patch)))
