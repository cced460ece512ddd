"""Compact Convolutional Transformers (Hassani et al. 2021, "Escaping the Big Data Paradigm with Compact
Transformers"): a convolutional tokenizer, a small pre-norm transformer, and sequence pooling instead of a
CLS token.

Written from the paper and its reference code (github.com/SHI-Labs/Compact-Transformers, src/cct.py and
src/utils/{tokenizer,transformers}.py), with the same layer shapes so the parameter counts match the paper's
table (CCT-2/3x2 0.28 M, CCT-7/3x1 3.76 M at 32 px, 10 classes; tested):
- tokenizer: n x [k x k conv (stride 1, padding k // 2, no bias; 64 channels between layers) -> ReLU ->
  3 x 3 max-pool, stride 2, padding 1]; Kaiming-normal conv weights;
- encoder layer: x + attn(LN(x)), then the reference code's LN on the stream, then + MLP (GELU); qkv without
  bias; dropout 0, attention dropout 0.1, stochastic depth rising to 0.1 over the layers;
- sequence pooling: softmax(Linear(d, 1)) over the tokens weights their average; then Linear to the classes;
- Linear weights truncated normal (std 0.02), zero biases; LayerNorm 1 / 0; learned positions, truncated
  normal (std 0.2).
ViT-Lite (the reference code's src/vit.py, the paper's plain-ViT baseline) is the same encoder behind a patchify
tokenizer (one p x p conv, stride p, with bias, no activation or pool) and a CLS token in place of sequence
pooling: against CCT, only the tokenizer and the pooling differ (`ViTLite`).
Adapted: the paper's 3x2 and 3x1 tokenizers are defined for 32-px images; on larger images one more stride-2
max-pool is added at a time until the token grid is at most 16 x 16 (64 px: 16 x 16 for CCT-2/3x2,
16 x 16 after one more pool for CCT-7/3x1), so attention stays affordable at every size.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torchvision.ops import StochasticDepth

from core.models.attention import Attention, init_transformer_weights

MAX_GRID = 16


class Tokenizer(nn.Module):
    """Conv -> ReLU -> max-pool, `layers` times; the feature map's positions become the tokens."""

    def __init__(self, channels: int, dim: int, size: int, *, layers: int, kernel: int = 3, planes: int = 64):
        super().__init__()
        widths = [channels] + [planes] * (layers - 1) + [dim]
        blocks, side = [], size
        for cin, cout in zip(widths, widths[1:]):
            blocks += [nn.Conv2d(cin, cout, kernel, stride=1, padding=kernel // 2, bias=False), nn.ReLU(inplace=True),
                       nn.MaxPool2d(3, stride=2, padding=1)]
            side = (side - 1) // 2 + 1
        while side > MAX_GRID:  # adapted: larger images get more pooling (see the module docstring)
            blocks.append(nn.MaxPool2d(3, stride=2, padding=1))
            side = (side - 1) // 2 + 1
        self.conv_layers = nn.Sequential(*blocks)
        self.grid = side
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv_layers(x).flatten(2).transpose(1, 2)


class EncoderLayer(nn.Module):
    """x + drop_path(attn(LN(x))), LN, then x + drop_path(MLP(x)): the reference code's order."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, drop_path: float):
        super().__init__()
        self.pre_norm = nn.LayerNorm(dim)
        self.self_attn = Attention(dim, heads, qkv_bias=False, attention_dropout=0.1)
        self.norm1 = nn.LayerNorm(dim)
        self.linear1, self.linear2 = nn.Linear(dim, int(dim * mlp_ratio)), nn.Linear(int(dim * mlp_ratio), dim)
        self.drop_path = StochasticDepth(drop_path, "row")  # a whole sample's branch dropped, in training only

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm1(x + self.drop_path(self.self_attn(self.pre_norm(x))))
        return x + self.drop_path(self.linear2(F.gelu(self.linear1(x))))


def encoder(dim: int, heads: int, mlp_ratio: float, layers: int, stochastic_depth: float) -> nn.Sequential:
    """`layers` EncoderLayers, their stochastic depth rising linearly from 0 to `stochastic_depth` (CCT's and
    ViT-Lite's)."""
    rates = torch.linspace(0, stochastic_depth, layers).tolist()
    return nn.Sequential(*(EncoderLayer(dim, heads, mlp_ratio, r) for r in rates))


class CCT(nn.Module):
    """Convolutional tokenizer -> learned positions -> encoder layers -> LayerNorm -> sequence pooling -> Linear."""

    head_names = ("fc",)  # the layer that produces the class scores (core.models.heads)

    def __init__(self, channels: int, size: int, num_classes: int, *, layers: int, heads: int, mlp_ratio: float,
                 dim: int, conv_layers: int, kernel: int = 3, stochastic_depth: float = 0.1):
        super().__init__()
        self.tokenizer = Tokenizer(channels, dim, size, layers=conv_layers, kernel=kernel)
        self.positional_emb = nn.Parameter(torch.zeros(1, self.tokenizer.grid ** 2, dim))
        self.blocks = encoder(dim, heads, mlp_ratio, layers, stochastic_depth)
        self.norm = nn.LayerNorm(dim)
        self.attention_pool = nn.Linear(dim, 1)
        self.fc = nn.Linear(dim, num_classes)
        init_transformer_weights(self)
        nn.init.trunc_normal_(self.positional_emb, std=0.2)

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm(self.blocks(self.tokenizer(x) + self.positional_emb))
        pooled = (F.softmax(self.attention_pool(x), dim=1).transpose(1, 2) @ x).squeeze(1)
        return self.fc(pooled)


class ViTLite(nn.Module):
    """Patchify conv -> CLS token + learned positions -> CCT's encoder layers -> LayerNorm -> the CLS token ->
    Linear: the reference code's ViTLite (src/vit.py), whose `TransformerClassifier` is CCT's with `seq_pool`
    off. The patch side is `size // grid` (4 px at 32 px, the reference's `vit_2_4_32`)."""

    head_names = ("fc",)  # the layer that produces the class scores (core.models.heads)

    def __init__(self, channels: int, size: int, num_classes: int, *, layers: int, heads: int, mlp_ratio: float,
                 dim: int, grid: int = 8, stochastic_depth: float = 0.1):
        super().__init__()
        patch = max(1, size // grid)
        self.patch_embed = nn.Conv2d(channels, dim, patch, stride=patch)
        tokens = (size // patch) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.positional_emb = nn.Parameter(torch.zeros(1, tokens + 1, dim))
        self.blocks = encoder(dim, heads, mlp_ratio, layers, stochastic_depth)
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, num_classes)
        init_transformer_weights(self)
        nn.init.kaiming_normal_(self.patch_embed.weight)  # the reference's Tokenizer init; its CLS token stays 0
        nn.init.trunc_normal_(self.positional_emb, std=0.2)

    def forward(self, x: Tensor) -> Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.positional_emb
        return self.fc(self.norm(self.blocks(x))[:, 0])
