"""model x dataset -> stored predictions, timings and metrics. A repeated call is a cache hit."""
from __future__ import annotations

import dataclasses
import functools
import platform
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Callable

import numpy as np
import torch

from core import calibration, distributed
from core.batching import BatchSize, in_chunks
from core.calibration import Calibration
from core.data import corruptions
from core.data.base import Dataset, Split
from core.data.loader import iter_inputs
from core.data.registry import load_dataset
from core.errors import UserError
from core.labels import Alignment, align
from core.metrics import Metrics, compute_metrics
from core.models import identity
from core.models.identity import ModelIdentity
from core.models.reference import ModelRef, resolve
from core.models.registry import create_model
from core.models.wrapper import LoadedModel
from core.precision import inference_fn, resolve_precision
from core.records import EvaluationMeta
from core.settings import resolve_device
from core.store import Store, fingerprint

# Bump when a change to evaluation, decoding or preprocessing code changes results; library
# versions that can change results (torch, torchvision, transformers) are in the key as well.
EVAL_CODE_VERSION = 6  # 6: per-image NLL and Brier terms, log-probabilities for temperature scaling; corruptions
TOP_K = 5
MAX_SKIP_MESSAGES = 20
# an evaluation in the dataset's own classes keeps every image's log-probabilities (temperature scaling refits them)
# up to this many values (16 MB of float32: 400,000 images of 10 classes, 4,000 of 1,000)
LOGP_MAX_VALUES = 4_000_000

ImagesDone = Callable[[int, int], None]  # (images done, images in all)


@dataclass
class Predictions:
    """Per image: position in the full split, true label, ranked top-k classes and their probabilities.

    Classes are the dataset's; -1 marks a prediction outside them (an ImageNet model's "tabby cat"
    on a dataset without that class). `model_top_idx` keeps the model's own class indices.
    `nll` (-log p(true class)) and `brier` (sum over classes of (p - [true])^2) are over the probabilities
    the ranking is of (core/calibration.py); `logp`, the log-probabilities over the dataset's classes, is kept
    for evaluations in the dataset's own classes up to LOGP_MAX_VALUES.
    """

    index: np.ndarray
    y_true: np.ndarray
    top_idx: np.ndarray
    top_prob: np.ndarray
    model_top_idx: np.ndarray | None = None
    nll: np.ndarray | None = None
    brier: np.ndarray | None = None
    logp: np.ndarray | None = None

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"index": self.index, "y_true": self.y_true, "top_idx": self.top_idx, "top_prob": self.top_prob}
        for name in ("model_top_idx", "nll", "brier", "logp"):
            if (a := getattr(self, name)) is not None:
                out[name] = a
        return out

    def calibration(self) -> Calibration:
        """ECE (equal-width and adaptive), NLL and Brier of these predictions."""
        return calibration.summarize(self.top_prob[:, 0], self.top_idx[:, 0] == self.y_true, self.nll, self.brier)


RESTRICTED = "restricted to the dataset's classes"


