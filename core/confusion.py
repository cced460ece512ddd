"""Confusion matrices as data a page can draw and click: cells, class subsets, the images behind a cell.

Scoring "all" uses the model's top-1 over all its classes (a class outside the dataset becomes
the extra column "(outside the dataset)"); "restricted" uses the argmax over the dataset's classes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.data.registry import load_dataset
from core.errors import UserError
from core.evaluate import Evaluation
from core.metrics import compute_metrics
from core.models.imagenet import imagenet1k
from core.superclasses import wordnet_groups

OUTSIDE = "(outside the dataset)"
SUBSETS = ("first", "most confused", "search", "superclass")
GROUPING_MIN_CLASSES = 100  # below this a matrix of classes is readable as it is


@dataclass
class CellImage:
    index: int  # position in the full split
    image: np.ndarray  # uint8 (H, W, 3)
    true: str
    top: list[tuple[str, float]]  # ranked (class, probability)


def predictions_for(ev: Evaluation, scoring: str = "all"):
    if scoring == "restricted":
        if ev.restricted is None:
            raise UserError("this evaluation has one scoring only (the model predicts the dataset's classes)")
        return ev.restricted
    return ev.predictions


def confusion(ev: Evaluation, scoring: str = "all") -> np.ndarray:
    """Counts (true class, predicted class); with scoring "all" and predictions outside the dataset,
    one more column for them."""
    p = predictions_for(ev, scoring)
    n = ev.meta.num_classes
    pred = p.top_idx[:, 0].astype(np.int64)
    outside = (pred < 0).any()
    cols = n + 1 if outside else n
    pred = np.where(pred < 0, n, pred)
    return np.bincount(p.y_true.astype(np.int64) * cols + pred, minlength=n * cols).reshape(n, cols)


def class_subset(ev: Evaluation, classes: list[str], mode: str = "first", n: int = 20, query: str = "",
                 scoring: str = "all") -> list[int]:
    """Which classes (rows and columns) to show: the first n, the n with most off-diagonal errors
    (as true or predicted class), or those whose name contains `query`."""
    if mode == "search":
        q = query.strip().lower()
        return [i for i, c in enumerate(classes) if q in c.lower()][:max(n, 1)] if q else []
    if mode == "most confused":
        cm = confusion(ev, scoring)[:, :len(classes)].astype(np.int64)
        off = cm - np.diag(np.diag(cm))
        score = off.sum(axis=0) + off.sum(axis=1)
        return sorted(np.argsort(-score, kind="stable")[:n].tolist())
    if mode == "first":
        return list(range(min(n, len(classes))))
    raise UserError(f"unknown subset {mode!r}; one of {', '.join(SUBSETS)}")


def confusion_cells(ev: Evaluation, classes: list[str], subset: list[int], scoring: str = "all") -> list[dict]:
    """One row per shown cell: true and predicted class (index and name), count, share of the row
    (over the whole row, not just the shown columns), and whether it is the diagonal."""
    cm = confusion(ev, scoring)
    n = len(classes)
    row_total = cm.sum(axis=1)
    cols = subset + ([n] if cm.shape[1] > n else [])
    out = []
    for t in subset:
        for p in cols:
            count = int(cm[t, p])
            out.append({"true": t, "pred": p, "true_name": classes[t], "pred_name": classes[p] if p < n else OUTSIDE,
                        "count": count, "row_share": count / row_total[t] if row_total[t] else 0.0,
                        "correct": t == p})
    return out


def superclasses(ev: Evaluation, wnids: list[str] | None) -> dict[str, list[int]] | None:
    """WordNet superclass groups of the dataset's classes, when it has 100+ WordNet classes."""
    if not wnids or len(wnids) < GROUPING_MIN_CLASSES:
        return None

    return wordnet_groups(wnids)


def grouped_cells(ev: Evaluation, groups: dict[str, list[int]], scoring: str = "all") -> list[dict]:
    """The confusion matrix summed over superclass groups: one row per (true group, predicted group);
    predictions outside the dataset form their own column."""
    cm = confusion(ev, scoring)
    n = ev.meta.num_classes
    names = list(groups)
    member = np.full(cm.shape[1], len(names), dtype=np.int64)  # the outside column, if any
    for g, idx in enumerate(groups.values()):
        member[idx] = g
    cols = len(names) + (1 if cm.shape[1] > n else 0)
    summed = np.zeros((len(names), cols), dtype=np.int64)
    for g, idx in enumerate(groups.values()):
        np.add.at(summed[g], member, cm[idx].sum(axis=0))
    total = summed.sum(axis=1)
    return [{"true": t, "pred": p, "true_name": names[t], "pred_name": names[p] if p < len(names) else OUTSIDE,
             "count": int(summed[t, p]), "row_share": summed[t, p] / total[t] if total[t] else 0.0, "correct": t == p}
            for t in range(len(names)) for p in range(cols)]


