"""How far a model's confidence can be trusted: calibration error, likelihood, Brier score, temperature scaling.

- ECE: the top-label expected calibration error with 15 equal-width confidence bins (Guo et al. 2017, "On
  Calibration of Modern Neural Networks"; the binning Minderer et al. 2021 report), with torchmetrics' binning
  rule: bins are [lo, hi) on float32 edges, and a confidence of exactly 1.0 (common in float32 for a logit margin
  above ~17), which would sit in a bin of its own, is first capped at the largest float32 below 1, so the last bin
  is [14/15, 1]. Computed here with numpy from the bins `reliability` draws; the tests check it against
  torchmetrics' `binary_calibration_error` and `multiclass_calibration_error`, which are not imported at run time
  because torchmetrics imports all its domains (audio, text, image; ~5 s) in every process that evaluates.
- Adaptive ECE: the same sum over 15 equal-mass bins (Nguyen & O'Connor 2015; Nixon et al. 2019, "Measuring
  Calibration in Deep Learning"), so sparse high-confidence bins do not dominate.
- NLL: mean -log p(true class); Brier: mean over images of sum_k (p_k - [k = true])^2 (Brier 1950; the multiclass
  form Guo et al. use). Both come from the per-image values an evaluation stores (core/evaluate.py), computed from
  the full probability vector when the model ran.
- Temperature scaling (Guo et al. 2017): one scalar T > 0 divides every logit, fitted by minimising NLL on one
  split and reported on another, so what a single scalar fixes is measured on images it was not fitted to.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BINS = 15
_BELOW_ONE = np.nextafter(np.float32(1), np.float32(0))


def _binned(conf: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """(confidences as float32 capped below 1, each one's bin) with torchmetrics' rule: bin b holds
    [b/bins, (b+1)/bins) on float32 boundaries (torch.bucketize(..., right=True) - 1); the boundaries are b/bins
    rounded to float32 (numpy's linspace; torch.linspace's are an ulp off at some)."""
    c = np.minimum(np.asarray(conf, dtype=np.float32), _BELOW_ONE)
    edges = np.linspace(0, 1, bins + 1, dtype=np.float32)
    return c, np.clip(np.searchsorted(edges, c, side="right") - 1, 0, bins - 1)


def _top1(conf: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    conf = np.asarray(conf, dtype=np.float64).reshape(-1)
    correct = np.asarray(correct, dtype=bool).reshape(-1)
    if len(conf) != len(correct):
        raise ValueError(f"{len(conf)} confidences but {len(correct)} outcomes")
    return conf, correct


def ece(conf: np.ndarray, correct: np.ndarray, bins: int = BINS) -> float | None:
    """Top-label ECE over `bins` equal-width bins of [0, 1]: sum over bins of |accuracy - mean confidence| x the
    bin's share of images. None for no images."""
    conf, correct = _top1(conf, correct)
    if len(conf) == 0:
        return None
    conf, b = _binned(conf, bins)
    gap = np.abs(np.bincount(b, weights=correct, minlength=bins) - np.bincount(b, weights=conf, minlength=bins))
    return float(gap.sum() / len(conf))  # sum over bins of |right - confidence summed| / N = sum of n_b/N |acc - conf|


def adaptive_ece(conf: np.ndarray, correct: np.ndarray, bins: int = BINS) -> float | None:
    """ECE over `bins` equal-mass bins: images sorted by confidence and cut into groups as equal as can be
    (sizes differ by at most one); None for no images."""
    conf, correct = _top1(conf, correct)
    if len(conf) == 0:
        return None
    order = np.argsort(conf, kind="stable")
    gaps = [abs(correct[g].mean() - conf[g].mean()) * len(g) for g in np.array_split(order, min(bins, len(conf)))]
    return float(sum(gaps) / len(conf))


def reliability(conf: np.ndarray, correct: np.ndarray, bins: int = BINS) -> list[dict]:
    """The reliability diagram's bars: per equal-width bin, its images, mean confidence and accuracy (None for an
    empty bin); the bins `ece` sums over, so the bars' gaps weighted by their images add up to it."""
    conf, correct = _top1(conf, correct)
    conf, b = _binned(conf, bins)
    out = []
    for i in range(bins):
        m = b == i
        n = int(m.sum())
        out.append({"lo": i / bins, "hi": (i + 1) / bins, "n": n,
                    "confidence": float(conf[m].mean()) if n else None,
                    "accuracy": float(correct[m].mean()) if n else None})
    return out


def terms(logp: np.ndarray, true_col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image, from log-probabilities (N, C) and the column of each image's true class: -log p(true) and the
    Brier term sum_k (p_k - [k = true])^2 = sum_k p_k^2 - 2 p_true + 1."""
    rows = np.arange(len(logp))
    p = np.exp(logp)
    return -logp[rows, true_col], (p * p).sum(axis=1) - 2 * p[rows, true_col] + 1


@dataclass(frozen=True)
class Calibration:
    """The calibration figures of one set of predictions."""

    n: int
    ece: float | None
    adaptive_ece: float | None
    nll: float | None
    brier: float | None

    def to_json(self) -> dict:
        return {"n": self.n, "ece": self.ece, "adaptive_ece": self.adaptive_ece, "nll": self.nll, "brier": self.brier}


def summarize(conf: np.ndarray, correct: np.ndarray, nll: np.ndarray | None, brier: np.ndarray | None,
              bins: int = BINS) -> Calibration:
    """From per-image top-1 confidence, correctness, -log p(true) and Brier terms (the last two None when not
    stored)."""
    conf, correct = _top1(conf, correct)

    def mean(a: np.ndarray | None) -> float | None:
        return float(np.mean(a)) if a is not None and len(a) else None

    return Calibration(len(conf), ece(conf, correct, bins), adaptive_ece(conf, correct, bins), mean(nll), mean(brier))


def from_logits(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0, bins: int = BINS) -> Calibration:
    """The figures of logits (N, C) over the dataset's classes divided by `temperature`."""
    # lazy: scipy takes ~0.3 s to import; only figures computed from logits need it
    from scipy.special import log_softmax

    labels = np.asarray(labels, dtype=np.int64)
    logp = log_softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)
    top = logp.argmax(axis=1)
    nll, brier = terms(logp, labels)
    return summarize(np.exp(logp[np.arange(len(labels)), top]), top == labels, nll, brier, bins)


def nll_at(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    # lazy: scipy takes ~0.3 s to import; only figures computed from logits need it
    from scipy.special import log_softmax

    logp = log_softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)
    return float(-logp[np.arange(len(labels)), np.asarray(labels, dtype=np.int64)].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 that minimises the NLL of softmax(logits / T) on these labels. NLL is convex in 1/T, so a bounded
    scalar search over log T (T from e^-5 to e^5) finds its minimum; Guo et al.'s code runs L-BFGS on T itself."""
    # lazy: scipy takes ~0.3 s to import; only a fit needs its optimiser
    from scipy.optimize import minimize_scalar

    if len(labels) == 0:
        raise ValueError("no images to fit a temperature on")
    res = minimize_scalar(lambda t: nll_at(logits, labels, float(np.exp(t))), bounds=(-5.0, 5.0), method="bounded",
                          options={"xatol": 1e-6})
    return float(np.exp(res.x))
