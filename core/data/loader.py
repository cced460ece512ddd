"""Batches of images in a model's geometry, from memory or from files; unreadable files are reported, not fatal."""
from __future__ import annotations

import os

import numpy as np
import torch

from core.data.base import Split
from core.errors import ImageDecodeError
from core.models.preprocess import Preprocess


def iter_batches(data: Split, pre: Preprocess, batch_size: int, dev: str, num_workers: int | None):
    """Yield (uint8 batch (N, C, H, W) in the model's geometry, positions in `data`, messages of skipped
    files), in `data`'s order. In-memory splits are sliced; files are decoded in worker processes."""
    if data.images is not None:  # in memory: slice, no workers needed
        for s in range(0, len(data), batch_size):
            chunk = data.images[s:s + batch_size]
            if pre.passthrough(chunk.shape[1], chunk.shape[2], chunk.shape[3]):
                batch = torch.from_numpy(np.ascontiguousarray(chunk)).permute(0, 3, 1, 2)
            else:
                batch = torch.stack([pre.geometry(img) for img in chunk])
            yield batch, np.arange(s, s + len(chunk)), []
        return
    workers = _default_workers(len(data), batch_size) if num_workers is None else num_workers
    loader = torch.utils.data.DataLoader(
        _FileImages(data, pre), batch_size=batch_size, num_workers=workers, collate_fn=_collate,
        pin_memory=dev == "cuda", persistent_workers=False,
    )
    yield from loader


def _default_workers(n: int, batch_size: int) -> int:
    if n <= 2 * batch_size:
        return 0  # starting workers costs more than it saves
    return max(1, min(4, (os.cpu_count() or 1)))


class _FileImages(torch.utils.data.Dataset):
    """Decode + resize in the worker; a file that cannot be read is reported, not fatal."""

    def __init__(self, data: Split, pre: Preprocess):
        self.data, self.pre = data, pre

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int):
        try:
            return self.pre.geometry(self.data.load(i)), i, None
        except ImageDecodeError as e:
            return None, i, str(e)


def _collate(items):
    good = [(x, i) for x, i, err in items if err is None]
    bad = [err for _, _, err in items if err is not None]
    if not good:
        return torch.zeros(0), np.zeros(0, np.int64), bad
    return torch.stack([x for x, _ in good]), np.array([i for _, i in good], np.int64), bad
