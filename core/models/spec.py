"""What a scratch architecture is: its input shape and its registry entry (below the factory).

`core/models/scratch.py` registers the architectures with `register_scratch`; `core/models/registry.py`
(the factory) builds them. This module knows neither, so both can import it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from torch import nn

if TYPE_CHECKING:  # type hints only: the factory passes a Dataset, this module reads three of its fields
    from core.data.base import Dataset

MAX_SCRATCH_SIDE = 224  # a folder of 4000-px photos trains scratch models at 224 px, not at 4000


@dataclass(frozen=True)
class InputShape:
    """What a scratch architecture is sized from: the dataset's channels, image side and classes."""

    channels: int = 3
    size: int = 64
    num_classes: int = 10


DEFAULT_SHAPE = InputShape()  # the `shapes` dataset: what `models --json` reports sizes for


@dataclass(frozen=True)
class ScratchSpec:
    id: str
    name: str
    family: str
    build: Callable[[InputShape], nn.Module]
    # its own training recipe (Recipe field -> value: optimizer, learning rate, weight decay, warm-up, ...), from its
    # paper or reference code scaled to the lab's budgets (the docstring says how); what the arena trains it with
    recipe: dict = field(default_factory=dict)

    @property
    def citation(self) -> str:
        return (self.build.__doc__ or "").strip()


SCRATCH: dict[str, ScratchSpec] = {}  # filled by core/models/scratch.py as it is imported


def register_scratch(id: str, *, name: str, family: str = "cnn", recipe: dict | None = None):
    """Decorator: register `build(shape) -> nn.Module` as a scratch architecture; its docstring cites the source
    (and where `recipe` came from)."""

    def wrap(build: Callable[[InputShape], nn.Module]):
        if id in SCRATCH:
            raise ValueError(f"model id {id!r} registered twice")
        SCRATCH[id] = ScratchSpec(id=id, name=name, family=family, build=build, recipe=dict(recipe or {}))
        return build

    return wrap


def input_shape_for(dataset: Dataset | None, size: int | None = None) -> InputShape:
    """What a scratch model is built for on `dataset`: its channels and classes, at the dataset's
    image side (capped at 224) or at `size` when training asks for another resolution."""
    if dataset is None:
        return DEFAULT_SHAPE if size is None else InputShape(DEFAULT_SHAPE.channels, size, DEFAULT_SHAPE.num_classes)
    side = min(dataset.image_size[0], MAX_SCRATCH_SIDE) if dataset.image_size else DEFAULT_SHAPE.size
    side = size or side
    return InputShape(channels=dataset.channels, size=side, num_classes=dataset.num_classes)
