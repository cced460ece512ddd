"""The one model factory: `create_model(id, dataset)` for scratch architectures, Hub ids and folders."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import torch
from torch import nn

from core.errors import ModelError
from core.models.preprocess import Preprocess
from core.models.wrapper import LabelSpace, LoadedModel

if TYPE_CHECKING:
    from core.data.base import Dataset


@dataclass(frozen=True)
class InputShape:
    """What a scratch architecture is sized from: the dataset's channels, image side and classes."""

    channels: int = 3
    size: int = 64
    num_classes: int = 10


DEFAULT_SHAPE = InputShape()  # the `shapes` dataset: what `models --json` reports sizes for
TORCHVISION_PREFIX = "torchvision:"  # torchvision:resnet18 -> torchvision's ImageNet weights
TIMM_PREFIX = "timm:"  # timm:convnext_tiny -> timm's pretrained weights
MAX_SCRATCH_SIDE = 224  # a folder of 4000-px photos trains scratch models at 224 px, not at 4000


@dataclass(frozen=True)
class ScratchSpec:
    id: str
    name: str
    family: str
    build: Callable[[InputShape], nn.Module]

    @property
    def citation(self) -> str:
        return (self.build.__doc__ or "").strip()


_SCRATCH: dict[str, ScratchSpec] = {}


def register_scratch(id: str, *, name: str, family: str = "cnn"):
    """Decorator: register `build(shape) -> nn.Module` as a scratch architecture; its docstring cites the source."""

    def wrap(build: Callable[[InputShape], nn.Module]):
        if id in _SCRATCH:
            raise ValueError(f"model id {id!r} registered twice")
        _SCRATCH[id] = ScratchSpec(id=id, name=name, family=family, build=build)
        return build

    return wrap


def scratch_specs() -> list[ScratchSpec]:
    import core.models.scratch  # noqa: F401  (registers the architectures)

    return list(_SCRATCH.values())


def input_shape_for(dataset: "Dataset | None", size: int | None = None) -> InputShape:
    """What a scratch model is built for on `dataset`: its channels and classes, at the dataset's
    image side (capped at 224) or at `size` when training asks for another resolution."""
    if dataset is None:
        return DEFAULT_SHAPE if size is None else InputShape(DEFAULT_SHAPE.channels, size, DEFAULT_SHAPE.num_classes)
    side = min(dataset.image_size[0], MAX_SCRATCH_SIDE) if dataset.image_size else DEFAULT_SHAPE.size
    side = size or side
    return InputShape(channels=dataset.channels, size=side, num_classes=dataset.num_classes)


def scratch_preprocess(shape: InputShape) -> Preprocess:
    c = shape.channels
    return Preprocess(size=(shape.size, shape.size), mean=(0.5,) * c, std=(0.5,) * c, resize=shape.size, channels=c)


def build_scratch(model_id: str, shape: InputShape = DEFAULT_SHAPE, *, seed: int = 0,
                  class_names: list[str] | None = None, wnids: list[str] | None = None) -> LoadedModel:
    """A freshly initialised scratch architecture; the seed makes its weights (and digest) reproducible."""
    specs = {s.id: s for s in scratch_specs()}
    spec = specs[model_id]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = spec.build(shape)
    names = class_names or [f"class {i}" for i in range(shape.num_classes)]
    return LoadedModel(
        id=model_id, name=spec.name, family=spec.family, source="scratch", module=module,
        preprocess=scratch_preprocess(shape), labels=LabelSpace(names, wnids), citation=spec.citation,
    )


def create_model(model_id: str, dataset: "Dataset | None" = None, *, seed: int = 0,
                 size: int | None = None, store=None) -> LoadedModel:
    """Resolve any `--model` value: a scratch id (sized from `dataset`, or built for `size`-pixel
    images), a local folder, or a Hub id."""
    from core.hosted import check_model, is_hosted

    check_model(model_id)  # hosted mode: allow-listed ids only, no folders
    hosted = is_hosted()
    scratch = {s.id for s in scratch_specs()}
    if model_id in scratch:
        shape = input_shape_for(dataset, size)
        return build_scratch(model_id, shape, seed=seed,
                             class_names=dataset.classes if dataset else None,
                             wnids=dataset.wnids if dataset else None)
    from core.models import pretrained

    if model_id.startswith(TORCHVISION_PREFIX):
        from core.models.torchvision_models import load_torchvision

        return load_torchvision(model_id[len(TORCHVISION_PREFIX):])
    if model_id.startswith(TIMM_PREFIX):
        from core.models.timm_models import load_timm

        return load_timm(model_id[len(TIMM_PREFIX):])
    from core.train import runs

    if hosted:  # the id names a run of the store or a Hub model, never a folder that happens to share its name
        return runs.load_trained(model_id, store) if runs.is_run_id(model_id) else pretrained.load_hub(model_id)
    path = Path(model_id).expanduser()
    if runs.is_run_id(model_id) and not path.exists() or path.is_dir() and runs.is_run_folder(path):
        return runs.load_trained(model_id, store)  # run ids are looked up in `store` (default: the settings')
    if path.is_dir():
        return pretrained.load_local(path)
    if path.is_file():
        raise ModelError(f"{model_id} is a file; --model needs a model id or a model folder (save_pretrained form)")
    if pretrained.looks_like_hub_id(model_id):
        return pretrained.load_hub(model_id)
    if model_id.startswith((".", "/", "~")) or "\\" in model_id:
        raise ModelError(f"model folder {model_id} does not exist")
    raise ModelError(
        f"unknown model {model_id!r}; scratch models: {', '.join(sorted(scratch))}; "
        "or a Hugging Face id like google/vit-base-patch16-224, or a path to a local model folder"
    )