def cell_images(ev: Evaluation, true: int, pred: int, classes: list[str], *, scoring: str = "all",
                limit: int = 24) -> tuple[int, list[CellImage]]:
    """How many images fall in cell (true, pred), and the first `limit` of them with their top-5."""
    p = predictions_for(ev, scoring)
    n = len(classes)
    top1 = np.where(p.top_idx[:, 0] < 0, n, p.top_idx[:, 0])
    rows = np.flatnonzero((p.y_true == true) & (top1 == pred))
    if len(rows) == 0:
        return 0, []
    split = load_dataset(ev.meta.dataset).split(ev.meta.split)
    out = []
    for r in rows[:limit]:
        idx = int(p.index[r])
        top = [(classes[c] if 0 <= c < n else _model_label(ev, r, j), float(prob))
               for j, (c, prob) in enumerate(zip(p.top_idx[r], p.top_prob[r]))]
        img = split.load(idx)
        if img.ndim == 2 or img.shape[-1] == 1:
            img = np.repeat(img.reshape(img.shape[0], img.shape[1], 1), 3, axis=2)
        out.append(CellImage(idx, img, classes[true], top))
    return len(rows), out


def _model_label(ev: Evaluation, row: int, rank: int) -> str:
    """A predicted class the dataset lacks: its ImageNet-1k name (WordNet alignment means an ImageNet head)."""
    m = ev.predictions.model_top_idx
    if m is not None and ev.meta.model_classes == 1000:
        return imagenet1k().names[int(m[row, rank])]
    return OUTSIDE


def class_report(ev: Evaluation, class_index: int, classes: list[str], scoring: str = "all", top: int = 5) -> dict:
    """One class under one evaluation: precision, recall, F1, support, and where its images went."""
    p = predictions_for(ev, scoring)
    m = compute_metrics(p.y_true, p.top_idx, len(classes))
    row = confusion(ev, scoring)[class_index]
    n = len(classes)
    went = [(classes[j] if j < n else OUTSIDE, int(c)) for j, c in enumerate(row) if j != class_index and c > 0]
    went.sort(key=lambda t: -t[1])
    return {"precision": float(m.precision[class_index]), "recall": float(m.recall[class_index]),
            "f1": float(m.f1[class_index]), "support": int(m.support[class_index]), "correct": int(row[class_index]),
            "confused_with": went[:top]}


def disagreements(a: Evaluation, b: Evaluation, scoring: str = "all") -> list[dict]:
    """Per true class, how many images A gets right and B wrong, and the reverse, over the images both
    scored (matched by their position in the split)."""
    pa, pb = predictions_for(a, scoring), predictions_for(b, scoring)
    common, ia, ib = np.intersect1d(pa.index, pb.index, return_indices=True)
    y = pa.y_true[ia]
    ra, rb = pa.top_idx[ia, 0] == y, pb.top_idx[ib, 0] == y
    n = a.meta.num_classes
    out = []
    for which, mask in (("A right, B wrong", ra & ~rb), ("B right, A wrong", rb & ~ra)):
        counts = np.bincount(y[mask], minlength=n)
        out += [{"true": c, "which": which, "count": int(counts[c])} for c in range(n)]
    return out


def shared_images(a: Evaluation, b: Evaluation, scoring: str = "all") -> int:
    """How many images two evaluations both scored (matched by their position in the split): what
    `disagreements` counts over."""
    return len(np.intersect1d(predictions_for(a, scoring).index, predictions_for(b, scoring).index))


def disagreement_images(a: Evaluation, b: Evaluation, true: int, which: str, classes: list[str], *,
                        scoring: str = "all", limit: int = 12) -> tuple[int, list[tuple[CellImage, CellImage]]]:
    """The images of class `true` that one model gets right and the other wrong, each with both models' top-5."""
    pa, pb = predictions_for(a, scoring), predictions_for(b, scoring)
    common, ia, ib = np.intersect1d(pa.index, pb.index, return_indices=True)
    y = pa.y_true[ia]
    ra, rb = pa.top_idx[ia, 0] == y, pb.top_idx[ib, 0] == y
    mask = (y == true) & ((ra & ~rb) if which.startswith("A") else (rb & ~ra))
    rows = np.flatnonzero(mask)
    split = load_dataset(a.meta.dataset).split(a.meta.split)
    n = len(classes)
    out = []
    for r in rows[:limit]:
        img = split.load(int(common[r]))
        if img.ndim == 2 or img.shape[-1] == 1:
            img = np.repeat(img.reshape(img.shape[0], img.shape[1], 1), 3, axis=2)
        pair = []
        for p, row in ((pa, ia[r]), (pb, ib[r])):
            top = [(classes[c] if 0 <= c < n else OUTSIDE, float(q)) for c, q in zip(p.top_idx[row], p.top_prob[row])]
            pair.append(CellImage(int(common[r]), img, classes[true], top))
        out.append((pair[0], pair[1]))
    return len(rows), out
