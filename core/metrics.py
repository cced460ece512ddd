"""Scores from stored predictions (scikit-learn's definitions, in numpy)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def mean_ci95(values) -> tuple[float | None, float | None]:
    """(mean, half-width of its 95% confidence interval) of independent runs: Student's t with n - 1 degrees of
    freedom times the standard error (sample standard deviation / sqrt(n)). Half-width None for one run (no
    interval from one seed); (None, None) for none. Three runs 0.80, 0.84, 0.88: mean 0.84, s = 0.04,
    half-width 4.303 x 0.04 / sqrt(3) = 0.0994."""
    x = [v for v in values if v is not None]
    return (float(np.mean(x)) if x else None), expected_ci95(x, len(x))


def expected_ci95(values, n: int) -> float | None:
    """The half-width a 95% interval over `n` independent runs would have if they spread as `values` do: Student's
    t with n - 1 degrees of freedom times s / sqrt(n), s the sample standard deviation of `values` (an estimate:
    more runs spread as they will). None for fewer than two values. Runs 0.80, 0.84, 0.88 (s = 0.04) over five:
    2.776 x 0.04 / sqrt(5) = 0.0497."""
    x = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if len(x) < 2 or n < 2:
        return None
    # lazy: scipy (a scikit-learn dependency) takes ~0.3 s to import; only an interval needs its t quantile
    from scipy.stats import t

    return float(t.ppf(0.975, n - 1) * x.std(ddof=1) / np.sqrt(n))


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

    The scores are scikit-learn's definitions (precision_recall_fscore_support with zero_division=0,
    balanced_accuracy_score, cohen_kappa_score, confusion_matrix), computed from the class counts in numpy:
    importing sklearn.metrics costs every evaluating or training process about 2 s, more than a small
    evaluation itself. tests/test_metrics.py checks each against scikit-learn.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    top = np.asarray(top, dtype=np.int64).reshape(len(y_true), -1)
    ranked_over = num_classes if ranked_over is None else ranked_over
    y_pred = top[:, 0]
    k = num_classes
    inside = (y_pred >= 0) & (y_pred < k)  # -1: a model class the dataset lacks, wrong for every true class
    confusion = np.bincount(y_true[inside] * k + y_pred[inside], minlength=k * k).reshape(k, k)
    tp = np.diag(confusion)
    support = np.bincount(y_true, minlength=k)  # every image of the class, those predicted outside included
    predicted = confusion.sum(axis=0)
    precision, recall = _share(tp, predicted), _share(tp, support)
    f1 = _share(2 * tp, support + predicted)  # 2 tp / (2 tp + fp + fn)
    # macro F1 over the classes seen in truth or predictions (scikit-learn's default label set):
    # a 200-class dataset scored on a 50-image subset is not averaged with classes it never saw
    seen = (support > 0) | (predicted > 0)
    n = len(y_true)
    return Metrics(
        n=n,
        top1=top_k_accuracy(y_true, top, 1),
        top5=top_k_accuracy(y_true, top, 5) if ranked_over > 5 else float("nan"),
        f1_macro=float(f1[seen].mean()) if seen.any() else float("nan"),
        cohen_kappa=_kappa(tp, support, predicted, labels=int(seen.sum()) + bool((~inside).any())),
        # the mean recall over the classes present in the truth
        balanced_accuracy=float(recall[support > 0].mean()) if n else float("nan"),
        precision=precision, recall=recall, f1=f1, support=support,
        confusion=confusion,
        outside=np.bincount(y_true[~inside], minlength=k),
    )


def _share(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den per class, 0 where den is 0 (scikit-learn's zero_division=0)."""
    return np.divide(num, den, out=np.zeros(len(num)), where=den > 0)


def _kappa(tp: np.ndarray, support: np.ndarray, predicted: np.ndarray, *, labels: int) -> float:
    """Cohen's kappa, (p_o - p_e) / (1 - p_e): observed agreement against the agreement expected from the true
    and predicted class frequencies alone. NaN where it is undefined: fewer than two `labels` among the truth and
    the predictions (one class only, so p_e = 1; or no images)."""
    if labels < 2:
        return float("nan")
    n = support.sum()
    p_o = tp.sum() / n
    p_e = float((support * predicted).sum()) / n**2  # -1 is never a true label: it adds nothing here
    return float((p_o - p_e) / (1 - p_e))
