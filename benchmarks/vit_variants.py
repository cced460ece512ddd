"""Does any plain ViT leave chance in the demo's budget? The demo's ViT recipe on variants of the plain ViT
(docs/arena.md, "Why the plain ViT does not learn `shapes` in the demo's budget").

    python benchmarks/vit_variants.py [--variants vit-small,gap,gap-sincos,d96x4,d64x6,patchnorm]

Each variant trains with the demo's recipe for `vit-small` (`core.demo.DEMO_RECIPES`: epochs:8 on `shapes`'s
5,000 training images at 32 px, batch 64, DeiT's AdamW recipe at lr 2e-3, seed 0; bf16 autocast where the CPU has
it) in a temporary store. It prints a markdown row per variant: parameters, seconds, and the train loss and val top-1
(the demo's 500 val images) after each epoch. The variants are registered in this process only; the lab's models
are unchanged.

- vit-small: the demo's plain ViT (CLS token, learned positions; width 192, depth 6, 4x4 patches at 32 px).
- gap: global average pooling of the patch tokens in place of the CLS token, and a zero-initialised head (Beyer,
  Zhai & Kolesnikov 2022, "Better plain ViT baselines for ImageNet-1k": their changes for short schedules).
- gap-sincos: gap with fixed 2-D sine-cosine positions in place of learned ones (the same paper).
- d96x4, d64x6: narrower ViTs (width 96, depth 4, 3 heads; width 64, depth 6, 2 heads) on the same patches: about
  ResNet-20's parameter count (270 K) rather than ten times it.
- patchnorm: vit-small with a LayerNorm over each patch's raw pixels before the linear patch embedding and one
  after it, as lucidrains' vit-pytorch builds its ViTs.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.demo import DEMO_RECIPES  # noqa: E402
from core.models.scratch import DEIT_RECIPE, ViT  # noqa: E402
from core.models.spec import InputShape, register_scratch  # noqa: E402
from core.store import Store  # noqa: E402
from core.train.loop import train  # noqa: E402


def sincos_2d(grid: int, dim: int, temperature: float = 10_000.0) -> Tensor:
    """Fixed positions for a grid x grid of tokens, (1, grid * grid, dim): a quarter of the channels each for sin
    and cos of the column and of the row, at geometric frequencies: big_vision's `posemb_sincos_2d`, the code behind
    Beyer et al. 2022 (timm's `build_sincos2d_pos_embed` spaces the frequencies by dim / 4, not dim / 4 - 1, and
    orders the channels otherwise, so it is not used here)."""
    rows, cols = torch.meshgrid(torch.arange(grid, dtype=torch.float32), torch.arange(grid, dtype=torch.float32),
                                indexing="ij")
    omega = temperature ** -(torch.arange(dim // 4, dtype=torch.float32) / (dim // 4 - 1))
    cols, rows = cols.flatten()[:, None] * omega, rows.flatten()[:, None] * omega
    return torch.cat([cols.sin(), cols.cos(), rows.sin(), rows.cos()], dim=1)[None]


class PooledViT(ViT):
    """The lab's plain ViT with the CLS token replaced by the mean of the patch tokens, the head zero-initialised,
    and optionally fixed sine-cosine positions."""

    def __init__(self, shape: InputShape, *, sincos: bool):
        super().__init__(shape)
        del self.cls_token
        positions = self.pos_embed.data[:, 1:]  # the patch tokens' (the CLS token's is dropped)
        del self.pos_embed
        if sincos:
            self.register_buffer("pos_embed", sincos_2d(int(positions.shape[1] ** 0.5), positions.shape[2]))
        else:
            self.pos_embed = nn.Parameter(positions.clone())
        nn.init.zeros_(self.head.weight)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.norm(self.blocks(self.patch_embed(x) + self.pos_embed)).mean(dim=1))


class NormedPatchEmbed(nn.Module):
    """Patches to tokens with a LayerNorm over each patch's raw pixels before the linear map and another over the
    token after it: lucidrains' vit-pytorch (`ViT`, `SimpleViT`: `to_patch_embedding`), a widely used ViT for
    training from scratch. The first norm takes out each patch's own mean colour and contrast, which in `shapes`
    carry no label."""

    def __init__(self, channels: int, dim: int, patch: int):
        super().__init__()
        self.patch = patch
        self.norm_in = nn.LayerNorm(channels * patch * patch)
        self.proj = nn.Linear(channels * patch * patch, dim)
        self.norm_out = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        patches = nn.functional.unfold(x, self.patch, stride=self.patch).transpose(1, 2)  # (B, tokens, C*p*p)
        return self.norm_out(self.proj(self.norm_in(patches)))


VARIANTS = {
    "vit-small": None,  # registered by the lab
    "gap": lambda shape: PooledViT(shape, sincos=False),
    "gap-sincos": lambda shape: PooledViT(shape, sincos=True),
    "d96x4": lambda shape: ViT(shape, dim=96, depth=4, heads=3),
    "d64x6": lambda shape: ViT(shape, dim=64, depth=6, heads=2),
    "patchnorm": lambda shape: ViT(shape, embed=NormedPatchEmbed),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", type=lambda s: s.split(","), default=list(VARIANTS))
    args = p.parse_args()
    if unknown := [v for v in args.variants if v not in VARIANTS]:
        p.error(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    base = next(r for r in DEMO_RECIPES if r.model == "vit-small")
    print(f"Recipe: {base.to_dict()}\n")
    print("| variant | params | seconds | train loss after each epoch | val top-1 after each epoch |")
    print("|---|---|---|---|---|")
    for name in args.variants:
        model = "vit-small" if name == "vit-small" else f"vit-variant-{name}"
        if VARIANTS[name] is not None:
            register_scratch(model, name=name, family="vit", recipe=DEIT_RECIPE)(VARIANTS[name])
        with tempfile.TemporaryDirectory(prefix="vit-variant-") as store:
            t0 = time.perf_counter()
            result = train(replace(base, model=model), store=Store(store))
            seconds = time.perf_counter() - t0
        losses = " / ".join(f"{h['train_loss']:.2f}" for h in result.history)
        top1 = " / ".join(f"{h['val_top1']:.1%}" for h in result.history)
        print(f"| {name} | {result.meta['params']:,} | {seconds:,.0f} | {losses} | {top1} |", flush=True)


if __name__ == "__main__":
    main()