@dataclass
class Evaluation:
    """Scores over all the model's classes (`predictions`, flat keys of `meta`, named by meta["scoring"])
    and, for a model with more classes than the dataset, restricted to the dataset's classes too
    (`restricted`, meta["restricted"])."""

    key: str
    meta: EvaluationMeta  # a stored record's JSON is read into one
    predictions: Predictions
    cached: bool
    restricted: Predictions | None = None
    _metrics: Metrics | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.meta, EvaluationMeta):  # read from its stored JSON
            self.meta = EvaluationMeta.from_json(self.meta)

    @property
    def metrics(self) -> Metrics:
        if self._metrics is None:
            self._metrics = compute_metrics(self.predictions.y_true, self.predictions.top_idx, self.meta.num_classes,
                                            ranked_over=self.meta.model_classes)
        return self._metrics

    def restricted_metrics(self) -> Metrics | None:
        if self.restricted is None:
            return None
        return compute_metrics(self.restricted.y_true, self.restricted.top_idx, self.meta.num_classes)

    def summary(self) -> dict:
        """The CLI's `evaluate --json` object (DESIGN.md), plus which scoring the numbers use."""
        m = self.meta
        out = {"model": m.model, "dataset": m.dataset, "split": m.split, "n": m.n, "top1": m.top1, "top5": m.top5,
               "f1_macro": m.f1_macro, "cohen_kappa": m.cohen_kappa, "seconds": m.seconds,
               "images_per_second": m.images_per_second, "cached": self.cached, "scoring": m.scoring,
               "balanced_accuracy": m.balanced_accuracy, **(m.calibration or {}), "corruption": m.corruption,
               "severity": m.severity}
        if m.restricted:
            out |= {f"{k}_restricted": v for k, v in m.restricted.items()}
            out["outside"] = m.outside  # top-1 predictions outside the dataset's classes (all-classes scoring)
        return out


def evaluation_key(model: ModelIdentity, dataset: Dataset, split: str, limit: int | None, precision: str,
                   alignment: Alignment, corruption: Corruption | None = None) -> str:
    """Everything that changes the predictions. Batch size and device do not (up to float noise):
    a hit computed elsewhere keeps the timings, device and batch size of the run that made it.
    The label space and its alignment are in: the same weights with the classes in another order
    (or mapped to another dataset's classes) predict other classes. So is the corruption applied to the
    images, with the version of the corruption code."""
    return fingerprint({
        # corrupted pixels also depend on numpy's random streams, scipy.ndimage and Pillow's JPEG encoder
        "corruption": [*corruption, corruptions.CODE_VERSION, _library_versions(("numpy", "scipy", "pillow"))]
        if corruption else None,
        "kind": "evaluation", "code": EVAL_CODE_VERSION, "libraries": _library_versions(), "model": model.id,
        "weights": model.weights, "revision": model.revision, "dataset": dataset.split_fingerprint(split),
        "split": split, "limit": limit, "preprocess": model.preprocess, "precision": precision,
        "labels": fingerprint({"names": model.labels.names, "wnids": model.labels.wnids}),
        "alignment": alignment.key(),
    })


@dataclass
class _Plan:
    """What an evaluation is of, and its key: known without running the model."""

    ds: Dataset
    split: str
    data: Split
    limit: int | None
    dev: str
    precision: str
    ref: ModelRef | None
    model: LoadedModel | None  # None: not built in this process yet (its identity was remembered)
    alignment: Alignment
    key: str
    corruption: Corruption | None

    def build(self, store: Store) -> LoadedModel:
        """The model: the one this process built before, or one built now from the files and code its remembered
        identity names."""
        return self.model if self.model is not None else create_model(self.ref, self.ds, store=store)

    def images(self) -> Split:
        """The images to score: corrupted, when the plan says so, after decoding and before the model's own
        preprocessing, seeded per image."""
        if self.corruption is None:
            return self.data
        return self.data.mapped(functools.partial(corruptions.corrupt_indexed, *self.corruption))


Corruption = tuple[str, int]  # (ImageNet-C name, severity 1-5): core/data/corruptions.py


def _plan(model: str | ModelRef | LoadedModel, dataset: str | Dataset, split: str | None, limit: int | None,
          device: str | None, store: Store, precision: str | None, corruption: Corruption | None = None) -> _Plan:
    if limit is not None and limit <= 0:
        raise UserError("--limit must be a positive number of images")
    if corruption is not None:
        corruption = corruptions.check(*corruption)
    dev = resolve_device(device)  # before the cache: --device cuda without CUDA is an error, hit or miss
    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    split = split or ds.default_split()
    full = ds.split(split)
    if limit is not None and limit >= len(full):
        limit = None  # the same images as no limit: the same key
    data = full.limited(limit)
    if len(data) == 0:
        raise UserError(f"split {split!r} of {ds.id} has no images")
    # a model built before in this process is not built again just to compute the key (core/models/identity.py)
    if isinstance(model, LoadedModel):
        ref, m, ident = None, model, ModelIdentity.of(model)
    else:
        ref = resolve(model)  # classified and judged by hosted mode once, remembered models included
        m, ident = _identify(ref, ds, store)
    alignment = align(ident.labels, ds)
    precision = resolve_precision(precision, dev)
    key = evaluation_key(ident, ds, split, limit, precision, alignment, corruption)
    return _Plan(ds, split, data, limit, dev, precision, ref, m, alignment, key, corruption)


