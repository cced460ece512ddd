"""Attention maps, attention rollout (Abnar & Zuidema 2020) and mean attention distance (Dosovitskiy et al. 2021)."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

from core.explain.base import (
    ExplainError,
    Explanation,
    check_class,
    class_label,
    model_input,
    no_new_hooks,
    normalise,
    prefix_tokens,
    token_grid,
    top5,
    upsample,
)
from core.explain.render import overlay
from core.models.attention import Attention
from core.models.wrapper import LoadedModel

HEAD_FUSIONS = ("mean", "max", "min")
WINDOWED = ("swin", "swinv2")


@contextlib.contextmanager
def eager_attention(module: torch.nn.Module) -> Iterator[None]:
    """transformers' SDPA kernels return no attention weights: switch to eager attention, restore on exit."""
    config = getattr(module, "config", None)
    before = getattr(config, "_attn_implementation", None)
    if config is None or before == "eager" or not hasattr(module, "set_attn_implementation"):
        yield
        return
    module.set_attn_implementation("eager")
    try:
        yield
    finally:
        module.set_attn_implementation(before)


@contextlib.contextmanager
def _transformers_attention(module: torch.nn.Module) -> Iterator[None]:
    """Eager attention, and none of the output-capturing hooks transformers leaves on the model afterwards."""
    with no_new_hooks(module), eager_attention(module):
        yield


@contextlib.contextmanager
def scratch_attention(module: torch.nn.Module) -> Iterator[list]:
    """The lab's ViT: set each Attention's `return_attention`; on exit put back the flags and old weights."""
    blocks = [m for m in module.modules() if isinstance(m, Attention)]
    saved = [(m.return_attention, m.last_attention) for m in blocks]
    try:
        for m in blocks:
            m.return_attention = True
        yield blocks
    finally:
        for m, (flag, last) in zip(blocks, saved):
            m.return_attention, m.last_attention = flag, last


