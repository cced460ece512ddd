"""Batches of images in a model's geometry, from memory or from files; unreadable files are reported, not fatal."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from core.data.base import Split
from core.data.transforms import Preprocess
from core.errors import ImageDecodeError
from core.settings import cpu_cores


def iter_batches(data: Split, pre: Preprocess, batch_size: int, dev: str, num_workers: int | None):
    """Yield (uint8 batch (N, C, H, W) in the model's geometry, positions in `data`, messages of skipped
    files), in `data`'s order. In-memory splits are sliced; files are decoded in worker processes."""
    if data.images is not None:  # in memory: slice, no workers needed
        for s in range(0, len(data), batch_size):
            chunk = data.rows(s, s + batch_size)
            if pre.passthrough(chunk.shape[1], chunk.shape[2], chunk.shape[3]):
                batch = torch.from_numpy(np.ascontiguousarray(chunk)).permute(0, 3, 1, 2)
            else:
                batch = pre.geometry_batch(chunk)
            yield batch, np.arange(s, s + len(chunk)), []
        return
    if dev == "cpu" and num_workers is None and len(data) > batch_size:
        yield from _decode_then_compute(data, pre, batch_size)
        return
    workers = _default_workers(len(data), batch_size) if num_workers is None else num_workers
    loader = torch.utils.data.DataLoader(
        _FileImages(data, pre), batch_size=batch_size, num_workers=workers, collate_fn=_collate,
        pin_memory=dev.startswith("cuda"), persistent_workers=False,
    )
    yield from loader


def _decode_then_compute(data: Split, pre: Preprocess, batch_size: int, channels_last: bool | None = None):
    """On the CPU the model and the decoding share the same cores, so they take turns: each batch is decoded,
    resized (and, when `channels_last` is not None, normalised straight into the float batch the model reads,
    in its layout) by one thread per core - Pillow and torch release the GIL, each thread's torch ops use one
    thread - then the model gets every core for it. Worker processes decoding ahead while the model runs
    would fight its threads for the cores, and an OpenMP region runs at the pace of its slowest thread."""
    images = _FileImages(data, pre)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    with ThreadPoolExecutor(cpu_cores(), initializer=torch.set_num_threads, initargs=(1,),
                            thread_name_prefix="decode") as pool:
        for s in range(0, len(data), batch_size):
            idx = range(s, min(len(data), s + batch_size))
            if channels_last is None:
                yield _collate(list(pool.map(images.__getitem__, idx)))
                continue
            out = torch.empty((len(idx), pre.channels, *pre.size), dtype=torch.float32, memory_format=layout)

            def fill(j: int):
                x, _i, err = images[idx[j]]
                if err is None:
                    with torch.inference_mode():  # `out` may be an inference tensor (made inside evaluate's mode)
                        pre.normalize_into(out[j], x)
                return err

            errors = list(pool.map(fill, range(len(idx))))
            ok = [j for j, e in enumerate(errors) if e is None]
            if len(ok) < len(idx):
                out = out[ok].contiguous(memory_format=layout)
            yield out, np.array([idx[j] for j in ok], np.int64), [e for e in errors if e is not None]


def iter_inputs(data: Split, pre: Preprocess, batch_size: int, dev: str, num_workers: int | None,
                channels_last: bool = False):
    """Like `iter_batches`, but yields the normalised float32 batch on `dev` that the model reads (channels-last
    when asked). On the CPU, files are normalised by the decoding threads, image by image, while in cache."""
    if data.images is None and dev == "cpu" and num_workers is None and len(data) > batch_size:
        yield from _decode_then_compute(data, pre, batch_size, channels_last)
        return
    for batch, positions, bad in iter_batches(data, pre, batch_size, dev, num_workers):
        x = pre.normalize(batch.to(dev, non_blocking=True), channels_last=channels_last) if len(positions) else batch
        yield x, positions, bad


def _default_workers(n: int, batch_size: int) -> int:
    if n <= 2 * batch_size:
        return 0  # starting workers costs more than it saves
    return min(4, cpu_cores())


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
