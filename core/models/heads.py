"""A new classification head for a dataset's classes: how a pretrained model is fine-tuned here."""
from __future__ import annotations

import copy
import dataclasses

import torch
from torch import nn

from core.errors import ModelError
from core.models.wrapper import LabelSpace, LoadedModel


def _classifier_linears(module: nn.Module, num_outputs: int) -> list[tuple[nn.Module, str, nn.Linear]]:
    """(parent, attribute, layer) for each Linear that produces the model's class scores
    (the final head, and auxiliary heads such as GoogLeNet's, which predict the same classes)."""
    found = []
    for parent in module.modules():
        for attr, child in parent.named_children():
            if isinstance(child, nn.Linear) and child.out_features == num_outputs:
                found.append((parent, attr, child))
    return found


def with_new_head(model: LoadedModel, classes: list[str], *, wnids: list[str] | None = None,
                  hidden: int | None = None, dropout: float = 0.3, freeze_backbone: bool = False,
                  seed: int = 0) -> LoadedModel:
    """A copy of `model` whose head predicts `classes`; `model` itself is left as it was (it may be
    shared, e.g. held in a cache).

    hidden=None: one Linear (in_features -> classes). hidden=512: the leaves study's head,
    Linear(in, 512) - ReLU - Dropout(0.3) - Linear(512, classes). freeze_backbone: only the new
    head trains (the leaves study's frozen DeiT). The old head's weights are discarded.
    """
    module = copy.deepcopy(model.module)
    layers = _classifier_linears(module, len(model.labels))
    if not layers:
        raise ModelError(f"found no Linear layer with {len(model.labels)} outputs in {model.id} to replace")
    if freeze_backbone:
        for p in module.parameters():
            p.requires_grad_(False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for parent, attr, old in layers:
            if hidden is None:
                new: nn.Module = nn.Linear(old.in_features, len(classes))
            else:
                new = nn.Sequential(nn.Linear(old.in_features, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                    nn.Linear(hidden, len(classes)))
            setattr(parent, attr, new.to(old.weight.device))
    config = getattr(module, "config", None)
    if config is not None and hasattr(config, "num_labels"):  # keep transformers' view of the head honest
        config.id2label = dict(enumerate(classes))
        config.label2id = {c: i for i, c in enumerate(classes)}
    head = "leaves-study head" if hidden else "linear head"
    return dataclasses.replace(
        model, id=f"{model.id}+head{len(classes)}", name=f"{model.name} + new {head} ({len(classes)} classes)",
        module=module, labels=LabelSpace(list(classes), wnids), _digest=None, _flops=None,
    )
