"""Datasets fetched once into the cache when online: CIFAR-10 and CIFAR-100 (torchvision's sources).

We fetch the *binary* CIFAR archives rather than the "python version" torchvision's classes
read, because that one is a pickle and nothing foreign is ever unpickled here. The download
uses torchvision's own downloader with the archives' published MD5s.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.data.base import Dataset, Split, fingerprint_files
from core.errors import DatasetError
from core.settings import get_settings


@dataclass(frozen=True)
class CifarSpec:
    id: str
    name: str
    url: str
    md5: str
    folder: str  # what the archive extracts to
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    names_file: str
    label_bytes: int  # CIFAR-100 records carry (coarse, fine) labels; we use fine
    num_classes: int


CIFAR = {
    "cifar10": CifarSpec(
        "cifar10", "CIFAR-10", "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
        "c32a1d4ab5d03f1284b67883e8d87530", "cifar-10-batches-bin",
        tuple(f"data_batch_{i}.bin" for i in range(1, 6)), ("test_batch.bin",), "batches.meta.txt", 1, 10),
    "cifar100": CifarSpec(
        "cifar100", "CIFAR-100", "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
        "03b5dce01913d631647c71ecec9e9cb8", "cifar-100-binary",
        ("train.bin",), ("test.bin",), "fine_label_names.txt", 2, 100),
}


def download_dir() -> Path:
    return get_settings().cache_dir / "downloads"


def read_cifar_binary(files: list[Path], label_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """Records of `label_bytes` label bytes + 3072 pixel bytes (R, G, B planes of 32x32)."""
    raw = np.concatenate([np.fromfile(f, dtype=np.uint8) for f in files])
    rec = label_bytes + 3072
    if raw.size % rec:
        raise DatasetError(f"{files[0].parent} holds a damaged CIFAR file (size not a multiple of {rec})")
    raw = raw.reshape(-1, rec)
    labels = raw[:, label_bytes - 1].astype(np.int64)  # the last label byte is the fine label
    images = raw[:, label_bytes:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def ensure_cifar(spec: CifarSpec, root: Path | None = None) -> Path:
    """The extracted folder, downloading it first if needed; offline gives a clear message."""
    root = root or download_dir()
    folder = root / spec.folder
    if all((folder / f).is_file() for f in spec.train_files + spec.test_files + (spec.names_file,)):
        return folder
    # lazy: torchvision costs ~1.5 s to import, and listing or reading datasets needs no torch
    from torchvision.datasets.utils import download_and_extract_archive

    try:
        download_and_extract_archive(spec.url, download_root=str(root), md5=spec.md5)
    except Exception as e:  # URLError, HTTPError, socket errors, bad checksum
        archive = spec.url.rsplit("/", 1)[-1]
        raise DatasetError(
            f"could not download {spec.name} ({type(e).__name__}: {e}). Offline? Copy {archive} "
            f"(from {spec.url}) into {root} and run again, or extract it there as {spec.folder}/"
        ) from None
    return folder


def cifar(dataset_id: str) -> Dataset:
    spec = CIFAR[dataset_id]
    folder = ensure_cifar(spec)
    names = [ln.strip() for ln in (folder / spec.names_file).read_text().splitlines() if ln.strip()]
    if len(names) != spec.num_classes:
        raise DatasetError(f"{folder / spec.names_file} lists {len(names)} classes, expected {spec.num_classes}")
    files = {"train": [folder / f for f in spec.train_files], "test": [folder / f for f in spec.test_files]}

    def load(split: str) -> Split:
        images, labels = read_cifar_binary(files[split], spec.label_bytes)
        return Split(images=images, labels=labels)

    return Dataset(
        id=spec.id, name=spec.name, source="download", layout="cifar-binary", classes=names,
        split_loaders={"train": lambda: load("train"), "test": lambda: load("test")},
        fingerprint_fn=lambda: fingerprint_files(folder, files["train"] + files["test"], extra=spec.id),
        channels=3, image_size=(32, 32), root=folder,
    )
