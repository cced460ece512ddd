"""Layer groups: a model's parameters in forward order, cut into a handful of named blocks.

Used for per-group gradient norms (vanishing gradients show as the bottom groups' norms
collapsing) and for layer-wise fine-tuning (blocks unfreeze from the top).
"""
from __future__ import annotations

from torch import nn

MAX_GROUPS = 16


def layer_groups(module: nn.Module, max_groups: int = MAX_GROUPS) -> list[tuple[str, list[nn.Parameter]]]:
    """[(name, parameters)] from input to output. Starts from the module's children and keeps
    splitting the largest group into its children (runs of consecutive children when there are
    more than the budget allows, named like `features.3-5`) while there is room in `max_groups`."""
    top = [(n, m) for n, m in module.named_children() if _params(m)]
    groups: list[tuple[str, list[tuple[str, nn.Module]]]] = (_runs(top, max_groups) if len(top) > max_groups
                                                             else [(n, [(n, m)]) for n, m in top])
    split: set[str] = set()  # groups already split, or blocks of a sequence (kept whole: a transformer block)
    while len(groups) < max_groups:
        room = max_groups - len(groups) + 1
        candidates = [(sum(p.numel() for _, m in members for p in m.parameters()), i)
                      for i, (name, members) in enumerate(groups) if name not in split and _splittable(members, room)]
        if not candidates:
            break
        _, i = max(candidates)
        name, members = groups[i]
        split.add(name)
        kids = _kids(members)
        groups[i:i + 1] = _runs(kids, room) if len(kids) > 1 else [(name, kids)]
        if _is_sequence(members):  # its elements are blocks: split no further unless they are sequences too
            split |= {n for n, m in kids if not isinstance(m, (nn.Sequential, nn.ModuleList))}
    out = [(name, [p for _, m in members for p in m.parameters()]) for name, members in groups]
    own = [p for p in module.parameters(recurse=False)]  # e.g. a ViT's class token and position embedding
    if own:
        out.insert(0, ("(own)", own))
    return out


def _params(m: nn.Module) -> list[nn.Parameter]:
    return list(m.parameters())


def _kids(members: list[tuple[str, nn.Module]]) -> list[tuple[str, nn.Module]]:
    """The parameter-holding children of a group's modules; a group of one leaf module has none."""
    if len(members) > 1:
        return members
    name, m = members[0]
    return [(f"{name}.{n}", c) for n, c in m.named_children() if _params(c)]


def _splittable(members: list[tuple[str, nn.Module]], room: int) -> bool:
    """Children that fit the budget, or a sequence of layers (which may be cut into runs)."""
    kids = _kids(members)
    if not kids:
        return False
    return len(kids) <= room or _is_sequence(members)


def _is_sequence(members: list[tuple[str, nn.Module]]) -> bool:
    return len(members) > 1 or isinstance(members[0][1], (nn.Sequential, nn.ModuleList))


def _runs(kids: list[tuple[str, nn.Module]], room: int) -> list[tuple[str, list[tuple[str, nn.Module]]]]:
    """Cut `kids` into at most `room` runs of consecutive children, of near-equal length."""
    n = min(room, len(kids))
    bounds = [round(i * len(kids) / n) for i in range(n + 1)]
    out = []
    for a, b in zip(bounds, bounds[1:]):
        run = kids[a:b]
        first, last = run[0][0], run[-1][0]
        name = first if len(run) == 1 else f"{first}-{last.rsplit('.', 1)[-1]}"
        out.append((name, run))
    return out
