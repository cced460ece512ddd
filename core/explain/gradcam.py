"""Grad-CAM (Selvaraju et al. 2017) for CNNs and, through the token-to-grid reshape, for ViTs."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from core.explain.base import (ExplainError, Explanation, as_maps, check_class, class_label, find_layer,
                               first_tensor, forward_hooks, model_input, prefix_tokens, token_grid, top5, upsample)
from core.models.wrapper import LoadedModel


@contextlib.contextmanager
def capture_outputs(modules: dict[str, nn.Module]) -> Iterator[dict[str, torch.Tensor]]:
    """Each module's first output, kept in the autograd graph. A tensor output is passed on as a clone, so an
    in-place op downstream (ReLU(inplace=True)) cannot change the captured value or its gradient."""
    got: dict[str, torch.Tensor] = {}

    def hook_for(name):
        def hook(m, inp, out):
            if name in got:
                return None
            if isinstance(out, torch.Tensor):
                got[name] = out
                return out.clone()
            t = first_tensor(out)
            if t is not None:
                got[name] = t
            return None
        return hook

    with forward_hooks(modules, hook_for):
        yield got


def default_token_layer(model: LoadedModel, x: torch.Tensor) -> str:
    """A token model's Grad-CAM layer: the last LayerNorm (in forward order) whose patch tokens get a gradient
    from the top class: a ViT's last block input norm (the final norm feeds only the CLS token to the head),
    Swin's final norm (its head averages all tokens)."""
    norms = {n: m for n, m in model.module.named_modules() if isinstance(m, nn.LayerNorm)}
    prefix, hw = prefix_tokens(model.module), tuple(x.shape[-2:])
    with capture_outputs(norms) as got, torch.enable_grad():
        logits = model.logits(x.clone().requires_grad_(True))
        names = [n for n, t in got.items() if t.ndim == 3 and token_grid(t.shape[1], prefix, hw) and t.requires_grad]
        grads = torch.autograd.grad(logits[0].max(), [got[n] for n in names], allow_unused=True) if names else []
    for name, g in reversed(list(zip(names, grads))):
        if g is not None and g[0, token_grid(g.shape[1], prefix, hw)[0]:].abs().sum() > 0:
            return name
    raise ExplainError(f"{model.id} has no token layer whose patch tokens reach the class score; pass --layer")


def gradcam(model: LoadedModel, image: np.ndarray, layer: str | None = None, *, class_index: int | None = None,
            **_) -> Explanation:
    """Grad-CAM at `layer` (default: a CNN's last conv, a ViT's last block input norm) for `class_index`
    (default: the predicted class): ReLU(sum_c mean(dScore/dA_c) A_c), upsampled and divided by its maximum."""
    from core.explain.activations import default_layer

    x, shown = model_input(model, image)
    name = layer or default_layer(model, x)
    module = find_layer(model, name)
    hw = tuple(shown.shape[:2])
    prefix = prefix_tokens(model.module)
    with capture_outputs({name: module}) as got, torch.enable_grad():
        logits = model.logits(x.clone().requires_grad_(True))
        idx = check_class(model, class_index, logits)
        if name not in got:
            raise ExplainError(f"layer {name!r} of {model.id} does not run when the model classifies an image")
        acts = got[name]
        if not acts.requires_grad:
            raise ExplainError(f"layer {name!r} of {model.id} is not connected to the class scores by gradients")
        (grad,) = torch.autograd.grad(logits[0, idx], acts, allow_unused=True)
    if grad is None:
        grad = torch.zeros_like(acts)
    a = as_maps(acts.detach(), prefix, hw, name).float()
    g = as_maps(grad.detach(), prefix, hw, name).float()
    weights = g.mean(dim=(1, 2))
    cam = torch.relu((weights[:, None, None] * a).sum(0)).cpu().numpy()
    peak = float(cam.max())
    note = f"Grad-CAM at {name} ({a.shape[1]}x{a.shape[2]} map)"
    if peak <= 0:
        note += "; the class gets no positive evidence at this layer (the map is empty)"
    coarse = cam / peak if peak > 0 else cam
    heat = np.clip(upsample(coarse, hw), 0, 1)
    return Explanation("gradcam", model.id, shown, heatmap=heat.astype(np.float32), layer=name, class_index=idx,
                       class_label=class_label(model, idx), top5=top5(model, logits[0]), note=note,
                       data={"cam": coarse})
