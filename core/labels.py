"""How a model's outputs line up with a dataset's classes.

native: the model predicts exactly the dataset's classes (same names, same order).
wordnet: both carry WordNet ids and the model's include every dataset class (an ImageNet-1k model
on Tiny ImageNet, on ImageNet val, or on any WordNet-labelled subset). Such a model is scored two
ways: over all of its classes (a prediction outside the dataset is simply wrong; what the reference
notebook did) and restricted to the dataset's classes (argmax over their logits only).
grouped: each dataset class pools several of the model's WordNet classes (the 16 categories of the cue-conflict
stimuli, `Dataset.wnid_groups`); a class's probability is the mean of the softmax probabilities of its model
classes, as the model-vs-human toolbox decides (docs/cue-conflict-sources.md), and the decision is the top one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import UserError


@dataclass(frozen=True)
class Alignment:
    kind: str  # "native", "wordnet" or "grouped"
    model_index: np.ndarray  # for each dataset class, the model output that stands for it; grouped: all pooled outputs
    num_model_classes: int
    group_sizes: tuple[int, ...] = ()  # grouped: how many of model_index's outputs each dataset class pools, in order

    def key(self) -> list:
        """What an evaluation key records of the alignment."""
        return [self.kind, self.model_index.tolist(), *([list(self.group_sizes)] if self.group_sizes else [])]

    def to_dataset(self, model_idx: np.ndarray) -> np.ndarray:
        """Model class indices -> dataset class indices; -1 for a class the dataset does not have."""
        if self.kind == "grouped":  # its top-k is ranked over the dataset's classes already
            return model_idx
        lookup = np.full(self.num_model_classes, -1, dtype=np.int64)
        lookup[self.model_index] = np.arange(len(self.model_index))
        return lookup[model_idx]

    @property
    def scored_both_ways(self) -> bool:
        return self.kind == "wordnet" and self.num_model_classes > len(self.model_index)

    def describe(self) -> str:
        if self.kind == "grouped":
            return f"mean probability of each class's {len(self.model_index)} pooled model classes"
        if not self.scored_both_ways:
            return "native"
        return f"all {self.num_model_classes} model classes"


def _plain(name: str) -> str:
    return name.strip().lower()


def align(model_labels, dataset) -> Alignment:
    """The alignment of a model's LabelSpace with a Dataset's classes, or a UserError saying why none exists."""
    n_model, n_data = len(model_labels.names), dataset.num_classes
    if dataset.wnid_groups and not model_labels.wnids:
        raise UserError(f"{dataset.id}'s classes each pool ImageNet classes; the model's {n_model} classes have no "
                        "WordNet ids to pool (pick an ImageNet-1k model)")
    if dataset.wnid_groups:
        where = {w: i for i, w in enumerate(model_labels.wnids)}
        groups = [[where[w] for w in g if w in where] for g in dataset.wnid_groups]
        if empty := [c for c, g in zip(dataset.classes, groups) if not g]:
            raise UserError(f"none of the model's {n_model} WordNet classes is in {dataset.id}'s class "
                            f"{empty[0]!r} ({len(empty)} such classes)")
        return Alignment("grouped", np.array([i for g in groups for i in g], dtype=np.int64), n_model,
                         tuple(len(g) for g in groups))
    if model_labels.wnids and dataset.wnids:
        where = {w: i for i, w in enumerate(model_labels.wnids)}
        missing = [w for w in dataset.wnids if w not in where]
        if missing:
            raise UserError(f"{len(missing)} of {dataset.id}'s {n_data} WordNet classes are not among the model's "
                            f"{n_model} (first: {missing[0]})")
        return Alignment("wordnet", np.array([where[w] for w in dataset.wnids], dtype=np.int64), n_model)
    if n_model == n_data:
        names = [_plain(n) for n in model_labels.names]
        generic = all(n in (f"class {i}", f"label_{i}", f"label {i}") for i, n in enumerate(names))
        if generic or names == [_plain(c) for c in dataset.classes]:
            return Alignment("native", np.arange(n_data, dtype=np.int64), n_model)
        raise UserError(f"the model's classes ({', '.join(model_labels.names[:3])}, ...) are not {dataset.id}'s "
                        f"({', '.join(dataset.classes[:3])}, ...); give it a new head for this dataset first")
    hint = " (the dataset has no WordNet ids to match an ImageNet model by)" if model_labels.wnids else ""
    raise UserError(f"the model predicts {n_model} classes and {dataset.id} has {n_data}{hint}; "
                    "give the model a new head for this dataset first")
