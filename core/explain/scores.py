"""Faithfulness of heat maps (core/explain/faithfulness.py), for one image or over N images of a dataset.

Over a dataset, each (model, method) is one record in the store, keyed like an evaluation by everything that
changes its numbers (the model's weights, preprocessing and labels, the images, the method and its layer, the
perturbation settings, the code), so asking twice is a cache hit, and a job that stops keeps what it stored. The
class explained is the model's fp32 top-1 for each image (the protocol of RISE and ROAD); every probability is fp32.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from core.data.base import Dataset
from core.data.registry import load_dataset
from core.errors import UserError
from core.explain.base import MAP_METHODS, ExplainError, model_input
from core.explain.compare import EXPLAINERS
from core.explain.faithfulness import (
    BASELINES,
    BLUR,
    ROAD_NOISE,
    ROAD_PERCENTS,
    STEPS,
    SUBSTRATES,
    Scores,
    auc,
    baseline_map,
    class_probability,
    score_map,
)
from core.metrics import mean_ci95
from core.models.identity import ModelIdentity
from core.models.registry import create_model
from core.models.wrapper import LoadedModel
from core.store import Store, fingerprint

SCORE_CODE_VERSION = 1
SCORED = MAP_METHODS + BASELINES
METRICS = ("deletion_auc", "insertion_auc", "road_morf", "road_lerf")
BETTER = {"deletion_auc": "lower", "insertion_auc": "higher", "road_morf": "lower", "road_lerf": "higher"}
DEFAULT_IMAGES = 200


def check_method(method: str) -> str:
    if method not in SCORED:
        raise ExplainError(f"{method!r} cannot be scored: choose one of {', '.join(SCORED)} (filters and feature "
                           "maps draw many maps, not one)")
    return method


def parse_methods(text: str | None) -> tuple[str, ...]:
    """`--method gradcam,eigencam` as a tuple, each checked; the baselines are always scored besides."""
    methods = tuple(dict.fromkeys(m.strip() for m in (text or "").split(",") if m.strip()))
    if not methods:
        raise UserError("--method needs at least one method to score")
    return tuple(check_method(m) for m in methods)


def score_image(model: LoadedModel, image: np.ndarray, method: str, class_index: int | None = None, *,
                layer: str | None = None, seed: int = 0, with_road: bool = True, heatmap: np.ndarray | None = None,
                **opts) -> tuple[int, Scores]:
    """(the class explained, its scores) for one map of one decoded image. A baseline's map is seeded by `seed`,
    and so is ROAD's imputation noise, the same for every method on this image. `heatmap`: the method's map of
    this image and class when already drawn (the page's), instead of drawing it again."""
    check_method(method)
    x, shown = model_input(model, image)
    if class_index is None:
        with torch.no_grad():
            class_index = int(model.logits(x).float().argmax())
    if method in BASELINES:
        heat = baseline_map(method, tuple(shown.shape[:2]), seed)
    elif heatmap is not None:
        heat = heatmap
    else:
        heat = EXPLAINERS[method](model, image, layer, class_index=class_index, **opts).heatmap
        if heat is None:
            raise ExplainError(f"{method} of {model.id} draws no heat map to score")
    return class_index, score_map(class_probability(model.logits, class_index), x, heat, road_seed=seed,
                                  with_road=with_road)


def explain_score(model: LoadedModel, image: np.ndarray, method: str, class_index: int | None = None, *,
                  layer: str | None = None, baselines: tuple[str, ...] = BASELINES, with_road: bool = True,
                  heatmap: np.ndarray | None = None, **opts) -> dict:
    """The `explain --score --json` object (shared/DESIGN.md): the method's scores and the baselines', with the
    curves. The page leaves out ROAD (`with_road`) and the centre prior for the image on screen, to answer fast,
    and passes the map it drew (`heatmap`, with its `class_index`)."""
    idx, s = score_image(model, image, method, class_index, layer=layer, with_road=with_road, heatmap=heatmap,
                         **opts)
    base = {b: score_image(model, image, b, idx, with_road=with_road)[1] for b in baselines}
    return {"model": model.id, "method": method, "class_index": idx,
            "class_label": model.labels.names[idx] if idx < len(model.labels.names) else f"class {idx}",
            **s.summary(), "baselines": {b: v.summary() for b, v in base.items()},
            "curves": {"deletion": s.deletion.tolist(), "insertion": s.insertion.tolist(),
                       "road_morf": s.morf.tolist(), "road_lerf": s.lerf.tolist()},
            "baseline_curves": {b: {"deletion": v.deletion.tolist(), "insertion": v.insertion.tolist()}
                                for b, v in base.items()},
            "settings": settings()}


def settings() -> dict:
    return {"steps": STEPS, "blur_sigma_fraction": BLUR, "road_percents": list(ROAD_PERCENTS),
            "road_noise": ROAD_NOISE, "substrates": SUBSTRATES, "class": "the model's fp32 top-1",
            "precision": "fp32"}


@dataclass
class Faithfulness:
    """One (model, method) over N images: the stored summary and the per-image curves."""

    key: str
    meta: dict
    arrays: dict[str, np.ndarray]
    cached: bool

    def per_image(self, metric: str) -> np.ndarray:
        a = self.arrays
        return {"deletion_auc": lambda: auc(a["deletion"]), "insertion_auc": lambda: auc(a["insertion"]),
                "road_morf": lambda: a["morf"].mean(1), "road_lerf": lambda: a["lerf"].mean(1)}[metric]()


def _key(ident: ModelIdentity, ds: Dataset, split: str, limit: int | None, method: str, layer: str | None) -> str:
    return fingerprint({"kind": "faithfulness", "code": SCORE_CODE_VERSION, "model": ident.id,
                        "weights": ident.weights, "revision": ident.revision, "preprocess": ident.preprocess,
                        "labels": fingerprint({"names": ident.labels.names, "wnids": ident.labels.wnids}),
                        "dataset": ds.split_fingerprint(split), "split": split, "limit": limit, "method": method,
                        "layer": layer, "settings": settings()})


def faithfulness(model: str | LoadedModel, dataset: str | Dataset, method: str, split: str | None = None, *,
                 limit: int | None = DEFAULT_IMAGES, layer: str | None = None, store: Store | None = None,
                 stored_only: bool = False, progress: Callable[[int, int], None] | None = None) -> Faithfulness | None:
    """Score `method` of `model` on the first `limit` images (the dataset's fixed subset) of one split. Read from
    the store when there; `stored_only` returns None instead of computing. `progress(images done, images)`."""
    check_method(method)
    store = store or Store()
    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    split = split or ds.default_split()
    full = ds.split(split)
    if limit is not None and limit <= 0:
        raise UserError("--limit must be a positive number of images")
    if limit is not None and limit >= len(full):
        limit = None
    data = full.limited(limit)
    if len(data) == 0:
        raise UserError(f"split {split!r} of {ds.id} has no images")
    m = model if isinstance(model, LoadedModel) else create_model(model, ds, store=store)
    key = _key(ModelIdentity.of(m), ds, split, limit, method, layer)
    if (hit := store.get_with_arrays(key)) is not None:
        return Faithfulness(key, hit[0].meta, hit[1], cached=True)
    if stored_only:
        return None
    with store.lock(key):
        if (hit := store.get_with_arrays(key)) is not None:
            return Faithfulness(key, hit[0].meta, hit[1], cached=True)
        t0 = time.perf_counter()
        rows: list[Scores] = []
        classes = []
        for i in range(len(data)):
            idx, s = score_image(m, data.load(i), method, layer=layer, seed=int(data.index[i]))
            rows.append(s)
            classes.append(idx)
            if progress:
                progress(i + 1, len(data))
        arrays = {"index": data.index.astype(np.int64), "y_true": data.labels.astype(np.int64),
                  "class_index": np.asarray(classes, dtype=np.int64),
                  **{k: np.stack([getattr(s, k) for s in rows]).astype(np.float32)
                     for k in ("deletion", "insertion", "morf", "lerf")}}
        out = Faithfulness(key, {}, arrays, cached=False)
        meta = {"model": m.id, "model_name": m.name, "family": m.family, "method": method, "layer": layer,
                "dataset": ds.id, "split": split, "limit": limit, "n": len(data),
                "explained_true_class": float(np.mean(arrays["class_index"] == arrays["y_true"])),
                **{k: v for metric in METRICS for k, v in zip((metric, metric + "_ci95"),
                                                              mean_ci95(out.per_image(metric)))},
                "mean_curves": {k: arrays[k].mean(0).tolist() for k in ("deletion", "insertion", "morf", "lerf")},
                "settings": settings(), "seconds": time.perf_counter() - t0,
                "device": str(m.device), "code": SCORE_CODE_VERSION}
        store.put(key, "faithfulness", meta, arrays)
        out.meta = meta
        return out


def paired(result: Faithfulness, baseline: Faithfulness, metric: str) -> tuple[float | None, float | None]:
    """Mean and 95% interval of the per-image difference result - baseline on the same images (paired: the
    image-to-image spread cancels)."""
    if not np.array_equal(result.arrays["index"], baseline.arrays["index"]):
        return None, None
    return mean_ci95(result.per_image(metric) - baseline.per_image(metric))


def faithfulness_rows(model: str | LoadedModel, dataset: str | Dataset, methods: tuple[str, ...],
                      split: str | None = None, *, limit: int | None = DEFAULT_IMAGES, layer: str | None = None,
                      store: Store | None = None, stored_only: bool = False,
                      progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """The batch `explain --score --json`: one row per method and per baseline, each with mean and 95% interval of
    every metric over the images, and the paired difference from the random map. A method a model cannot draw
    (attention of a CNN) gets a row with its `error`; `stored_only` leaves out what is not stored yet."""
    store = store or Store()
    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    m = model if isinstance(model, LoadedModel) else create_model(model, ds, store=store)
    todo = tuple(dict.fromkeys((*BASELINES, *methods)))
    n = len(ds.split(split or ds.default_split()).limited(limit))
    results: dict[str, Faithfulness | str | None] = {}
    for k, method in enumerate(todo):
        try:
            results[method] = faithfulness(m, ds, method, split, limit=limit, layer=None if method in BASELINES
                                           else layer, store=store, stored_only=stored_only,
                                           progress=(lambda d, _n, k=k: progress(k * n + d, len(todo) * n))
                                           if progress else None)
        except ExplainError as e:
            results[method] = str(e)
    rand = results.get("random")
    rand = rand if isinstance(rand, Faithfulness) else None
    rows = []
    for method, r in results.items():
        if isinstance(r, str):
            rows.append({"model": m.id, "model_name": m.name, "family": m.family, "method": method, "error": r})
            continue
        if r is None:
            continue
        row = {k: r.meta[k] for k in ("model", "model_name", "family", "method", "layer", "dataset", "split", "n",
                                       "explained_true_class", "seconds")}
        row |= {k: r.meta[k] for metric in METRICS for k in (metric, metric + "_ci95")}
        if rand is not None and method != "random":
            for metric in METRICS:
                row[f"{metric}_vs_random"], row[f"{metric}_vs_random_ci95"] = paired(r, rand, metric)
        row |= {"baseline": method in BASELINES, "cached": r.cached, "key": r.key}
        rows.append(row)
    return rows
