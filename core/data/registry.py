"""Every dataset id the app knows, and `load_dataset(id_or_path)` for all of them."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.data import cue_conflict, embedded
from core.data.base import Dataset
from core.data.downloads import cifar
from core.data.folders import load_folder
from core.errors import DatasetError
from core.hosted import allowed_datasets, check_dataset, is_hosted


@dataclass(frozen=True)
class DatasetEntry:
    """What `datasets --json` lists, known without loading any images."""

    id: str
    name: str
    num_classes: int
    splits: tuple[str, ...]
    source: str
    load: Callable[[], Dataset]


def _cifar(dataset_id: str) -> Callable[[], Dataset]:
    return lambda: cifar(dataset_id)


ENTRIES: dict[str, DatasetEntry] = {
    e.id: e
    for e in (
        DatasetEntry("shapes", "Shapes (generated, 64x64)", 10, ("train", "val", "test"), "embedded", embedded.shapes_dataset),
        DatasetEntry("digits", "Digits (scikit-learn, 8x8)", 10, ("train", "val", "test"), "embedded", embedded.digits),
        DatasetEntry(embedded.TEXTURED_ID, "Shapes with class textures (generated, 64x64; cue-conflict splits)", 10,
                     tuple(cue_conflict.SPLIT_SIZES), "embedded", embedded.textured_shapes_dataset),
        DatasetEntry("shapes-silhouettes", "Shapes as flat silhouettes (shape cue only; cue-conflict splits)", 10,
                     tuple(cue_conflict.SPLIT_SIZES), "embedded",
                     lambda: embedded.textured_shapes_dataset("shapes-silhouettes")),
        DatasetEntry("shapes-texture-only", "Class textures without shapes (texture cue only; cue-conflict "
                     "splits)", 10, tuple(cue_conflict.SPLIT_SIZES), "embedded",
                     lambda: embedded.textured_shapes_dataset("shapes-texture-only")),
        DatasetEntry("cifar10", "CIFAR-10", 10, ("train", "test"), "download", _cifar("cifar10")),
        DatasetEntry("cifar100", "CIFAR-100", 100, ("train", "test"), "download", _cifar("cifar100")),
    )
}
DEFAULT_DATASET = "shapes"


def default_dataset() -> str:
    """What pages fall back on (bundled examples, a scratch model's label space): `shapes`, or in hosted
    mode the first allow-listed dataset when `shapes` is not allowed."""
    allowed = allowed_datasets()
    return allowed[0] if is_hosted() and DEFAULT_DATASET not in allowed else DEFAULT_DATASET


def list_datasets() -> list[DatasetEntry]:
    return list(ENTRIES.values())


def recorded_id(dataset: str | Path) -> str:
    """The id `load_dataset(dataset)` carries, and its runs and evaluations record, without loading it: a
    registered or sized id as it is, a folder as its resolved path (as `load_folder` names it)."""
    key = str(dataset)
    if key in ENTRIES or embedded.parse_sized(key) is not None:
        return key
    return str(Path(key).expanduser().resolve())


def load_dataset(dataset: str | Path) -> Dataset:
    """A dataset by registered id, or a folder in any supported layout (detected). In hosted mode,
    only the allow-listed ids (core/hosted.py)."""
    key = str(dataset)
    check_dataset(key)
    if key in ENTRIES:
        return ENTRIES[key].load()
    if (sized := embedded.parse_sized(key)) is not None:  # shapes-20000: a generated dataset at any training size
        base, n = sized
        return embedded.sized_shapes_dataset(n) if base == "shapes" else embedded.textured_shapes_dataset(base, n)
    path = Path(key).expanduser()
    if path.exists():
        if not path.is_dir():
            raise DatasetError(f"{path} is a file; a dataset folder or one of these ids is needed: {', '.join(ENTRIES)}")
        return load_folder(path)
    if "/" in key or "\\" in key or key.startswith((".", "~")):
        raise DatasetError(f"dataset folder {key} does not exist")
    raise DatasetError(f"unknown dataset {key!r}; choose one of: {', '.join(ENTRIES)} (or shapes-N, "
                       "shapes-textured-N, ...: a generated dataset with N training images), or give a folder path")
