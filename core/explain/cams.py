"""Class activation maps at one layer, for CNNs and, through the token-to-grid reshape, for ViTs.

- Grad-CAM (Selvaraju et al. 2017): channel weights are the spatial mean of dScore/dA.
- Grad-CAM++ (Chattopadhay et al. 2018): weights sum ReLU(dS/dA) times the closed-form alpha of their eq. 19
  (second and third powers of the gradient standing in for higher derivatives of exp(S)).
- Score-CAM (Wang et al. 2020): gradient-free; each channel, upsampled and min-max scaled to [0, 1], masks the
  input, and the class logit of each masked input, softmaxed over channels, weighs that channel.
- EigenCAM (Muhammad & Yeasin 2020): gradient- and class-free; the activations' first principal component,
  its sign chosen so that the larger extreme is positive (Seg-Eigen-CAM, Chung & Ying 2025, eq. 13), since
  SVD's sign is arbitrary.

The formulas are those of pytorch-grad-cam (PyPI `grad-cam`), the field's reference implementation;
tests/test_explain_scores.py compares every map with it on the same model, layer, image and class. The project
keeps its own code because that library brings OpenCV, matplotlib and ttach into a hosted app for four short
formulas, and because the layer choice, the token reshape and the hook hygiene here are shared with every view.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

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

SCORECAM_BATCH = 64  # masked inputs per forward pass


@dataclass
class LayerPass:
    """One forward (and, for gradient methods, backward) pass at a layer: its activations and their gradients as
    (C, h, w) maps, the logits, the class and the model's input."""

    name: str
    where: str
    x: torch.Tensor  # (1, C, H, W), normalised
    shown: np.ndarray
    logits: torch.Tensor  # (1, K)
    index: int
    acts: torch.Tensor  # (C, h, w) float32
    grads: torch.Tensor | None  # (C, h, w) float32, or None for gradient-free methods


def layer_pass(model: LoadedModel, image: np.ndarray, layer: str | None, class_index: int | None, *,
               gradients: bool = True) -> LayerPass:
    """The activations at `layer` (default: a CNN's last stage output, a ViT's last block input norm) and, with
    `gradients`, d logit[class] / d activations, for `class_index` (default: the predicted class)."""
    x, shown = model_input(model, image)
    name = layer or default_layer(model, x)
    where = "" if layer else (", the default: the output of the last stage" if model.family != "vit"
                              else ", the default: the last block's input norm")
    module = find_layer(model, name)
    hw = tuple(shown.shape[:2])
    prefix = prefix_tokens(model.module)
    with capture_outputs({name: module}) as got, torch.set_grad_enabled(gradients):
        logits = model.logits(x.clone().requires_grad_(gradients))
        idx = check_class(model, class_index, logits)
        if name not in got:
            raise ExplainError(f"layer {name!r} of {model.id} does not run when the model classifies an image")
        acts = got[name]
        grad = None
        if gradients:
            if not acts.requires_grad:
                raise ExplainError(f"layer {name!r} of {model.id} is not connected to the class scores by gradients")
            (grad,) = torch.autograd.grad(logits[0, idx], acts, allow_unused=True)
            grad = as_maps(torch.zeros_like(acts) if grad is None else grad.detach(), prefix, hw, name).float()
    a = as_maps(acts.detach(), prefix, hw, name).float()
    return LayerPass(name, where, x.detach(), shown, logits.detach(), idx, a, grad)


def gradcam_weights(p: LayerPass, _model: LoadedModel) -> torch.Tensor:
    return p.grads.mean(dim=(1, 2))


def gradcam_pp_weights(p: LayerPass, _model: LoadedModel) -> torch.Tensor:
    g, a = p.grads.double(), p.acts.double()
    g2 = g * g
    alpha = g2 / (2 * g2 + a.sum(dim=(1, 2), keepdim=True) * g2 * g + 1e-6)
    alpha = torch.where(g != 0, alpha, torch.zeros_like(alpha))
    return (torch.relu(g) * alpha).sum(dim=(1, 2)).float()


