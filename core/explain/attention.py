"""Attention maps, attention rollout (Abnar & Zuidema 2020) and mean attention distance (Dosovitskiy et al. 2021)."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from core.explain.base import (
    ExplainError,
    Explanation,
    check_class,
    class_label,
    forward_hooks,
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
CLS_PARAMETERS = ("cls_token", "class_token")  # timm and the lab / torchvision's VisionTransformer
MHA_ARGS = ("key_padding_mask", "need_weights", "attn_mask", "average_attn_weights", "is_causal")  # after q, k, v


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


def _timm_blocks(module: nn.Module) -> list[nn.Module]:
    """timm's attention modules (ViT, DeiT, BEiT, EVA, Swin's windows ...): a `fused_attn` switch and, on the
    unfused path, an `attn_drop` whose input is the softmaxed attention (B, heads, queries, keys)."""
    return [m for m in module.modules()
            if isinstance(getattr(m, "fused_attn", None), bool) and isinstance(getattr(m, "attn_drop", None), nn.Dropout)]


@contextlib.contextmanager
def timm_attention(module: nn.Module) -> Iterator[list]:
    """timm: SDPA returns no weights, so switch every `fused_attn` off and catch each block's probabilities on
    their way into its `attn_drop` (identity in eval); flags and hooks put back on exit. Yields the list the
    (heads, T, T) maps of image 0 are appended to, in the order the blocks run."""
    switches = [(m, m.fused_attn) for m in module.modules() if isinstance(getattr(m, "fused_attn", None), bool)]
    maps: list[torch.Tensor] = []
    drops = {str(i): b.attn_drop for i, b in enumerate(_timm_blocks(module))}

    def catch(m: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        maps.append(inp[0][0].detach())

    try:
        for m, _ in switches:
            m.fused_attn = False
        with no_new_hooks(module), forward_hooks(drops, lambda name: catch):
            yield maps
    finally:
        for m, flag in switches:
            m.fused_attn = flag


def _ask_for_weights(m: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """nn.MultiheadAttention forward pre-hook: per-head weights, whatever the caller asked for."""
    kwargs = {**dict(zip(MHA_ARGS, args[3:])), **kwargs, "need_weights": True, "average_attn_weights": False}
    return args[:3], kwargs


@contextlib.contextmanager
def mha_attention(module: nn.Module) -> Iterator[list]:
    """torch's nn.MultiheadAttention (torchvision's ViT calls it with need_weights=False): ask each call for its
    per-head weights and catch them from its output; hooks removed on exit. Yields the list of (heads, T, T)
    maps of image 0, in the order the layers run."""
    maps: list[torch.Tensor] = []
    handles = []
    try:
        with no_new_hooks(module):
            for m in module.modules():
                if isinstance(m, nn.MultiheadAttention):
                    handles.append(m.register_forward_pre_hook(_ask_for_weights, with_kwargs=True))
                    handles.append(m.register_forward_hook(lambda m, inp, out: maps.append(out[1][0].detach())))
            yield maps
    finally:
        for h in handles:
            h.remove()


def _has_cls_token(module: nn.Module) -> bool:
    """A learned CLS token leads the token sequence (timm's `cls_token` is None when `class_token=False`)."""
    return any(name.rsplit(".", 1)[-1] in CLS_PARAMETERS for name, _ in module.named_parameters())


def _windowed(module: nn.Module) -> bool:
    """Attention within local windows (Swin in timm, torchvision and transformers): no image-wide map."""
    return any((hasattr(m, "window_size") and "Attention" in type(m).__name__) or "Window" in type(m).__name__
               for m in module.modules())


def _attends(module: nn.Module) -> bool:
    return any(isinstance(m, (Attention, nn.MultiheadAttention)) or isinstance(getattr(m, "fused_attn", None), bool)
               or type(m).__name__.endswith("Attention") for m in module.modules())


def _swin(model: LoadedModel) -> str:
    return (f"{model.id} is a Swin transformer: it attends within shifted local windows and has no CLS token, so "
            "there is no image-wide attention map or rollout; use gradcam or feature-maps")


def _refusal(model: LoadedModel) -> str:
    """Why `model` has no CLS attention to read: no attention at all, windows, no CLS token, or layers whose
    weights this view cannot reach."""
    module = model.module
    if not _attends(module):
        if model.family == "cnn" or any(isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) for m in module.modules()):
            return (f"{model.id} is a convolutional network, not a vision transformer: it has no attention to map "
                    "or roll out; use gradcam or feature-maps")
        return (f"{model.id} has no attention layers (it is not a vision transformer), so there is no attention "
                "to map or roll out")
    if _windowed(module):
        if type(module).__name__.startswith("Swin"):
            return _swin(model)
        return (f"{model.id} attends within local windows and has no CLS token, so there is no image-wide "
                "attention map or rollout; use gradcam or feature-maps")
    if not _has_cls_token(module):
        return (f"{model.id} is a vision transformer with no CLS token: it pools its tokens for the classifier, "
                "so there is no CLS attention to map or roll out; use gradcam or feature-maps")
    kinds = sorted({type(m).__name__ for m in module.modules() if type(m).__name__.endswith("Attention")})
    return (f"{model.id} has a CLS token, but its attention layers ({', '.join(kinds) or 'unknown'}) do not give "
            "their weights to this view (it reads the lab's ViTs, transformers ViT / DeiT, timm's "
            "VisionTransformer / DeiT and torchvision's ViT); use gradcam or feature-maps")


