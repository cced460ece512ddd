"""What every dataset answers, whatever its layout: classes, splits, images, a fingerprint."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from core.data.decode import decode_image
from core.errors import DatasetError

LIMIT_SEED = 0  # --limit N takes the first N of one fixed permutation, so limited runs still cover classes


@dataclass
class Split:
    """The images of one split: integer labels, and either in-memory pixels or image files.

    `images` is uint8 (N, H, W, C); `paths` are files decoded with the one safe decoder.
    `index` maps each row back to its position in the full split (a subset keeps it). `transform(image, index)`,
    when set, is applied to each image as it is read (`mapped`): `load`, and `rows` for slices of pixels in memory.
    """

    labels: np.ndarray
    images: np.ndarray | None = None
    paths: list[Path] | None = None
    index: np.ndarray | None = None
    transform: Callable[[np.ndarray, int], np.ndarray] | None = None

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.index is None:
            self.index = np.arange(len(self.labels), dtype=np.int64)
        n = len(self.images) if self.images is not None else len(self.paths or [])
        if n != len(self.labels):
            raise ValueError(f"{n} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    def load(self, i: int) -> np.ndarray:
        """Image i as uint8 (H, W, C)."""
        image = self.images[i] if self.images is not None else decode_image(self.paths[i])
        return image if self.transform is None else self.transform(image, int(self.index[i]))

    def rows(self, start: int, stop: int) -> np.ndarray:
        """In-memory images start..stop as uint8 (N, H, W, C), transformed when the split is mapped."""
        chunk = self.images[start:stop]
        if self.transform is None or not len(chunk):
            return chunk
        return np.stack([self.transform(im, int(j)) for im, j in zip(chunk, self.index[start:stop])])

    def path(self, i: int) -> str | None:
        return str(self.paths[i]) if self.paths is not None else None

    def limited(self, limit: int | None) -> "Split":
        """A deterministic subset of `limit` images (a fixed permutation, so classes stay mixed)."""
        if limit is None or limit >= len(self):
            return self
        idx = np.sort(np.random.default_rng(LIMIT_SEED).permutation(len(self))[:limit])
        return self.take(idx)

    def take(self, idx: np.ndarray) -> "Split":
        return Split(
            labels=self.labels[idx],
            images=self.images[idx] if self.images is not None else None,
            paths=[self.paths[i] for i in idx] if self.paths is not None else None,
            index=self.index[idx],
            transform=self.transform,
        )

    def mapped(self, fn: Callable[[np.ndarray, int], np.ndarray]) -> "Split":
        """The same images passed through `fn(image, index in the full split)` as each is read (a corruption: batch
        by batch, so an evaluation reports progress and can stop while it corrupts). `fn` must be picklable (a
        module-level function or a partial of one): loader worker processes receive it."""
        if self.transform is not None:
            raise ValueError("a split is mapped once")
        return Split(self.labels, images=self.images, paths=self.paths, index=self.index, transform=fn)


@dataclass
class Dataset:
    """A dataset as the rest of the code sees it. Layout loaders build these; nothing else does."""

    id: str
    name: str
    source: str  # "embedded", "folder" or "download"
    layout: str  # e.g. "digits", "shapes", "tiny-imagenet", "imagenet-kaggle", "image-folder", "csv-folder"
    classes: list[str]  # human-readable names, index = label
    split_loaders: dict[str, Callable[[], Split]]
    fingerprint_fn: Callable[[], str]
    # per split, for layouts where scanning every split is costly (a val run need not stat train/)
    split_fingerprint_fn: Callable[[str], str] | None = None
    channels: int = 3
    image_size: tuple[int, int] | None = None  # native (H, W) when all images share it
    wnids: list[str] | None = None  # WordNet ids, where the layout has them
    # per class, the ImageNet WordNet ids it pools (the cue-conflict stimuli's 16 categories): an ImageNet model is
    # scored by the mean probability of each class's ImageNet classes (core/labels.py)
    wnid_groups: list[list[str]] | None = None
    root: Path | None = None
    _split_cache: dict[str, Split] = field(default_factory=dict, repr=False)
    _fingerprint: str | None = field(default=None, repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def splits(self) -> list[str]:
        return list(self.split_loaders)

    def split(self, name: str) -> Split:
        if name not in self.split_loaders:
            raise DatasetError(f"dataset {self.id!r} has no split {name!r}; its splits: {', '.join(self.splits)}")
        if name not in self._split_cache:
            self._split_cache[name] = self.split_loaders[name]()
        return self._split_cache[name]

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = self.fingerprint_fn()
        return self._fingerprint

    def split_fingerprint(self, name: str) -> str:
        """Changes when the files (or labels) of split `name` change; what evaluation keys use."""
        if name not in self.split_loaders:
            self.split(name)  # raises the DatasetError that names the splits
        if self.split_fingerprint_fn is not None:
            return self.split_fingerprint_fn(name)
        return f"{self.fingerprint()}:{name}"

    def default_split(self) -> str:
        for name in ("val", "test", "train"):
            if name in self.split_loaders:
                return name
        return self.splits[0]


def fingerprint_files(root: Path, files: list[Path], extra: str = "") -> str:
    """Digest of the file list with sizes and modification times: changes when any file changes."""
    h = hashlib.sha256(extra.encode())
    for f in sorted(files):
        st = f.stat()
        h.update(f"{f.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def fingerprint_text_files(files: list[Path]) -> str:
    """Digest of the contents of small annotation files."""
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]
