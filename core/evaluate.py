"""model x dataset -> stored predictions, timings and metrics. A repeated call is a cache hit."""
from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from core.data.base import Dataset, Split
from core.errors import ImageDecodeError, UserError
from core.metrics import Metrics, compute_metrics
from core.models.preprocess import Preprocess
from core.models.wrapper import LoadedModel
from core.settings import resolve_device
from core.store import Store, fingerprint

# Bump when a change to evaluation, decoding or preprocessing code changes results; library
# versions that can change results (torch, torchvision, transformers) are in the key as well.
EVAL_CODE_VERSION = 2
TOP_K = 5
MAX_SKIP_MESSAGES = 20

Progress = Callable[[int, int], None]


@dataclass
class Predictions:
    """Per image: position in the full split, true label, ranked top-k classes and their probabilities."""

    index: np.ndarray
    y_true: np.ndarray
    top_idx: np.ndarray
    top_prob: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        return {"index": self.index, "y_true": self.y_true, "top_idx": self.top_idx, "top_prob": self.top_prob}


@dataclass
class Evaluation:
    key: str
    meta: dict
    predictions: Predictions
    cached: bool
    _metrics: Metrics | None = field(default=None, repr=False)

    @property
    def metrics(self) -> Metrics:
        if self._metrics is None:
            self._metrics = compute_metrics(self.predictions.y_true, self.predictions.top_idx, self.meta["num_classes"])
        return self._metrics

    def summary(self) -> dict:
        """The CLI's `evaluate --json` object (DESIGN.md)."""
        m = self.meta
        return {"model": m["model"], "dataset": m["dataset"], "split": m["split"], "n": m["n"],
                "top1": m["top1"], "top5": m["top5"], "f1_macro": m["f1_macro"], "cohen_kappa": m["cohen_kappa"],
                "seconds": m["seconds"], "images_per_second": m["images_per_second"], "cached": self.cached}


def evaluation_key(model: LoadedModel, dataset: Dataset, split: str, limit: int | None, precision: str) -> str:
    """Everything that changes the predictions. Batch size and device do not (up to float noise):
    a hit computed elsewhere keeps the timings, device and batch size of the run that made it."""
    return fingerprint({
        "kind": "evaluation", "code": EVAL_CODE_VERSION, "libraries": _library_versions(), "model": model.id,
        "weights": model.weights_digest(), "revision": model.revision, "dataset": dataset.split_fingerprint(split),
        "split": split, "limit": limit, "preprocess": model.preprocess.key(), "precision": precision,
    })


def evaluate(model: str | LoadedModel, dataset: str | Dataset, split: str | None = None, *,
             limit: int | None = None, batch_size: int = 64, device: str | None = None,
             num_workers: int | None = None, store: Store | None = None, progress: Progress | None = None,
             force: bool = False) -> Evaluation:
    """Score `model` on one split of `dataset`, reading the store first and writing it after."""
    from core.data.registry import load_dataset
    from core.models.registry import create_model

    if limit is not None and limit <= 0:
        raise UserError("--limit must be a positive number of images")
    if batch_size <= 0:
        raise UserError("--batch-size must be positive")
    dev = resolve_device(device)  # before the cache: --device cuda without CUDA is an error, hit or miss
    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    split = split or ds.default_split()
    full = ds.split(split)
    if limit is not None and limit >= len(full):
        limit = None  # the same images as no limit: the same key
    data = full.limited(limit)
    if len(data) == 0:
        raise UserError(f"split {split!r} of {ds.id} has no images")
    m = model if isinstance(model, LoadedModel) else create_model(model, ds)
    if len(m.labels) != ds.num_classes:
        raise UserError(f"{m.id} predicts {len(m.labels)} classes but {ds.id} has {ds.num_classes}")
    precision = "fp32"
    store = store or Store()
    key = evaluation_key(m, ds, split, limit, precision)
    if not force and (hit := store.get_with_arrays(key)) is not None:
        record, arrays = hit
        return Evaluation(key, record.meta, Predictions(**arrays), cached=True)

    m.to(dev)
    t0 = time.perf_counter()
    preds, model_seconds, skipped = _predict_split(m, data, batch_size, dev, num_workers, progress)
    seconds = time.perf_counter() - t0
    metrics = compute_metrics(preds.y_true, preds.top_idx, ds.num_classes)
    meta = {
        "model": m.id, "model_name": m.name, "family": m.family, "source": m.source, "params": m.params,
        "flops_per_image": m.flops_per_image(), "dataset": ds.id, "dataset_name": ds.name,
        "dataset_fingerprint": ds.split_fingerprint(split), "num_classes": ds.num_classes, "split": split, "limit": limit,
        "n": int(len(preds.y_true)), "skipped": len(skipped), "skipped_files": skipped[:MAX_SKIP_MESSAGES],
        **metrics.summary(), "seconds": seconds, "model_seconds": model_seconds,
        "images_per_second": len(preds.y_true) / seconds if seconds > 0 else None,
        "batch_size": batch_size, "device": dev, "precision": precision, "preprocess": m.preprocess.key(),
        "versions": _versions(),
    }
    if meta["n"] == 0:
        raise UserError(f"none of the {len(data)} images of {ds.id}/{split} could be read; first: {skipped[0]}")
    store.put(key, "evaluation", meta, preds.arrays())
    return Evaluation(key, meta, preds, cached=False, _metrics=metrics)


def _predict_split(m: LoadedModel, data: Split, batch_size: int, dev: str, num_workers: int | None,
                   progress: Progress | None) -> tuple[Predictions, float, list[str]]:
    k = min(TOP_K, len(m.labels))
    out_idx, out_prob, out_pos = [], [], []
    skipped: list[str] = []
    model_seconds = 0.0
    done = 0
    with torch.inference_mode():
        for batch, positions, bad in _batches(data, m.preprocess, batch_size, dev, num_workers):
            skipped += bad
            if len(positions):
                t = time.perf_counter()
                x = m.preprocess.normalize(batch.to(dev, non_blocking=True))
                prob = torch.softmax(m.logits(x).float(), dim=1)
                top_prob, top_idx = prob.topk(k, dim=1)
                top_prob, top_idx = top_prob.cpu(), top_idx.cpu()  # waits for the device
                model_seconds += time.perf_counter() - t
                out_idx.append(top_idx.numpy())
                out_prob.append(top_prob.numpy())
                out_pos.append(positions)
            done += len(positions) + len(bad)
            if progress:
                progress(done, len(data))
    pos = np.concatenate(out_pos) if out_pos else np.zeros(0, np.int64)
    preds = Predictions(
        index=data.index[pos], y_true=data.labels[pos],
        top_idx=np.concatenate(out_idx).astype(np.int32) if out_idx else np.zeros((0, k), np.int32),
        top_prob=np.concatenate(out_prob).astype(np.float32) if out_prob else np.zeros((0, k), np.float32),
    )
    return preds, model_seconds, skipped


def _batches(data: Split, pre: Preprocess, batch_size: int, dev: str, num_workers: int | None):
    """Yield (uint8 batch, positions in split, messages of skipped files)."""
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


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "torchvision", "transformers", "timm"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def _versions() -> dict[str, str]:
    return {"python": platform.python_version(), "code": str(EVAL_CODE_VERSION), **_library_versions()}