def _capture(module: nn.Module) -> contextlib.AbstractContextManager | None:
    """The context manager that catches `module`'s global CLS attention, or None when it has none to catch."""
    if _windowed(module) or not _has_cls_token(module):
        return None
    if _timm_blocks(module):
        return timm_attention(module)
    if any(isinstance(m, nn.MultiheadAttention) for m in module.modules()):
        return mha_attention(module)
    return None


def _checked(model: LoadedModel, maps: list[torch.Tensor]) -> list[torch.Tensor]:
    """Caught maps are one square softmax (heads, T, T) per layer over the same T tokens, or a refusal saying
    what they are instead (CaiT's class attention: one query; talking heads: mixed after the softmax)."""
    shapes = sorted({tuple(m.shape) for m in maps})
    if not maps or len(shapes) != 1 or len(shapes[0]) != 3 or shapes[0][1] != shapes[0][2]:
        raise ExplainError(f"{model.id}'s attention layers are not one global token-to-token attention each "
                           f"(weights of shapes {shapes or 'none'}); use gradcam or feature-maps")
    rows = torch.stack([m.double() for m in maps]).sum(-1)
    if not torch.allclose(rows, torch.ones_like(rows), atol=1e-3):
        raise ExplainError(f"{model.id}'s attention weights are not softmax rows over the tokens (they are mixed "
                           "after the softmax), so they cannot be mapped or rolled out; use gradcam or feature-maps")
    return maps


def attention_weights(model: LoadedModel, x: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
    """The logits and every layer's attention for one image: (layers, heads, tokens, tokens) float64. The lab's
    transformers give theirs whether or not a CLS token leads the tokens (CCT pools them); the views that read a
    CLS row check for one (`_grid`)."""
    module = model.module
    model_type = getattr(getattr(module, "config", None), "model_type", "")
    if model_type in WINDOWED:
        raise ExplainError(_swin(model))
    if any(isinstance(m, Attention) for m in module.modules()):
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
    elif (capture := _capture(module)) is not None:  # timm, torchvision
        with torch.no_grad():
            logits = model.logits(x)  # the model's own: catching the weights takes a slower, unfused path
            with capture as maps:
                model.logits(x)
        maps = _checked(model, maps)
    else:
        raise ExplainError(_refusal(model))
    return logits, torch.stack([m.double().cpu() for m in maps]).numpy()


def _grid(model: LoadedModel, attn: np.ndarray, hw: tuple[int, int], *, cls: bool = True) -> tuple[int, int, int]:
    """(prefix, gh, gw) of the attention's tokens; `cls`: a CLS token must lead them."""
    prefix = prefix_tokens(model.module)
    grid = token_grid(attn.shape[-1], prefix, hw)
    if grid is None:
        raise ExplainError(f"{model.id}'s {attn.shape[-1]} tokens are not {'a CLS token plus ' if cls else ''}"
                           "a patch grid")
    if cls and grid[0] == 0:
        raise ExplainError(_refusal(model))  # no CLS token: it pools its tokens
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
    """`mean_attention_distance` of `model` on `image`, in the model's input pixels (every query token: CCT's pooled
    tokens too)."""
    x, shown = model_input(model, image)
    _, attn = attention_weights(model, x)
    prefix, gh, gw = _grid(model, attn, tuple(shown.shape[:2]), cls=False)
    return mean_attention_distance(attn, (gh, gw), (shown.shape[0] / gh, shown.shape[1] / gw), prefix)