def find_evaluation(model: str | ModelRef | LoadedModel, dataset: str | Dataset, split: str | None = None, *,
                    limit: int | None = None, device: str | None = None, store: Store | None = None,
                    precision: str | None = None, corruption: Corruption | None = None) -> Evaluation | None:
    """The stored evaluation `evaluate` would return as a cache hit, or None; nothing is computed."""
    store = store or Store()
    return _stored(store, _plan(model, dataset, split, limit, device, store, precision, corruption).key)


def find_evaluation_meta(model: str | ModelRef | LoadedModel, dataset: str | Dataset, split: str | None = None, *,
                         limit: int | None = None, device: str | None = None, store: Store | None = None,
                         precision: str | None = None,
                         corruption: Corruption | None = None) -> tuple[str, EvaluationMeta] | None:
    """(key, metadata) of the stored evaluation `evaluate` would return as a cache hit, or None; its predictions
    are not read: for figures from many evaluations at once (a robustness sweep's 75 corrupted ones)."""
    store = store or Store()
    key = _plan(model, dataset, split, limit, device, store, precision, corruption).key
    r = store.get(key)
    return (key, EvaluationMeta.from_json(r.meta)) if r is not None and r.kind == "evaluation" else None


def evaluate(model: str | ModelRef | LoadedModel, dataset: str | Dataset, split: str | None = None, *,
             limit: int | None = None, batch_size: int = 64, device: str | None = None,
             num_workers: int | None = None, store: Store | None = None, progress: ImagesDone | None = None,
             force: bool = False, precision: str | None = None, corruption: Corruption | None = None) -> Evaluation:
    """Score `model` on one split of `dataset`, reading the store first and writing it after.
    `precision`: auto (the default: bf16 where the device runs it fast), fp32, bf16 or fp16.
    `corruption`: (name, severity) applied to every image after decoding (core/data/corruptions.py)."""
    if batch_size <= 0:
        raise UserError("--batch-size must be positive")
    store = store or Store()
    if distributed.launched():
        return _evaluate_distributed(model, dataset, split, limit=limit, batch_size=batch_size, device=device,
                                     num_workers=num_workers, store=store, progress=progress, force=force,
                                     precision=precision, corruption=corruption)
    plan = _plan(model, dataset, split, limit, device, store, precision, corruption)
    if not force and (hit := _stored(store, plan.key)) is not None:
        return hit
    # one process computes a key: another asking for it meanwhile waits here, then reads the record
    with store.lock(plan.key):
        if not force and (hit := _stored(store, plan.key)) is not None:
            return hit  # computed by another process while we waited
        m = plan.build(store)
        run = inference_fn(m, plan.dev, plan.precision)
        t0 = time.perf_counter()
        fit = BatchSize(batch_size)
        preds, restricted, model_seconds, skipped = _predict_split(m, run, plan.alignment, plan.images(), fit,
                                                                   plan.dev, num_workers, progress)
        return _store_evaluation(plan, m, store, preds, restricted, model_seconds, skipped, fit, batch_size,
                                 time.perf_counter() - t0)


