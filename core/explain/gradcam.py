"""Grad-CAM (Selvaraju et al. 2017) for CNNs and, through the token-to-grid reshape, for ViTs."""
from __future__ import annotations

import numpy as np
import torch

from core.explain.base import (
    ExplainError,
    Explanation,
    as_maps,
    check_class,
    class_label,
    find_layer,
    model_input,
    prefix_tokens,
    top5,
    upsample,
)
from core.explain.layers import capture_outputs, default_layer
from core.models.wrapper import LoadedModel


def gradcam(model: LoadedModel, image: np.ndarray, layer: str | None = None, *, class_index: int | None = None,
            **_) -> Explanation:
    """Grad-CAM at `layer` (default: a CNN's last stage output, a ViT's last block input norm) for `class_index`
    (default: the predicted class): ReLU(sum_c mean(dScore/dA_c) A_c), upsampled and divided by its maximum."""
    x, shown = model_input(model, image)
    name = layer or default_layer(model, x)
    where = "" if layer else (", the default: the output of the last stage" if model.family != "vit"
                              else ", the default: the last block's input norm")
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
    note = f"Grad-CAM at {name}{where} ({a.shape[1]}x{a.shape[2]} map)"
    if peak <= 0:
        note += "; the class gets no positive evidence at this layer (the map is empty)"
    coarse = cam / peak if peak > 0 else cam
    heat = np.clip(upsample(coarse, hw), 0, 1)
    return Explanation("gradcam", model.id, shown, heatmap=heat.astype(np.float32), layer=name, class_index=idx,
                       class_label=class_label(model, idx), top5=top5(model, logits[0]), note=note,
                       data={"cam": coarse})
