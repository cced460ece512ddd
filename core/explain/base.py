"""What every explanation shares: the result type, the model's input for one image, hooks that never stay."""
from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from core.errors import UserError
from core.models.wrapper import LoadedModel

METHODS = ("filters", "feature-maps", "attention", "rollout", "gradcam", "gradcam++", "scorecam", "eigencam")
MAP_METHODS = ("gradcam", "gradcam++", "scorecam", "eigencam", "rollout", "attention")  # one heat map per image


class ExplainError(UserError):
    """An explanation the user asked for cannot be made: unknown layer, method not applicable, bad class."""


@dataclass
class Explanation:
    """One model's explanation of one image, ready to draw.

    image: (H, W, 3) uint8, the image as the model sees it (its resize and crop). heatmap: (H, W) float32 in
    [0, 1] over that image (Grad-CAM, rollout, mean attention), or None. tiles: (h, w, 3) or (h, w) float32
    arrays in [0, 1] (filters, feature maps, per-head attention) drawn as a grid of `columns` columns, each
    named in `tile_labels`. data: the method's raw arrays (e.g. `attention` (layers, heads, gh, gw)).
    """

    method: str
    model_id: str
    image: np.ndarray
    heatmap: np.ndarray | None = None
    tiles: list[np.ndarray] = field(default_factory=list)
    tile_labels: list[str] = field(default_factory=list)
    columns: int = 8
    layer: str | None = None
    class_index: int | None = None
    class_label: str | None = None
    top5: list[tuple[str, float]] = field(default_factory=list)
    note: str = ""
    data: dict = field(default_factory=dict)
    precision: str | None = None  # the forward behind top5 and the default class (explain's `precision`)