def _store_evaluation(plan: _Plan, m: LoadedModel, store: Store, preds: Predictions, restricted: Predictions | None,
                      model_seconds: float, skipped: list[str], fit: BatchSize, batch_size: int, seconds: float,
                      world_size: int = 1) -> Evaluation:
    """The figures of a split's predictions, written to the store under the plan's key."""
    ds, split, data, dev, alignment, key = plan.ds, plan.split, plan.data, plan.dev, plan.alignment, plan.key
    metrics = compute_metrics(preds.y_true, preds.top_idx, ds.num_classes, ranked_over=len(m.labels))
    if len(preds.y_true) == 0:
        raise UserError(f"none of the {len(data)} images of {ds.id}/{split} could be read; first: {skipped[0]}")
    meta = EvaluationMeta(
        model=m.id, model_name=m.name, family=m.family, source=m.source, params=m.params,
        flops_per_image=m.flops_per_image(), dataset=ds.id, dataset_name=ds.name,
        dataset_fingerprint=ds.split_fingerprint(split), num_classes=ds.num_classes,
        model_classes=len(m.labels), split=split, limit=plan.limit,
        n=int(len(preds.y_true)), skipped=len(skipped), skipped_files=skipped[:MAX_SKIP_MESSAGES],
        **metrics.summary(), scoring=alignment.describe(), outside=int((preds.top_idx[:, 0] < 0).sum()),
        restricted=compute_metrics(restricted.y_true, restricted.top_idx, ds.num_classes).summary()
        if restricted is not None else None,
        seconds=seconds, model_seconds=model_seconds,
        images_per_second=len(preds.y_true) / seconds if seconds > 0 else None,
        batch_size=fit.size, batch_size_requested=batch_size, oom_halvings=fit.halvings,
        device=dev, precision=plan.precision, preprocess=m.preprocess.key(), versions=_versions(),
        calibration=preds.calibration().to_json() if preds.nll is not None else None,
        corruption=plan.corruption[0] if plan.corruption else None,
        severity=plan.corruption[1] if plan.corruption else None, world_size=world_size,
        labels_assumed=m.labels.assumed,
    )
    arrays = preds.arrays() | ({"r_top_idx": restricted.top_idx, "r_top_prob": restricted.top_prob}
                               if restricted is not None else {})
    store.put(key, "evaluation", meta.to_json(), arrays)
    return Evaluation(key, meta, preds, cached=False, restricted=restricted, _metrics=metrics)


def _evaluate_distributed(model, dataset, split, *, limit: int | None, batch_size: int, device: str | None,
                          num_workers: int | None, store: Store, progress: ImagesDone | None, force: bool,
                          precision: str | None, corruption: Corruption | None) -> Evaluation:
    """evaluate() under torchrun: each rank scores whole batches (distributed.batch_shard: every image once, none
    padded, in the batches one process forms), rank 0 gathers the predictions into the split's order and stores
    the record one process would (its timings and `world_size` apart); every rank returns it."""
    w = distributed.world()
    dev = distributed.setup(resolve_device(device))
    plan = dataclasses.replace(_plan(model, dataset, split, limit, device, store, precision, corruption), dev=dev)
    hit = _stored(store, plan.key) if w.main and not force else None
    if distributed.broadcast(hit is not None):
        return distributed.broadcast(hit)
    m = plan.build(store)
    data = plan.images()
    mine = data.take(distributed.batch_shard(len(data), batch_size, w.rank, w.size))
    run = inference_fn(m, dev, plan.precision)
    t0 = time.perf_counter()
    fit = BatchSize(batch_size)
    shown = (lambda d, _n: progress(min(len(data), d * w.size), len(data))) if progress and w.main else None
    part = _predict_split(m, run, plan.alignment, mine, fit, dev, num_workers, shown)
    parts = distributed.gather(part)
    ev = None
    if w.main:
        preds, restricted = (_merge([p[k] for p in parts]) for k in (0, 1))
        with store.lock(plan.key):
            ev = _store_evaluation(plan, m, store, preds, restricted, max(p[2] for p in parts),
                                   [s for p in parts for s in p[3]], fit, batch_size, time.perf_counter() - t0,
                                   world_size=w.size)
    return distributed.broadcast(ev)


