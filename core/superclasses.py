"""WordNet superclasses for datasets with 100+ WordNet classes, so a 1000-class confusion matrix can be
read group by group and drilled into.

The hypernym chains of ImageNet-1k's classes come from WordNet 3.0 (`core/data/wordnet_imagenet.json`,
built by scripts/build_wordnet_tree.py; Princeton's license is inside it). Groups are cut from that
tree: start from the classes' deepest common ancestor and keep splitting the largest group into its
WordNet children until no group is larger than `max_size` (toy dog, hound dog, working dog, ...).
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

OTHER = "(not in WordNet's ImageNet tree)"


@lru_cache(maxsize=1)
def _tree() -> tuple[dict[str, list[str]], dict[str, str]]:
    d = json.loads((Path(__file__).parent / "data" / "wordnet_imagenet.json").read_text())
    return d["chains"], d["names"]


def wordnet_groups(wnids: list[str], max_size: int | None = None) -> dict[str, list[int]]:
    """Superclass name -> class indices (every class in exactly one group), groups in tree order."""
    chains, names = _tree()
    max_size = max_size or max(12, len(wnids) // 8)  # ImageNet-1k: 55 groups (dog 118, device 124, bird 52, ...)
    known = [i for i, w in enumerate(wnids) if w in chains]
    paths = {i: chains[wnids[i]] + [wnids[i]] for i in known}
    groups: list[tuple[int, list[int]]] = [(_common_depth([paths[i] for i in known]), known)] if known else []
    while True:
        big = [(len(m), g) for g, (depth, m) in enumerate(groups) if len(m) > max_size]
        if not big:
            break
        _, g = max(big)
        depth, members = groups[g]
        children: dict[str, list[int]] = {}
        for i in members:
            children.setdefault(paths[i][min(depth + 1, len(paths[i]) - 1)], []).append(i)
        if len(children) == 1:  # a chain with one child: go one level deeper, same members
            if all(depth + 1 >= len(paths[i]) - 1 for i in members):
                break  # nothing left to split
            groups[g] = (depth + 1, members)
            continue
        groups[g:g + 1] = [(depth + 1, m) for m in children.values()]
    out: dict[str, list[int]] = {}
    for depth, members in groups:
        node = paths[members[0]][depth]
        name = names.get(node, node)
        out[name if name not in out else f"{name} ({node})"] = sorted(members)
    unknown = [i for i, w in enumerate(wnids) if w not in chains]
    if unknown:
        out[OTHER] = unknown
    return out


def _common_depth(paths: list[list[str]]) -> int:
    depth = 0
    while all(len(p) > depth + 1 for p in paths) and len({p[depth + 1] for p in paths}) == 1:
        depth += 1
    return depth