def model_input(model: LoadedModel, image: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """The normalised (1, C, H, W) batch and the (H, W, 3) uint8 picture of what the model sees."""
    geo = model.preprocess.geometry(image)  # uint8 (C, H, W)
    x = model.preprocess.normalize(geo.unsqueeze(0)).to(model.device)
    shown = geo.permute(1, 2, 0).cpu().numpy()
    if shown.shape[2] == 1:
        shown = np.repeat(shown, 3, axis=2)
    return x, np.ascontiguousarray(shown[..., :3])


def top5(model: LoadedModel, logits: torch.Tensor) -> list[tuple[str, float]]:
    prob = torch.softmax(logits.detach().float().reshape(-1), 0)
    p, idx = prob.topk(min(5, prob.numel()))
    names = model.labels.names
    return [(names[i] if i < len(names) else f"class {i}", float(v)) for v, i in zip(p.tolist(), idx.tolist())]


def check_class(model: LoadedModel, class_index: int | None, logits: torch.Tensor) -> int:
    n = logits.shape[-1]
    if class_index is None:
        return int(logits.reshape(-1).argmax())
    if not 0 <= class_index < n:
        raise ExplainError(f"class index {class_index} is outside {model.id}'s {n} classes (0..{n - 1})")
    return int(class_index)


def class_label(model: LoadedModel, index: int | None) -> str | None:
    if index is None:
        return None
    return model.labels.names[index] if index < len(model.labels.names) else f"class {index}"


def first_tensor(output) -> torch.Tensor | None:
    """A module's output tensor: itself, the first of a tuple, or a ModelOutput's first field."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output:
        return first_tensor(output[0])
    if hasattr(output, "to_tuple"):
        return first_tensor(output.to_tuple())
    return None


@contextlib.contextmanager
def forward_hooks(modules: dict[str, nn.Module], hook_for) -> Iterator[None]:
    """Register `hook_for(name)` as a forward hook on each module; all removed on exit, whatever happens."""
    handles = []
    try:
        for name, m in modules.items():
            handles.append(m.register_forward_hook(hook_for(name)))
        yield
    finally:
        for h in handles:
            h.remove()


_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
               "_forward_hooks_with_kwargs", "_forward_hooks_always_called", "_forward_pre_hooks_with_kwargs")
_HOOK_MARKS = ("_output_capturing_hooks_installed",)  # transformers 5 installs output-capturing hooks once


@contextlib.contextmanager
def no_new_hooks(module: nn.Module) -> Iterator[None]:
    """Remove on exit every hook that code inside (e.g. transformers' `output_attentions` capture) added to
    `module` or its submodules, and the marks that would stop that code from installing them again."""
    before = {id(m): {d: set(getattr(m, d, {}) or {}) for d in _HOOK_DICTS} for m in module.modules()}
    marks = {id(m): {a: m.__dict__[a] for a in _HOOK_MARKS if a in m.__dict__} for m in module.modules()}
    try:
        yield
    finally:
        for m in module.modules():
            old = before.get(id(m), {})
            for d in _HOOK_DICTS:
                hooks = getattr(m, d, None)
                if hooks is None:
                    continue
                for key in [k for k in hooks if k not in old.get(d, set())]:
                    del hooks[key]
            for a in _HOOK_MARKS:
                if a in m.__dict__ and a not in marks.get(id(m), {}):
                    del m.__dict__[a]
                elif a in marks.get(id(m), {}):
                    m.__dict__[a] = marks[id(m)][a]


def trace(model: LoadedModel, x: torch.Tensor) -> list[tuple[str, nn.Module, tuple[int, ...] | None]]:
    """(name, module, output shape) of every submodule in the order the forward pass runs them (first call); the
    shape is None where the output is not a plain tensor (a tuple, a ModelOutput)."""
    seen: dict[str, tuple] = {}
    mods = {n: m for n, m in model.module.named_modules() if n}

    def hook_for(name):
        def hook(m, inp, out):
            if name not in seen:
                seen[name] = (name, m, tuple(out.shape) if isinstance(out, torch.Tensor) else None)
        return hook

    with forward_hooks(mods, hook_for), torch.no_grad():
        model.logits(x)
    return list(seen.values())


def find_layer(model: LoadedModel, name: str) -> nn.Module:
    mods = dict(model.module.named_modules())
    if name not in mods or not name:
        convs = [n for n, _ in model.conv_layers()]
        hint = f"; its conv layers: {', '.join(convs[:6])}{', ...' if len(convs) > 6 else ''}" if convs else ""
        raise ExplainError(f"{model.id} has no layer named {name!r}{hint}")
    return mods[name]


def prefix_tokens(module: nn.Module) -> int:
    """How many non-patch tokens (CLS, distillation, registers) lead a ViT's token sequence; 0 for Swin / CNNs."""
    for m in module.modules():
        n = getattr(m, "num_prefix_tokens", None)
        if isinstance(n, int):
            return n
    count = 0
    for name, p in module.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in ("cls_token", "class_token", "distillation_token", "dist_token", "reg_token", "register_tokens"):
            count += p.shape[1] if p.ndim == 3 else 1
    return count


def token_grid(n_tokens: int, prefix: int, image_hw: tuple[int, int]) -> tuple[int, int, int] | None:
    """(prefix, gh, gw) for a token sequence: the patch tokens after `prefix` tile a grid with the image's
    aspect; None when they do not (then tokens are not a map)."""
    for p in dict.fromkeys((prefix, 0)):
        n = n_tokens - p
        if n <= 0:
            continue
        h, w = image_hw
        gh = max(1, round(math.sqrt(n * h / w)))
        if gh * (n // gh) == n:
            return p, gh, n // gh
    return None


def as_maps(t: torch.Tensor, prefix: int, image_hw: tuple[int, int], layer: str) -> torch.Tensor:
    """A layer output (1, C, h, w) or tokens (1, T, C) as (C, h, w) maps; tokens lose their CLS/distillation
    tokens and go back onto the patch grid."""
    if t.ndim == 4:
        if t.shape[2] != t.shape[3] and t.shape[1] == t.shape[2]:  # channels-last (N, H, W, C), e.g. ConvNeXt's MLP
            return t[0].permute(2, 0, 1)
        return t[0]
    if t.ndim == 3:
        grid = token_grid(t.shape[1], prefix, image_hw)
        if grid is not None:
            p, gh, gw = grid
            return t[0, p:].transpose(0, 1).reshape(t.shape[2], gh, gw)
    raise ExplainError(f"layer {layer!r} outputs shape {tuple(t.shape)}, not a spatial map or a grid of patch "
                       "tokens; pick a conv layer or a transformer block")


def normalise(a: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1] (a constant array becomes zeros)."""
    a = np.asarray(a, dtype=np.float32)
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def upsample(grid: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """A coarse (h, w) map bilinearly onto the image's (H, W)."""
    t = torch.as_tensor(np.asarray(grid, dtype=np.float32))[None, None]
    return torch.nn.functional.interpolate(t, size=hw, mode="bilinear", align_corners=False)[0, 0].numpy()


def executed_convs(model: LoadedModel, x: torch.Tensor) -> list[str]:
    """Names of the Conv2d layers the forward pass runs, in its order (aux heads idle in eval are left out)."""
    return convs_of(trace(model, x))


def convs_of(ran: list[tuple[str, nn.Module, tuple[int, ...] | None]]) -> list[str]:
    """The Conv2d layers of a `trace`, in forward order."""
    return [n for n, m, _ in ran if isinstance(m, nn.Conv2d)]