def _merge(parts: list[Predictions | None]) -> Predictions | None:
    """The ranks' predictions as one, in the split's order (by position)."""
    if parts[0] is None:
        return None
    parts = [p for p in parts if len(p.index)] or parts[:1]  # a rank with no batch has no optional arrays either
    order = np.argsort(np.concatenate([p.index for p in parts]), kind="stable")
    fields = {}
    for f in dataclasses.fields(Predictions):
        values = [getattr(p, f.name) for p in parts]
        fields[f.name] = None if any(v is None for v in values) else np.concatenate(values)[order]
    return Predictions(**fields)


def _identify(ref: ModelRef, ds: Dataset, store: Store) -> tuple[LoadedModel | None, ModelIdentity]:
    """(the model, built only when this process has not built it before; its identity)."""
    token = identity.token(ref, ds, store)
    if (ident := identity.known(token)) is not None:
        return None, ident
    m = create_model(ref, ds, store=store)
    return m, identity.remember(token, m)


def _stored(store: Store, key: str) -> Evaluation | None:
    """The stored evaluation under `key`, or None (never computed, or its artifact failed its checksum)."""
    if (hit := store.get_with_arrays(key)) is None:
        return None
    record, arrays = hit
    preds, restricted = _from_arrays(arrays)
    return Evaluation(key, record.meta, preds, cached=True, restricted=restricted)


def load_evaluation(key: str, store: Store | None = None) -> Evaluation:
    """A stored evaluation by its key, with its predictions; UserError when it is gone or damaged."""
    hit = (store or Store()).get_with_arrays(key)
    if hit is None or hit[0].kind != "evaluation":
        raise UserError(f"no stored evaluation {key}; evaluate the model again")
    record, arrays = hit
    preds, restricted = _from_arrays(arrays)
    return Evaluation(key, record.meta, preds, cached=True, restricted=restricted)


def _from_arrays(arrays: dict[str, np.ndarray]) -> tuple[Predictions, Predictions | None]:
    common = {k: arrays[k] for k in ("index", "y_true")}
    preds = Predictions(**common, top_idx=arrays["top_idx"], top_prob=arrays["top_prob"],
                        **{k: arrays.get(k) for k in ("model_top_idx", "nll", "brier", "logp")})
    restricted = (Predictions(**common, top_idx=arrays["r_top_idx"], top_prob=arrays["r_top_prob"])
                  if "r_top_idx" in arrays else None)
    return preds, restricted


