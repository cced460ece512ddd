"""Which layer a view reads by default, and a hook that captures layers' outputs inside the autograd graph.

Grad-CAM and feature maps share both: a CNN's last stage, a token model's last LayerNorm whose patch
tokens reach the class score.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from core.explain.base import (
    ExplainError,
    convs_of,
    first_tensor,
    forward_hooks,
    prefix_tokens,
    token_grid,
    trace,
)
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


def default_layer(model: LoadedModel, x: torch.Tensor) -> str:
    """Grad-CAM's and feature maps' default: a CNN's last stage (see `last_stage`); a ViT's last block input norm
    (see `default_token_layer`)."""
    if model.family == "vit":
        return default_token_layer(model, x)
    ran = trace(model, x)
    convs = convs_of(ran)
    if not convs:
        raise ExplainError(f"{model.id} has no convolution or token layers: it has no feature maps (its filters "
                           "view shows its class templates)")
    return last_stage(ran, convs[-1])


def last_stage(ran: list[tuple[str, nn.Module, tuple[int, ...] | None]], conv: str) -> str:
    """The outermost module around the conv `conv` whose output is still that conv's feature map (a plain 4-D
    tensor with the same spatial size), from a `trace` of the forward pass: the output of the last stage, as
    pytorch-grad-cam's documentation picks it (torchvision's and timm's ResNets: `layer4`; transformers' ResNet:
    `resnet.encoder.stages.3`; GoogLeNet: `inception5b`). A residual block's last conv comes before the
    skip connection is added; its stage's output includes the skip path. Where no container qualifies (a max
    pool or a flatten follows, as in VGG's `features`), the conv itself."""
    shapes = {name: shape for name, _, shape in ran}
    target = shapes[conv]
    chosen, parts = conv, conv.split(".")
    for i in range(len(parts) - 1, 0, -1):
        name = ".".join(parts[:i])
        if name not in shapes:  # a container its parent iterates over (ModuleList, a stage's layers) never runs
            continue
        shape = shapes[name]
        if shape is None or target is None or len(shape) != 4 or shape[2:] != target[2:]:
            break
        chosen = name
    return chosen
