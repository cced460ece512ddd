"""A CNN's theoretical receptive field, conv layer by conv layer, for the chart beside ViT attention distances."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from core.explain.attention import attention_distances
from core.explain.base import first_tensor, forward_hooks, model_input
from core.models.wrapper import LoadedModel

_WINDOWED = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)


def _pair(v) -> int:
    return int(v[0] if isinstance(v, tuple) else v)


def receptive_fields(model: LoadedModel, image: np.ndarray | None = None) -> list[dict]:
    """Per conv / pool layer in forward order: kernel, stride, dilation, and the receptive field r and jump j (in
    input pixels) of its output, by r_out = r_in + (k - 1) d j_in, j_out = j_in s (Araujo et al. 2019).

    r_in and j_in follow the tensor the layer reads (through layers that keep the map's size, and a block's
    output); a tensor made outside any module (a residual sum inside a block) takes the largest field seen at
    its map size: the deepest path, which is the theoretical field."""
    if image is None:
        x = torch.zeros(1, model.preprocess.channels, *model.preprocess.size, device=model.device)
    else:
        x, _ = model_input(model, image)
    known: dict[int, tuple[float, float]] = {id(x): (1.0, 1.0)}
    keep: list[torch.Tensor] = [x]
    at_size: dict[tuple[int, int], tuple[float, float]] = {tuple(x.shape[-2:]): (1.0, 1.0)}
    rows: list[dict] = []
    modules = {n: m for n, m in model.module.named_modules() if n}

    def lookup(t: torch.Tensor) -> tuple[float, float]:
        if id(t) in known:
            return known[id(t)]
        hw = tuple(t.shape[-2:])
        if hw in at_size:
            return at_size[hw]
        return (1.0, x.shape[-2] / max(1, hw[0]))

    def remember(t: torch.Tensor, rj: tuple[float, float]) -> None:
        known[id(t)] = rj
        keep.append(t)
        if t.ndim == 4:
            hw = tuple(t.shape[-2:])
            if rj[0] >= at_size.get(hw, (0.0, 0.0))[0]:
                at_size[hw] = rj

    def hook_for(name):
        def hook(m, inp, out):
            t_in, t_out = (inp[0] if inp and isinstance(inp[0], torch.Tensor) else None), first_tensor(out)
            if t_in is None or t_out is None or t_in.ndim != 4 or t_out.ndim != 4:
                return
            if isinstance(m, _WINDOWED):
                k, s = _pair(m.kernel_size), _pair(m.stride)
                d = _pair(getattr(m, "dilation", 1))
                r, j = lookup(t_in)
                r, j = r + (k - 1) * d * j, j * s
                remember(t_out, (r, j))
                rows.append({"layer": name, "kind": type(m).__name__, "kernel": k, "stride": s, "dilation": d,
                             "receptive_field_px": float(r), "jump_px": float(j),
                             "output_size": int(t_out.shape[-2])})
            elif not list(m.children()):  # a leaf that keeps the map's size (ReLU, BatchNorm) keeps the field
                if t_out.shape[-2:] == t_in.shape[-2:]:
                    remember(t_out, lookup(t_in))
            elif id(t_out) not in known:  # a block's output (hooks fire inner-first): its deepest path's field
                remember(t_out, lookup(t_out))
        return hook

    with forward_hooks(modules, hook_for), torch.no_grad():
        model.logits(x)
    return rows


def layer_reach(model: LoadedModel, image: np.ndarray) -> list[dict]:
    """How far each layer of `model` sees, in forward order: a convolution's theoretical receptive field (CNNs and
    hybrids) and then each attention block's mean attention distance per head (ViTs and hybrids), in the model's
    input pixels and as a share of its input's longer side, so models run at different sizes compare."""
    side = max(model.preprocess.size)
    convs = [] if model.family == "vit" else [r for r in receptive_fields(model, image) if r["kind"].startswith("Conv")]
    rows = [{"depth": i + 1, "pixels": r["receptive_field_px"], "what": "receptive field"} for i, r in enumerate(convs)]
    if model.family != "cnn":
        rows += [{"depth": len(convs) + r["layer"] + 1, "head": r["head"], "pixels": r["mean_distance_px"],
                  "what": "attention distance"} for r in attention_distances(model, image)]
    return [{"model": model.name, "family": model.family, **r, "share": r["pixels"] / side} for r in rows]