def _predict_split(m: LoadedModel, run, alignment: Alignment, data: Split, fit: BatchSize, dev: str,
                   num_workers: int | None, progress: ImagesDone | None):
    """Predictions over all model classes (mapped to dataset classes), the restricted ones when they
    differ, model-only seconds and the messages of skipped files. `run` maps a normalised batch to float32
    logits at the chosen precision; `fit` shrinks on out-of-memory."""
    grouped = alignment.kind == "grouped"
    k = min(TOP_K, len(alignment.group_sizes) if grouped else len(m.labels))
    k_r = min(TOP_K, len(alignment.model_index))
    both = alignment.scored_both_ways
    cols = torch.as_tensor(alignment.model_index)
    sizes = torch.as_tensor(alignment.group_sizes, dtype=torch.float32)
    group_of = torch.repeat_interleave(torch.arange(len(sizes)), sizes.long())  # pooled output -> dataset class
    # calibration is over proper distributions: a grouped ranking's class scores are means that do not sum to one
    calibrated = not grouped
    # the log-probabilities temperature scaling refits, in the dataset's class order: only where the model's classes
    # are the dataset's, one to one (native, or WordNet ids of the same classes)
    keep_logp = (not grouped and not both and len(cols) == len(m.labels)
                 and len(data) * len(m.labels) <= LOGP_MAX_VALUES)
    out: dict[str, list] = {"idx": [], "prob": [], "r_idx": [], "r_prob": [], "pos": [], "nll": [], "brier": [],
                            "logp": []}
    skipped: list[str] = []
    model_seconds = 0.0
    done = 0

    def ranked(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits = run(x)
        logp = torch.log_softmax(logits, dim=1)
        probs = logp.exp()
        if grouped:  # each dataset class: the mean probability of its model classes (core/labels.py)
            sums = probs.new_zeros(len(probs), len(sizes)).index_add_(1, group_of.to(probs.device),
                                                                       probs[:, cols.to(probs.device)])
            probs = sums / sizes.to(probs.device)
        top_prob, top_idx = probs.topk(k, dim=1)
        if not both:
            return top_prob, top_idx, logp
        return (top_prob, top_idx, logp, *torch.softmax(logits[:, cols.to(logits.device)], dim=1).topk(k_r, dim=1))

    def calibration_terms(logp: torch.Tensor, labels: np.ndarray) -> None:
        """-log p(true class) and the Brier term per image, over the probabilities the ranking is of (the model's
        classes: the true class's column is the model output that stands for it)."""
        lp = logp.cpu().numpy().astype(np.float64)
        nll, brier = calibration.terms(lp, alignment.model_index[labels])
        out["nll"].append(nll)
        out["brier"].append(brier)
        if keep_logp:
            out["logp"].append(lp[:, alignment.model_index])

    with torch.inference_mode():
        for x, positions, bad in iter_inputs(data, m.preprocess, fit.size, dev, num_workers, run.channels_last):
            skipped += bad
            if len(positions):
                t = time.perf_counter()
                top_prob, top_idx, logp, *r = in_chunks(ranked, x, fit, dev)
                if calibrated:
                    calibration_terms(logp.float(), data.labels[positions])
                if both:
                    r_prob, r_idx = r
                    out["r_idx"].append(r_idx.cpu().numpy())
                    out["r_prob"].append(r_prob.cpu().numpy())
                out["idx"].append(top_idx.cpu().numpy())  # .cpu() waits for the device
                out["prob"].append(top_prob.cpu().numpy())
                model_seconds += time.perf_counter() - t
                out["pos"].append(positions)
            done += len(positions) + len(bad)
            if progress:
                progress(done, len(data))

    def cat(name: str, width: int, dtype) -> np.ndarray:
        return np.concatenate(out[name]).astype(dtype) if out[name] else np.zeros((0, width), dtype)

    pos = np.concatenate(out["pos"]) if out["pos"] else np.zeros(0, np.int64)
    common = {"index": data.index[pos], "y_true": data.labels[pos]}
    model_idx = cat("idx", k, np.int32)
    preds = Predictions(**common, top_idx=alignment.to_dataset(model_idx).astype(np.int32),
                        top_prob=cat("prob", k, np.float32),
                        model_top_idx=model_idx if alignment.kind == "wordnet" else None,
                        nll=np.concatenate(out["nll"]).astype(np.float32) if calibrated and out["nll"] else None,
                        brier=np.concatenate(out["brier"]).astype(np.float32) if calibrated and out["brier"] else None,
                        logp=cat("logp", len(m.labels), np.float32) if keep_logp else None)
    restricted = (Predictions(**common, top_idx=cat("r_idx", k_r, np.int32), top_prob=cat("r_prob", k_r, np.float32))
                  if both else None)
    return preds, restricted, model_seconds, skipped


@functools.lru_cache(maxsize=4)  # read once: parsing package metadata took half of a cache hit's time
def _library_versions(names: tuple[str, ...] = ("torch", "torchvision", "transformers", "timm")) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def _versions() -> dict[str, str]:
    return {"python": platform.python_version(), "code": str(EVAL_CODE_VERSION), **_library_versions()}
