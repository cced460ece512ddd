"""The one model factory: `create_model(ref, dataset)` builds whatever a model reference names.

core/models/reference.py decides what a reference is (and whether hosted mode offers it); this module
builds it: a scratch architecture sized from the dataset, a trained run (its architecture rebuilt, its
weights loaded), a Hub or local `save_pretrained` model, a torchvision or timm model.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from core.errors import ModelError
from core.models import pretrained
from core.models.heads import with_new_head
from core.models.reference import ModelKind, ModelRef, resolve
from core.models.scratch import build_scratch
from core.models.spec import InputShape, input_shape_for
from core.models.timm_models import LOCAL_PREFIX, is_timm_folder, load_timm
from core.models.torchvision_models import load_torchvision
from core.models.trained import WEIGHTS, read_run, run_folder
from core.models.weights import load_tensors
from core.models.wrapper import LabelSpace, LoadedModel
from core.store import Store

if TYPE_CHECKING:  # type hints only: a dataset sizes scratch models, its type is not needed to build one
    from core.data.base import Dataset


def create_model(ref: str | ModelRef, dataset: "Dataset | None" = None, *, seed: int = 0,
                 size: int | None = None, store: Store | None = None) -> LoadedModel:
    """Build any `--model` value: a scratch id (sized from `dataset`, or built for `size`-pixel images),
    a trained run (looked up in `store`, default the settings'), a local folder, or a pretrained id."""
    ref = resolve(ref)
    if ref.kind is ModelKind.SCRATCH:
        shape = input_shape_for(dataset, size)
        return build_scratch(ref.name, shape, seed=seed, class_names=dataset.classes if dataset else None,
                             wnids=dataset.wnids if dataset else None)
    if ref.kind is ModelKind.TORCHVISION:
        return load_torchvision(ref.name)
    if ref.kind is ModelKind.TIMM:
        return load_timm(ref.name)
    if ref.kind is ModelKind.TRAINED:
        return load_trained(ref, store)
    if ref.kind is ModelKind.LOCAL:
        if is_timm_folder(ref.folder):  # timm's save_for_hf form: timm builds it (is_timm_folder says why)
            folder = ref.folder.resolve()
            return dataclasses.replace(load_timm(LOCAL_PREFIX + str(folder)), id=str(folder), source="local")
        return pretrained.load_local(ref.folder)
    return pretrained.load_hub(ref.name)


def load_trained(ref: str | ModelRef, store: Store | None = None) -> LoadedModel:
    """A trained run as a LoadedModel: its architecture as the run built it, its final weights, its labels."""
    ref = resolve(ref)
    if ref.kind is not ModelKind.TRAINED:
        raise ModelError(f"{ref.text} is not a trained run")
    folder = ref.folder or run_folder(store or Store(), ref.name)
    config = read_run(folder, ref.text)
    pre, classes, wnids = config.preprocess, config.classes, config.wnids
    try:
        if config.base_kind == "scratch":
            shape = InputShape(channels=pre.channels, size=pre.size[0], num_classes=len(classes))
            model = build_scratch(config.base_model, shape, class_names=classes, wnids=wnids)
        else:
            model = with_new_head(create_model(config.base_model), classes, wnids=wnids, hidden=config.head_hidden)
        tensors, _ = load_tensors(folder / WEIGHTS)
        model.module.load_state_dict(tensors)
    except (KeyError, TypeError, ValueError, RuntimeError, OSError) as e:
        raise ModelError(f"run {ref.text} cannot be loaded: {str(e).splitlines()[0][:200]}") from None
    model.module.eval()
    for p in model.module.parameters():
        p.requires_grad_(False)
    return dataclasses.replace(model, id=config.run_id, name=config.name, source="trained", preprocess=pre,
                               labels=LabelSpace(classes, wnids), _digest=None, _flops=None)
