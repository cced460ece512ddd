"""Learned filters: a first conv (or a ViT's patch embedding) as RGB tiles, deeper convs as per-channel grids."""
from __future__ import annotations

import numpy as np
from torch import nn

from core.explain.base import ExplainError, Explanation, executed_convs, find_layer, model_input, normalise
from core.models.wrapper import LoadedModel


def one_weight_each(weight: np.ndarray) -> bool:
    """Whether each filter of a conv weight (out, in, kh, kw) is a single number: 1x1 on one input channel."""
    return weight[0].size == 1


def filter_tiles(weight: np.ndarray, *, max_filters: int = 64, max_channels: int = 8) -> tuple[list, list, int]:
    """Tiles for a conv weight (out, in, kh, kw): RGB per filter when in == 3, grey when in == 1, else a row of
    `max_channels` input-channel kernels per filter. Each filter is normalised on its own (min-max over all its
    values), so tiles compare shapes, not magnitudes across filters; filters of one weight each (1x1 on one
    channel, as a ViT's patch embedding on 8 px digits) share one scale, since a point's own range is empty."""
    out, cin = weight.shape[:2]
    n = min(out, max_filters)
    if one_weight_each(weight):
        bank = normalise(weight[:n, 0])
        return list(bank), [f"filter {i}" for i in range(n)], min(8, n) or 1
    if cin in (1, 3):
        tiles = [normalise(weight[i]).transpose(1, 2, 0) if cin == 3 else normalise(weight[i, 0]) for i in range(n)]
        return tiles, [f"filter {i}" for i in range(n)], min(8, n) or 1
    rows, cols = min(out, max(1, max_filters // max_channels)), min(cin, max_channels)
    tiles, labels = [], []
    for i in range(rows):
        w = normalise(weight[i, :cols])
        for c in range(cols):
            tiles.append(w[c])
            labels.append(f"filter {i}, in {c}")
    return tiles, labels, cols


def filters(model: LoadedModel, image: np.ndarray, layer: str | None = None, *, max_filters: int = 64,
            **_) -> Explanation:
    """The weights of `layer` (default: the first conv the forward pass runs: a CNN's stem, a ViT's patch
    embedding) as tiles. A model without convs (linear) shows its class templates (weight rows as images)."""
    x, shown = model_input(model, image)
    convs = executed_convs(model, x)
    note = ""
    if layer is None and not convs:
        return _templates(model, shown)
    name = layer or convs[0]
    module = find_layer(model, name)
    if not isinstance(module, nn.Conv2d):
        raise ExplainError(f"layer {name!r} of {model.id} is a {type(module).__name__}, not a convolution; "
                           f"filters are shown for conv layers such as {', '.join(convs[:4]) or '(none)'}")
    w = module.weight.detach().float().cpu().numpy()
    if module.groups > 1:
        note = f"grouped conv ({module.groups} groups): each filter sees {w.shape[1]} input channel(s)"
    tiles, labels, cols = filter_tiles(w, max_filters=max_filters)
    shape = "x".join(str(s) for s in (w.shape[2], w.shape[3], w.shape[1]))
    note = note or f"{w.shape[0]} filters of {shape}" + (f", first {min(w.shape[0], max_filters)} shown"
                                                          if w.shape[0] > max_filters else "")
    if one_weight_each(w):
        note += "; one weight each, so shown on one scale across the filters (black: the lowest, white: the highest)"
    return Explanation("filters", model.id, shown, tiles=tiles, tile_labels=labels, columns=cols, layer=name,
                       note=note, data={"weight_shape": tuple(w.shape)})


def _templates(model: LoadedModel, shown: np.ndarray) -> Explanation:
    c, (h, w) = model.preprocess.channels, model.preprocess.size
    linear = next((m for m in model.module.modules() if isinstance(m, nn.Linear)), None)
    if linear is None or linear.in_features != c * h * w:
        raise ExplainError(f"{model.id} has no convolution layers, so it has no filters to show")
    weight = linear.weight.detach().float().cpu().reshape(-1, c, h, w).numpy()
    n = min(len(weight), 64)
    tiles = [normalise(weight[i]).transpose(1, 2, 0) if c == 3 else normalise(weight[i, 0]) for i in range(n)]
    names = model.labels.names
    return Explanation("filters", model.id, shown, tiles=tiles, tile_labels=[names[i] for i in range(n)],
                       columns=min(8, n), layer=None,
                       note="a linear model's filters are its class templates: one weight image per class")

