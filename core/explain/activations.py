"""Feature maps: what one named layer outputs for one image, channel by channel (ViTs: tokens on the patch grid)."""
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
    first_tensor,
    forward_hooks,
    model_input,
    normalise,
    prefix_tokens,
    top5,
)
from core.explain.layers import default_layer
from core.models.wrapper import LoadedModel


def layer_output(model: LoadedModel, x: torch.Tensor, layer: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The logits and `layer`'s output for batch `x` (a copy taken as the layer returns it, before any in-place
    op downstream), via a forward hook that is removed before this returns."""
    module = find_layer(model, layer)
    got: dict[str, torch.Tensor] = {}

    def hook_for(name):
        def hook(m, inp, out):
            t = first_tensor(out)
            if t is not None and name not in got:
                got[name] = t.detach().clone()
        return hook

    with forward_hooks({layer: module}, hook_for), torch.no_grad():
        logits = model.logits(x)
    if layer not in got:
        raise ExplainError(f"layer {layer!r} of {model.id} does not run when the model classifies an image "
                           "(an auxiliary head?); pick another layer")
    return logits, got[layer]


def feature_maps(model: LoadedModel, image: np.ndarray, layer: str | None = None, *, max_channels: int = 64,
                 class_index: int | None = None, **_) -> Explanation:
    """`layer`'s activations as a grid, the `max_channels` most active channels (mean activation) first, each
    normalised on its own."""
    x, shown = model_input(model, image)
    name = layer or default_layer(model, x)
    logits, out = layer_output(model, x, name)
    maps = as_maps(out, prefix_tokens(model.module), tuple(shown.shape[:2]), name).float().cpu()
    order = maps.mean(dim=(1, 2)).argsort(descending=True)[:max_channels].tolist()
    tiles = [normalise(maps[i].numpy()) for i in order]
    idx = check_class(model, class_index, logits)
    c, h, w = maps.shape
    return Explanation("feature-maps", model.id, shown, tiles=tiles, tile_labels=[f"channel {i}" for i in order],
                       columns=min(8, len(tiles)), layer=name, class_index=idx, class_label=class_label(model, idx),
                       top5=top5(model, logits[0]),
                       note=f"{c} channels of {h}x{w}, the {len(tiles)} most active shown",
                       data={"maps_shape": (c, h, w), "channels": order})
