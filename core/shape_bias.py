"""Shape bias on cue-conflict images, scored as Geirhos et al. 2019 and the model-vs-human toolbox score it.

A decision is a "shape" decision when the model's top-1 is the image's shape class, a "texture" decision when it
is the texture class, otherwise neither; images whose shape and texture agree are left out.
shape bias = shape / (shape + texture) decisions; coverage = (shape + texture) / images. Per class: the images
whose shape is that class.

For the lab's models on `shapes-textured` (core/data/cue_conflict.py): the decisions are the stored top-1s of
an ordinary evaluation of its `conflict` split (cached like every evaluation), and the two controls are the
top-1 accuracies on `shape-only` and `texture-only`. Any model whose classes are `shapes`'s can be scored: one
trained on `shapes` never saw a texture, one trained on `shapes-textured` saw both cues agree.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.data import cue_conflict
from core.data.embedded import TEXTURED_ID, TEXTURED_VARIANTS
from core.errors import UserError
from core.evaluate import evaluate
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


def shape_bias(model: str, dataset: str = TEXTURED_ID, *, store: Store | None = None, precision: str | None = None,
               device: str | None = None) -> dict:
    """The `shape-bias` CLI's JSON for `model` on the generated cue-conflict set: {model, dataset, n, shape_bias,
    coverage, per_class, controls: {shape-only, texture-only top-1}, precision, cached}."""
    if dataset not in TEXTURED_VARIANTS:  # their bias splits are the same images
        raise UserError(f"shape bias is measured on {TEXTURED_ID} (generated cue conflict), not {dataset!r}")
    dataset = TEXTURED_ID
    store = store or Store()
    evs = {s: evaluate(model, dataset, s, store=store, precision=precision, device=device)
           for s in cue_conflict.BIAS_SPLITS}
    conflict = evs["conflict"]
    p = conflict.predictions  # the conflict split is labelled by shape: y_true is the shape class
    texture = cue_conflict.texture_labels("conflict")[p.index]
    out = score(p.y_true, texture, p.top_idx[:, 0], list(cue_conflict.CLASSES))
    meta = conflict.meta
    return {"model": meta.model, "model_name": meta.model_name, "family": meta.family, "dataset": dataset, **out,
            "controls": {s: evs[s].meta.top1 for s in ("shape-only", "texture-only")},
            "precision": meta.precision, "evaluations": {s: ev.key for s, ev in evs.items()},
            "cached": all(ev.cached for ev in evs.values())}
