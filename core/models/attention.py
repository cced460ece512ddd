"""Multi-head self-attention as the lab's transformers use it (vit-small, vit-convstem, CCT)."""
from __future__ import annotations

from torch import Tensor, nn


class Attention(nn.Module):
    """Multi-head self-attention: one qkv Linear, softmax(q kᵀ / √d) v per head, output projection.

    `qkv_bias=False` and `attention_dropout` are CCT's (its reference code). Set `return_attention = True` to keep
    the last forward's weights, `(N, heads, tokens, tokens)`, in `last_attention` (detached, before dropout), for
    attention maps / rollout.
    """

    def __init__(self, dim: int, heads: int, *, qkv_bias: bool = True, attention_dropout: float = 0.0):
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attention_dropout)
        self.proj = nn.Linear(dim, dim)
        self.return_attention = False
        self.last_attention: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        n, t, dim = x.shape
        q, k, v = self.qkv(x).reshape(n, t, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1) * self.scale).softmax(dim=-1)
        if self.return_attention:
            self.last_attention = attn.detach()
        return self.proj((self.attn_drop(attn) @ v).transpose(1, 2).reshape(n, t, dim))
