"""Shape bias on cue-conflict images, scored as Geirhos et al. 2019 and the model-vs-human toolbox score it.

A decision is a "shape" decision when the model's top-1 is the image's shape class, a "texture" decision when it
is the texture class, otherwise neither; images whose shape and texture agree are left out.
shape bias = shape / (shape + texture) decisions; coverage = (shape + texture) / images. Per class: the images
whose shape is that class.

For the lab's models on `shapes-textured` (core/data/cue_conflict.py): the decisions are the stored top-1s of
an ordinary evaluation of its `conflict` split (cached like every evaluation), and the two controls are the
top-1 accuracies on `shape-only` and `texture-only`. Any model whose classes are `shapes`'s can be scored: one
trained on `shapes` never saw a texture, one trained on `shapes-textured` saw both cues agree.

For pretrained ImageNet models, a folder of the published stimuli (the `cue-conflict` layout, core/data/imagenet16.py):
the model's 1000 probabilities are averaged over each of the 16 categories' ImageNet classes and the top category
is the decision; there are no controls.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.data import cue_conflict, imagenet16
from core.data.base import Dataset
from core.data.embedded import TEXTURED_ID, TEXTURED_VARIANTS, generated_base
from core.data.folders import LAYOUTS, texture_labels
from core.data.registry import load_dataset
from core.errors import UserError
from core.evaluate import evaluate, find_evaluation
from core.models.trained import list_runs
from core.store import Store


@dataclass(frozen=True)
class Decisions:
    """Counts of one set of cue-conflict decisions."""

    n: int  # conflict images (shape != texture)
    shape: int
    texture: int

    @property
    def shape_bias(self) -> float | None:
        """shape / (shape + texture); None when the model never picked either cue."""
        return self.shape / (self.shape + self.texture) if self.shape + self.texture else None

    @property
    def coverage(self) -> float | None:
        return (self.shape + self.texture) / self.n if self.n else None


def count(shape: np.ndarray, texture: np.ndarray, decision: np.ndarray) -> Decisions:
    """Shape and texture decisions among the images whose two cues differ."""
    shape, texture, decision = (np.asarray(a, dtype=np.int64) for a in (shape, texture, decision))
    keep = shape != texture
    return Decisions(int(keep.sum()), int((keep & (decision == shape)).sum()),
                     int((keep & (decision == texture)).sum()))


def score(shape: np.ndarray, texture: np.ndarray, decision: np.ndarray, classes: list[str]) -> dict:
    """Shape bias and coverage overall and per shape class."""
    shape, texture, decision = (np.asarray(a, dtype=np.int64) for a in (shape, texture, decision))
    total = count(shape, texture, decision)
    per_class = []
    for c, name in enumerate(classes):
        d = count(shape[shape == c], texture[shape == c], decision[shape == c])
        per_class.append({"class": name, "n": d.n, "shape": d.shape, "texture": d.texture,
                          "shape_bias": d.shape_bias, "coverage": d.coverage})
    return {"n": total.n, "shape_decisions": total.shape, "texture_decisions": total.texture,
            "shape_bias": total.shape_bias, "coverage": total.coverage, "per_class": per_class}


def _bias_set(dataset: str | Dataset) -> tuple[Dataset, tuple[str, ...]]:
    """(the dataset whose evaluations measure shape bias, those splits): the generated set's conflict split and its
    two controls, or a folder of the published stimuli's one split. A UserError for any other dataset (and, hosted,
    for one that is not offered: load_dataset checks)."""
    if isinstance(dataset, str) and generated_base(dataset) in TEXTURED_VARIANTS:
        return load_dataset(TEXTURED_ID), cue_conflict.BIAS_SPLITS  # the same bias splits, at any training size
    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    if ds.id == TEXTURED_ID:
        return ds, cue_conflict.BIAS_SPLITS
    if ds.layout != "cue-conflict":
        raise UserError(f"shape bias is measured on cue-conflict images: {TEXTURED_ID} (generated) or a folder of "
                        f"the published stimuli ({LAYOUTS['cue-conflict']}); {ds.name} is neither")
    return ds, ("conflict",)


def bias_splits(dataset: str) -> tuple[str, tuple[str, ...]]:
    """(the id of the dataset whose evaluations measure shape bias, those splits); see _bias_set."""
    ds, splits = _bias_set(dataset)
    return ds.id, splits


def conflict_cues(dataset: str | Dataset) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(class names, the shape class and the texture class of each image of the conflict split)."""
    ds, _ = _bias_set(dataset)
    textures = cue_conflict.texture_labels("conflict") if ds.id == TEXTURED_ID else texture_labels(ds, "conflict")
    return ds.classes, ds.split("conflict").labels, textures


def examples(dataset: str, shape: int, limit: int = 12) -> list[dict]:
    """Conflict images of one shape class, one per texture class first: [{index, shape, texture}]."""
    _, shapes, textures = conflict_cues(dataset)
    hits = np.flatnonzero(shapes == shape)
    first = {}
    for i in hits:  # the first image of each texture, then the rest in order
        first.setdefault(int(textures[i]), int(i))
    chosen = set(first.values())
    order = list(first.values()) + [int(i) for i in hits if int(i) not in chosen]
    return [{"index": i, "shape": int(shapes[i]), "texture": int(textures[i])} for i in order[:limit]]


def scoreable_runs(store: Store | None = None) -> list[dict]:
    """Trained runs whose classes are `shapes`'s (trained on shapes, shapes-N or a textured variant), the best
    validation top-1 first: the models the generated cue-conflict set can score."""
    def shapes_like(d: str) -> bool:
        return generated_base(d) in ("shapes", *TEXTURED_VARIANTS)

    return sorted((r for r in list_runs(store) if shapes_like(r["dataset"])), key=lambda r: -(r.get("val_top1") or 0))


def shape_bias(model: str, dataset: str = TEXTURED_ID, *, store: Store | None = None, precision: str | None = None,
               device: str | None = None, stored_only: bool = False) -> dict | None:
    """The `shape-bias` CLI's JSON for `model` on the generated cue-conflict set or on a folder of the published
    stimuli: {model, dataset, n, shape_bias, coverage, per_class, controls: {shape-only, texture-only top-1}
    (generated set; None on the stimuli), reference (published figures; the stimuli only), precision,
    evaluations, cached}. `stored_only`: from stored evaluations alone, None when one is missing."""
    store = store or Store()
    ds, splits = _bias_set(dataset)  # loaded once: a folder of stimuli is listed once, not once per use
    get = find_evaluation if stored_only else evaluate
    evs = {s: get(model, ds, s, store=store, precision=precision, device=device) for s in splits}
    if any(ev is None for ev in evs.values()):
        return None
    conflict = evs["conflict"]
    if len(splits) > 1:
        controls = {s: evs[s].meta.top1 for s in ("shape-only", "texture-only")}
        reference = []  # published figures are for the published stimuli, not comparable with the generated set
    else:
        controls, reference = None, imagenet16.reference_figures()
    classes, _, textures = conflict_cues(ds)
    p = conflict.predictions  # the conflict split is labelled by shape: y_true is the shape class
    out = score(p.y_true, textures[p.index], p.top_idx[:, 0], classes)
    meta = conflict.meta
    return {"model": meta.model, "model_name": meta.model_name, "family": meta.family, "dataset": ds.id, **out,
            "controls": controls, "reference": reference, "precision": meta.precision,
            "evaluations": {s: ev.key for s, ev in evs.items()}, "cached": all(ev.cached for ev in evs.values())}
