"""Multi-head self-attention as the lab's transformers use it (vit-small, vit-convstem, CCT, vit-spt-lsa)."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from core.models.dropout import Dropout


class Attention(nn.Module):
    """Multi-head self-attention: one qkv Linear, softmax(q kᵀ / √d) v per head, output projection.

    `qkv_bias=False` and `attention_dropout` are CCT's (its reference code). `locality=True` is Locality
    Self-Attention (Lee et al. 2021, as their code github.com/aanna0701/SPT_LSA_ViT models/vit.py does it): the
    scale 1/√d becomes a learnable parameter per head (`scale`, shape (heads, 1, 1), starting at 1/√d; the paper's
    learnable temperature), and each token's attention to itself is masked out before the softmax, so the
    diagonal of the weights is 0. Set `return_attention = True` to keep the last forward's weights,
    `(N, heads, tokens, tokens)`, in `last_attention` (detached, before dropout), for attention maps / rollout.
    """

    def __init__(self, dim: int, heads: int, *, qkv_bias: bool = True, attention_dropout: float = 0.0,
                 locality: bool = False):
        super().__init__()
        self.heads, self.locality = heads, locality
        scale = (dim // heads) ** -0.5
        self.scale = nn.Parameter(torch.full((heads, 1, 1), scale)) if locality else scale
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.attn_drop = Dropout(attention_dropout)
        self.proj = nn.Linear(dim, dim)
        self.return_attention = False
        self.last_attention: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        n, t, dim = x.shape
        q, k, v = self.qkv(x).reshape(n, t, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-2, -1) * self.scale
        if self.locality:  # LSA's diagonal masking: a token attends only to the others
            scores = scores.masked_fill(torch.eye(t, dtype=torch.bool, device=x.device), float("-inf"))
        attn = scores.softmax(dim=-1)
        if self.return_attention:
            self.last_attention = attn.detach()
        return self.proj((self.attn_drop(attn) @ v).transpose(1, 2).reshape(n, t, dim))


def init_transformer_weights(module: nn.Module) -> None:
    """The ViT/DeiT reference initialisation (timm's `_init_weights`, DeiT's main.py): every Linear weight truncated
    normal with std 0.02 and zero bias; LayerNorm weight 1, bias 0. Convolutions keep their own init."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