def scorecam_weights(p: LayerPass, model: LoadedModel) -> torch.Tensor:
    """Softmax over channels of the class logit of the input masked by each channel (pytorch-grad-cam's form; the
    paper's reference code uses the class probability instead, the ranking of channels is the same)."""
    masks = torch.nn.functional.interpolate(p.acts[None], size=p.x.shape[-2:], mode="bilinear",
                                            align_corners=True)[0]
    flat = masks.reshape(len(masks), -1)
    lo, hi = flat.min(1).values[:, None, None], flat.max(1).values[:, None, None]
    masks = (masks - lo) / (hi - lo + 1e-8)
    scores = []
    with torch.no_grad():
        for i in range(0, len(masks), SCORECAM_BATCH):
            batch = p.x * masks[i:i + SCORECAM_BATCH, None].to(p.x.device)
            scores.append(model.logits(batch)[:, p.index].float().cpu())
    return torch.softmax(torch.cat(scores), 0)


def eigen_projection(acts: torch.Tensor) -> torch.Tensor:
    """(C, h, w) activations onto their first principal component, (h, w), the larger extreme made positive."""
    flat = acts.double().reshape(len(acts), -1).T  # (h*w, C)
    flat = flat - flat.mean(0)
    _, _, vt = torch.linalg.svd(flat, full_matrices=False)
    proj = (flat @ vt[0]).reshape(acts.shape[1:])
    if proj.min().abs() > proj.max().abs():
        proj = -proj
    return proj.float()


CAMS: dict[str, tuple[str, Callable[[LayerPass, LoadedModel], torch.Tensor] | None, bool]] = {
    # method: (name, channel weights (None: EigenCAM's projection), needs gradients)
    "gradcam": ("Grad-CAM", gradcam_weights, True),
    "gradcam++": ("Grad-CAM++", gradcam_pp_weights, True),
    "scorecam": ("Score-CAM", scorecam_weights, False),
    "eigencam": ("EigenCAM", None, False),
}


def cam(model: LoadedModel, image: np.ndarray, layer: str | None = None, *, class_index: int | None = None,
        method: str = "gradcam", **_) -> Explanation:
    """`method` (a key of CAMS) at `layer` for `class_index` (default: the predicted class): ReLU of the weighted
    sum of the layer's channels (EigenCAM: of their first principal component), upsampled bilinearly to the
    model's input and divided by its maximum. EigenCAM's map does not depend on the class."""
    title, weigh, needs_grad = CAMS[method]
    p = layer_pass(model, image, layer, class_index, gradients=needs_grad)
    raw = eigen_projection(p.acts) if weigh is None else (weigh(p, model)[:, None, None] * p.acts).sum(0)
    coarse = torch.relu(raw).cpu().numpy()
    note = f"{title} at {p.name}{p.where} ({p.acts.shape[1]}x{p.acts.shape[2]} map)"
    if weigh is None:
        note += "; the same map for every class"
    if float(coarse.max()) <= 0:
        note += "; the class gets no positive evidence at this layer (the map is empty)"
    peak = float(coarse.max())
    coarse = coarse / peak if peak > 0 else coarse  # (pytorch-grad-cam min-max scales: the same up to an offset)
    heat = np.clip(upsample(coarse, tuple(p.shown.shape[:2])), 0, 1)
    return Explanation(method, model.id, p.shown, heatmap=heat.astype(np.float32), layer=p.name,
                       class_index=p.index, class_label=class_label(model, p.index), top5=top5(model, p.logits[0]),
                       note=note, data={"cam": coarse})


def gradcam(model: LoadedModel, image: np.ndarray, layer: str | None = None, *, class_index: int | None = None,
            **_) -> Explanation:
    """Grad-CAM at `layer` (default: a CNN's last stage output, a ViT's last block input norm) for `class_index`
    (default: the predicted class): ReLU(sum_c mean(dScore/dA_c) A_c), upsampled and divided by its maximum."""
    return cam(model, image, layer, class_index=class_index, method="gradcam")


# the other CAMs take the same arguments: `cam` with their method
gradcam_pp = functools.partial(cam, method="gradcam++")
scorecam = functools.partial(cam, method="scorecam")
eigencam = functools.partial(cam, method="eigencam")
