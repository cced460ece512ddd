"""The ImageNet-1k label space: 1000 WordNet ids and names, from timm's maintained ImageNet info."""
from __future__ import annotations

from functools import lru_cache

from core.models.wrapper import LabelSpace


@lru_cache(maxsize=1)
def imagenet1k() -> LabelSpace:
    """Index i is class i of every ImageNet-1k classifier (sorted WordNet ids, as the challenge numbers them)."""
    # lazy: timm takes ~2 s to import; only timm models and ImageNet label lookups need it
    from timm.data import ImageNetInfo

    info = ImageNetInfo("imagenet-1k")
    wnids = [info.index_to_label_name(i) for i in range(info.num_classes())]
    names = [info.index_to_description(i) for i in range(info.num_classes())]
    assert len(wnids) == 1000 and wnids == sorted(wnids)
    return LabelSpace(names=names, wnids=wnids)


ASSUMED_FROM_PLACEHOLDERS = ("ImageNet-1k class names assumed: the head has 1000 outputs with placeholder labels "
                             "(LABEL_0 ... LABEL_999)")


def _generic(names: list[str]) -> bool:
    """transformers' placeholder labels (LABEL_0 ...) or ours (class 0 ...)."""
    return all(n.replace("_", " ").lower() in (f"label {i}", f"class {i}") for i, n in enumerate(names))


def label_space_for_head(names: list[str]) -> LabelSpace:
    """The labels of a pretrained head. A 1000-way head whose names are ImageNet-1k's gets ImageNet-1k's WordNet
    ids, so it can be scored on any WordNet-labelled dataset. A head of exactly 1000 placeholder labels gets
    ImageNet-1k's names too, marked `assumed`; any other head keeps its own names."""
    if len(names) == 1000:
        reference = imagenet1k()
        same = sum(a.strip().lower() == b.strip().lower() for a, b in zip(names, reference.names))
        if same >= 900:
            return LabelSpace(names=list(names), wnids=list(reference.wnids))
        if _generic(names):
            return LabelSpace(names=list(reference.names), wnids=list(reference.wnids),
                              assumed=ASSUMED_FROM_PLACEHOLDERS)
    return LabelSpace(names=list(names))
