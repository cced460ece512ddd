"""What a model is, for the store's keys, without building it again.

An evaluation key needs a model's id, weights digest, revision, preprocessing and label space.
Building a scratch model to learn them costs more than reading the stored answer (ResNet-20:
about 4 ms of module construction and weight initialisation, against 1 ms for the store read), so
a process remembers the identity of each model it has built, under a token that names everything
the model is made from:

- scratch architectures: id, input shape, seed and the dataset's classes. The weights follow
  from these and the code, which cannot change under a running process.
- trained runs (of the store, or a run folder): the run folder and the size, mtime and inode of its weights and
  config files, so a run written again is built again.

Other sources (Hub ids, local folders, torchvision and timm names) have no token and are built
every time; their loading dominates a first run anyway.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.models.reference import ModelKind, ModelRef, resolve
from core.models.spec import input_shape_for
from core.models.trained import CONFIG, WEIGHTS, run_folder
from core.models.wrapper import LabelSpace, LoadedModel
from core.store import Store

if TYPE_CHECKING:  # type hints only: a dataset's classes and image size are read, its type is not needed
    from core.data.base import Dataset

MAX_REMEMBERED = 256


@dataclass(frozen=True)
class ModelIdentity:
    """The parts of a model that change its predictions (what `evaluation_key` fingerprints)."""

    id: str
    weights: str  # LoadedModel.weights_digest()
    revision: str | None
    preprocess: dict
    labels: LabelSpace

    @classmethod
    def of(cls, model: LoadedModel) -> "ModelIdentity":
        return cls(model.id, model.weights_digest(), model.revision, model.preprocess.key(), model.labels)


_REMEMBERED: OrderedDict[tuple, ModelIdentity] = OrderedDict()


def token(ref: str | ModelRef, dataset: "Dataset | None", store: Store | None = None, *,
          seed: int = 0) -> tuple | None:
    """A hashable name for everything `create_model(ref, dataset, seed=seed, store=store)` builds from, or
    None where there is none cheap enough to compute (then the model is built every time)."""
    ref = resolve(ref)
    if ref.kind is ModelKind.SCRATCH:
        shape = input_shape_for(dataset, None)
        classes = tuple(dataset.classes) if dataset else None
        wnids = tuple(dataset.wnids) if dataset and dataset.wnids else None
        return ("scratch", ref.name, shape, seed, classes, wnids)
    if ref.kind is ModelKind.TRAINED:
        folder = ref.folder or run_folder(store or Store(), ref.name)
        try:
            stats = [(f.st_size, f.st_mtime_ns, f.st_ino) for f in
                     ((folder / WEIGHTS).stat(), (folder / CONFIG).stat())]
        except OSError:
            return None  # not finished (or not there): create_model says why
        return ("trained", str(folder.resolve()), *stats)
    return None


def known(key: tuple | None) -> ModelIdentity | None:
    """The identity remembered under `key` (a `token`), if this process built that model before."""
    if key is None or (found := _REMEMBERED.get(key)) is None:
        return None
    _REMEMBERED.move_to_end(key)
    return found


def remember(key: tuple | None, model: LoadedModel) -> ModelIdentity:
    """The identity of the freshly built `model`, remembered under `key` when it has one."""
    ident = ModelIdentity.of(model)
    if key is not None:
        _REMEMBERED[key] = ident
        while len(_REMEMBERED) > MAX_REMEMBERED:
            _REMEMBERED.popitem(last=False)
    return ident
