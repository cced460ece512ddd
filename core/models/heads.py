"""A new classification head for a dataset's classes: how a pretrained model is fine-tuned here.

The head is found through the model's own API, never by guessing from layer widths:
  `head_names`        dotted paths a module declares itself (this repo's scratch models, core.models.scratch and
                      core.models.inception);
  `get_classifier()`  timm models (a tuple for distilled models: both heads);
  attribute paths     transformers' `classifier` (and DeiT's / LeViT's distillation heads), torchvision's `fc`
                      (ResNet, GoogLeNet, Inception-v3), `classifier` (AlexNet, VGG, MobileNet, EfficientNet,
                      ConvNeXt: its last Linear), `head` (Swin), `heads.head` (ViT), plus GoogLeNet's and
                      Inception-v3's auxiliary classifiers, which predict the same classes.
A path that names a container (transformers ResNet's `classifier` = Flatten + Linear) means its last Linear.
"""
from __future__ import annotations

import copy
import dataclasses

import torch
from torch import nn

from core.errors import ModelError
from core.models.dropout import Dropout
from core.models.wrapper import LabelSpace, LoadedModel

HEAD_PATHS = ("fc", "classifier", "head", "heads.head", "cls_classifier", "distillation_classifier",
              "classifier_distill")
AUX_HEAD_PATHS = ("aux1.fc2", "aux2.fc2", "AuxLogits.fc")


def _declared_paths(module: nn.Module) -> list[str]:
    """The paths of the layers that produce class scores, as the model's API names them."""
    declared = getattr(module, "head_names", None)
    if declared:
        return list(declared)
    get_classifier = getattr(module, "get_classifier", None)
    if callable(get_classifier):  # timm
        heads = get_classifier()
        heads = heads if isinstance(heads, (tuple, list)) else (heads,)
        names = {id(m): n for n, m in module.named_modules()}
        return [names[id(h)] for h in heads if id(h) in names]
    return [p for p in HEAD_PATHS + AUX_HEAD_PATHS if _submodule(module, p) is not None]


def _submodule(module: nn.Module, path: str) -> nn.Module | None:
    try:
        return module.get_submodule(path)
    except AttributeError:  # no such attribute, or None (torchvision's GoogLeNet without aux heads)
        return None


def classifier_layers(module: nn.Module, num_classes: int) -> list[tuple[str, nn.Module]]:
    """(path, layer) for each layer that produces the `num_classes` class scores: the final head's Linear, the
    auxiliary heads' Linears, and a BatchNorm1d over the scores a head declares (the leaves study's CNN)."""
    found, seen = [], set()
    for path in _declared_paths(module):
        layer = _submodule(module, path)
        if layer is not None and not isinstance(layer, (nn.Linear, nn.BatchNorm1d)):
            inner = [(f"{path}.{n}", m) for n, m in layer.named_modules() if isinstance(m, nn.Linear)]
            path, layer = inner[-1] if inner else (path, None)
        if layer is None or id(layer) in seen:
            continue
        width = layer.out_features if isinstance(layer, nn.Linear) else layer.num_features
        if width == num_classes:
            found.append((path, layer))
            seen.add(id(layer))
    return found


def _new_layer(old: nn.Module, classes: int, hidden: int | None, dropout: float) -> nn.Module:
    if isinstance(old, nn.BatchNorm1d):
        new: nn.Module = nn.BatchNorm1d(classes, eps=old.eps, momentum=old.momentum, affine=old.affine,
                                        track_running_stats=old.track_running_stats)
    elif hidden is None:
        new = nn.Linear(old.in_features, classes)
    else:
        new = nn.Sequential(nn.Linear(old.in_features, hidden), nn.ReLU(inplace=True), Dropout(dropout),
                            nn.Linear(hidden, classes))
    like = next(iter(old.parameters()), None)
    if like is None:
        like = next(iter(old.buffers()), None)
    return new.to(device=like.device, dtype=like.dtype) if like is not None else new


def with_new_head(model: LoadedModel, classes: list[str], *, wnids: list[str] | None = None,
                  hidden: int | None = None, dropout: float = 0.3, freeze_backbone: bool = False,
                  seed: int = 0) -> LoadedModel:
    """A copy of `model` whose head predicts `classes`; `model` itself is left as it was (it may be
    shared, e.g. held in a cache).

    hidden=None: one Linear (in_features -> classes). hidden=512: the leaves study's head,
    Linear(in, 512) - ReLU - Dropout(0.3) - Linear(512, classes). freeze_backbone: only the new
    head trains (the leaves study's frozen DeiT). The old head's weights are discarded; auxiliary heads
    (GoogLeNet's) get new heads too.
    """
    module = copy.deepcopy(model.module)
    layers = classifier_layers(module, len(model.labels))
    if not layers:
        raise ModelError(
            f"found no classification head with {len(model.labels)} outputs in {model.id} (looked for head_names, "
            f"timm's get_classifier() and {', '.join(HEAD_PATHS + AUX_HEAD_PATHS)})"
        )
    if freeze_backbone:
        for p in module.parameters():
            p.requires_grad_(False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for path, old in layers:
            parent_path, _, attr = path.rpartition(".")
            parent = module.get_submodule(parent_path) if parent_path else module
            setattr(parent, attr, _new_layer(old, len(classes), hidden, dropout))
    if isinstance(getattr(module, "num_classes", None), int):  # timm reads its own count (reset_classifier does this)
        module.num_classes = len(classes)
    config = getattr(module, "config", None)
    if config is not None and hasattr(config, "num_labels"):  # keep transformers' view of the head honest
        config.id2label = dict(enumerate(classes))
        config.label2id = {c: i for i, c in enumerate(classes)}
    head = "leaves-study head" if hidden else "linear head"
    return dataclasses.replace(
        model, id=f"{model.id}+head{len(classes)}", name=f"{model.name} + new {head} ({len(classes)} classes)",
        module=module, labels=LabelSpace(list(classes), wnids), _digest=None, _flops=None,
    )