def attention_weights(model: LoadedModel, x: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
    """The logits and every layer's attention for one image: (layers, heads, tokens, tokens) float64."""
    module = model.module
    model_type = getattr(getattr(module, "config", None), "model_type", "")
    if model_type in WINDOWED:
        raise ExplainError(f"{model.id} is a Swin transformer: it attends within shifted local windows and has no "
                           "CLS token, so there is no image-wide attention map or rollout; use gradcam or "
                           "feature-maps")
    if any(isinstance(m, Attention) for m in module.modules()) and prefix_tokens(module) > 0:  # CCT pools: no CLS
        with scratch_attention(module) as blocks, torch.no_grad():
            logits = model.logits(x)
            maps = [b.last_attention[0] for b in blocks]
    elif hasattr(module, "config") and model.family == "vit":
        with _transformers_attention(module), torch.no_grad():
            out = module(pixel_values=x, output_attentions=True)
        logits = out.logits
        maps = [a[0] for a in (out.attentions or ())]
        if not maps:
            raise ExplainError(f"{model.id} returns no attention weights ({model_type or 'unknown type'})")
    else:
        raise ExplainError(f"attention maps need a vision transformer with global attention (ViT, DeiT, the lab's "
                           f"vit-small); {model.id} is a {model.family} model: use gradcam or feature-maps")
    return logits, torch.stack([m.double().cpu() for m in maps]).numpy()


def _grid(model: LoadedModel, attn: np.ndarray, hw: tuple[int, int]) -> tuple[int, int, int]:
    prefix = prefix_tokens(model.module)
    grid = token_grid(attn.shape[-1], prefix, hw)
    if grid is None or grid[0] == 0:
        raise ExplainError(f"{model.id}'s {attn.shape[-1]} tokens are not a CLS token plus a patch grid")
    return grid


def attention_maps(model: LoadedModel, image: np.ndarray, layer: str | int | None = None, *,
                   class_index: int | None = None, **_) -> Explanation:
    """Per layer and head, the CLS token's attention over the patches, upsampled onto the image (each tile
    normalised on its own). `layer`: one layer's index (0 = first); default all. The heatmap is the selected
    (default: last) layer's mean over heads."""
    x, shown = model_input(model, image)
    logits, attn = attention_weights(model, x)
    prefix, gh, gw = _grid(model, attn, tuple(shown.shape[:2]))
    cls = attn[:, :, 0, prefix:].reshape(attn.shape[0], attn.shape[1], gh, gw)
    layers = list(range(len(cls)))
    if layer is not None:
        try:
            chosen = int(layer)
        except ValueError:
            raise ExplainError(f"attention --layer is a layer number 0..{len(cls) - 1}, not {layer!r}") from None
        if not 0 <= chosen < len(cls):
            raise ExplainError(f"{model.id} has {len(cls)} attention layers (0..{len(cls) - 1}), not {chosen}")
        layers = [chosen]
    hw = tuple(shown.shape[:2])
    tiles, labels = [], []
    for li in layers:
        for h in range(cls.shape[1]):
            tiles.append(overlay(shown, upsample(normalise(cls[li, h]), hw)).astype(np.float32) / 255)
            labels.append(f"layer {li} head {h}")
    heat = normalise(upsample(cls[layers[-1]].mean(0), hw))
    idx = check_class(model, class_index, logits)
    return Explanation("attention", model.id, shown, heatmap=heat, tiles=tiles, tile_labels=labels,
                       columns=cls.shape[1], layer=None if layer is None else str(layers[0]), class_index=idx,
                       class_label=class_label(model, idx), top5=top5(model, logits[0]),
                       note=f"CLS attention, {len(cls)} layers x {cls.shape[1]} heads on a {gh}x{gw} patch grid "
                            "(attention does not depend on the class)",
                       data={"attention": cls, "weights": attn})


def attention_rollout(attentions: np.ndarray, head_fusion: str = "mean", discard_ratio: float = 0.0) -> np.ndarray:
    """Rollout over (layers, heads, T, T) attention: per layer, fuse heads (mean / max / min), zero the
    `discard_ratio` fraction of smallest entries (never CLS->CLS), add the identity (the residual), renormalise
    rows, and multiply the layers in order: A_L ... A_1. Returns (T, T)."""
    if head_fusion not in HEAD_FUSIONS:
        raise ExplainError(f"head fusion must be one of {', '.join(HEAD_FUSIONS)}, not {head_fusion!r}")
    if not 0.0 <= discard_ratio < 1.0:
        raise ExplainError(f"discard ratio must be in [0, 1), not {discard_ratio}")
    t = attentions.shape[-1]
    eye = np.eye(t)
    result = eye.copy()
    for layer in np.asarray(attentions, dtype=np.float64):
        fused = getattr(layer, head_fusion)(axis=0).copy()
        k = int(fused.size * discard_ratio)
        if k:
            flat = fused.reshape(-1)
            drop = np.argsort(flat, kind="stable")[:k]
            flat[drop[drop != 0]] = 0.0
        a = fused + eye
        a = a / a.sum(axis=-1, keepdims=True)
        result = a @ result
    return result


def rollout(model: LoadedModel, image: np.ndarray, layer=None, *, class_index: int | None = None,
            head_fusion: str = "mean", discard_ratio: float = 0.0, **_) -> Explanation:
    """Attention rollout from the CLS token to the patches, overlaid on the image (divided by its maximum)."""
    x, shown = model_input(model, image)
    logits, attn = attention_weights(model, x)
    prefix, gh, gw = _grid(model, attn, tuple(shown.shape[:2]))
    roll = attention_rollout(attn, head_fusion, discard_ratio)
    cls = roll[0, prefix:].reshape(gh, gw)
    coarse = cls / cls.max() if cls.max() > 0 else cls
    idx = check_class(model, class_index, logits)
    return Explanation("rollout", model.id, shown, heatmap=np.clip(upsample(coarse, tuple(shown.shape[:2])), 0, 1),
                       class_index=idx, class_label=class_label(model, idx), top5=top5(model, logits[0]),
                       note=f"rollout over {attn.shape[0]} layers, heads fused by {head_fusion}, "
                            f"discard ratio {discard_ratio:g} (does not depend on the class)",
                       data={"rollout": coarse, "matrix": roll})


def mean_attention_distance(attentions: np.ndarray, grid: tuple[int, int], patch_px: tuple[float, float],
                            prefix: int = 1) -> list[dict]:
    """Per layer and head, the attention-weighted mean distance in pixels between a query patch and the key
    patches, averaged over query patches. Patch tokens only (prefix tokens dropped, rows renormalised over the
    patches); distance between patch centres."""
    gh, gw = grid
    ys, xs = np.divmod(np.arange(gh * gw), gw)
    pos = np.stack([ys * patch_px[0], xs * patch_px[1]], axis=1).astype(np.float64)
    dist = np.sqrt(((pos[:, None, :] - pos[None, :, :]) ** 2).sum(-1))
    a = np.asarray(attentions, dtype=np.float64)[:, :, prefix:, prefix:]
    a = a / np.maximum(a.sum(-1, keepdims=True), 1e-12)
    per = (a * dist).sum(-1).mean(-1)  # (layers, heads)
    return [{"layer": int(li), "head": int(h), "mean_distance_px": float(per[li, h])}
            for li in range(per.shape[0]) for h in range(per.shape[1])]


def attention_distances(model: LoadedModel, image: np.ndarray) -> list[dict]:
    """`mean_attention_distance` of `model` on `image`, in the model's input pixels."""
    x, shown = model_input(model, image)
    _, attn = attention_weights(model, x)
    prefix, gh, gw = _grid(model, attn, tuple(shown.shape[:2]))
    return mean_attention_distance(attn, (gh, gw), (shown.shape[0] / gh, shown.shape[1] / gw), prefix)
