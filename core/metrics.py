"""Scores from stored predictions (scikit-learn underneath)."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


def mean_ci95(values) -> tuple[float | None, float | None]:
    """(mean, half-width of its 95% confidence interval) of independent runs: Student's t with n - 1 degrees of
    freedom times the standard error (sample standard deviation / sqrt(n)). Half-width None for one run (no
    interval from one seed); (None, None) for none. Three runs 0.80, 0.84, 0.88: mean 0.84, s = 0.04,
    half-width 4.303 x 0.04 / sqrt(3) = 0.0994."""
    x = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if len(x) == 0:
        return None, None
    if len(x) == 1:
        return float(x[0]), None
    # lazy: scipy (a scikit-learn dependency) takes ~0.3 s to import; only an interval needs its t quantile
    from scipy.stats import t

    return float(x.mean()), float(t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))


def proportion_ci95(share: float | None, n: int | None) -> tuple[float | None, float | None]:
    """The 95% Wilson score interval (lo, hi) of an accuracy measured as `share` of `n` images: how sure one
    evaluation's top-1 is, from the number of images alone (it says nothing of seeds). 84 right of 100:
    0.756 to 0.899. (None, None) without images."""
    if share is None or not n:
        return None, None
    # lazy: scipy (a scikit-learn dependency) takes ~0.3 s to import
    from scipy.stats import binomtest

    ci = binomtest(round(share * n), n).proportion_ci(0.95, method="wilson")
    return float(ci.low), float(ci.high)


@dataclass
class Metrics:
    n: int
    top1: float
    top5: float
    f1_macro: float
    cohen_kappa: float
    balanced_accuracy: float
    precision: np.ndarray  # per class
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    confusion: np.ndarray  # rows: true class, columns: predicted class
    outside: np.ndarray  # per true class: top-1 predictions outside the dataset's classes (index -1)

    def summary(self) -> dict[str, float]:
        return {"top1": self.top1, "top5": self.top5, "f1_macro": self.f1_macro,
                "cohen_kappa": self.cohen_kappa, "balanced_accuracy": self.balanced_accuracy}


def top_k_accuracy(y_true: np.ndarray, top: np.ndarray, k: int) -> float:
    """Share of rows whose true label is among the first k columns of `top` (ranked predictions)."""
    if len(y_true) == 0:
        return float("nan")
    return float((top[:, :k] == y_true[:, None]).any(axis=1).mean())


def compute_metrics(y_true: np.ndarray, top: np.ndarray, num_classes: int, *,
                    ranked_over: int | None = None) -> Metrics:
    """Metrics over `num_classes` classes from true labels and ranked top-k predictions (N, k).

    Classes absent from both truth and predictions still get a row (zeros), so per-class
    arrays always have `num_classes` entries. `ranked_over` is how many classes the ranks were
    drawn from (default `num_classes`; 1000 for an ImageNet model scored over all its classes):
    with 5 or fewer, every class is in the top 5 and top-5 is undefined (NaN), not a free 100%.
    A prediction of -1 (a model class the dataset lacks) is wrong, and counted in `outside`.
    """
    with warnings.catch_warnings():
        # small samples miss classes; sklearn warns, and our docstring says what we do instead
        warnings.simplefilter("ignore", UserWarning)
        return _compute(np.asarray(y_true, dtype=np.int64), np.asarray(top, dtype=np.int64), num_classes,
                        num_classes if ranked_over is None else ranked_over)


def _compute(y_true: np.ndarray, top: np.ndarray, num_classes: int, ranked_over: int) -> Metrics:
    # lazy: scikit-learn takes ~1.5 s to import; the app's pages load this module before any score is computed
    from sklearn.metrics import (
        balanced_accuracy_score,
        confusion_matrix,
        precision_recall_fscore_support,
    )

    top = top.reshape(len(y_true), -1)
    y_pred = top[:, 0]
    labels = np.arange(num_classes)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    # macro F1 over the classes seen in truth or predictions (scikit-learn's default label set):
    # a 200-class dataset scored on a 50-image subset is not averaged with classes it never saw
    seen = np.isin(labels, y_true) | np.isin(labels, y_pred)
    f1_macro = float(f[seen].mean()) if seen.any() else float("nan")
    return Metrics(
        n=len(y_true),
        top1=top_k_accuracy(y_true, top, 1),
        top5=top_k_accuracy(y_true, top, 5) if ranked_over > 5 else float("nan"),
        f1_macro=f1_macro,
        cohen_kappa=_kappa(y_true, y_pred),
        balanced_accuracy=float(balanced_accuracy_score(y_true, y_pred)) if len(y_true) else float("nan"),
        precision=p, recall=r, f1=f, support=s,
        confusion=confusion_matrix(y_true, y_pred, labels=labels),
        outside=np.bincount(y_true[y_pred < 0], minlength=num_classes),
    )


def _kappa(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Cohen's kappa; NaN where it is undefined (one class only: chance agreement is 1)."""
    # lazy: scikit-learn takes ~1.5 s to import; the app's pages load this module before any score is computed
    from sklearn.metrics import cohen_kappa_score

    if len(np.unique(np.concatenate([y_true, y_pred]))) < 2:
        return float("nan")
    return float(cohen_kappa_score(y_true, y_pred))
