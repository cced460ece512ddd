"""How faithful a heat map is: change the image in the map's order and watch the model's probability of the class.

- **Deletion and insertion** (Petsiuk et al. 2018, "RISE", section 4.1). Pixels are ranked by the map, highest
  first, and changed in `steps` equal steps. Deletion sets them to a constant, the model's normalisation mean (0
  after normalising: a mid-grey for most models); insertion puts them back, from the most salient, onto a blurred
  copy of the image (Gaussian, sigma = `blur` x the side; RISE blurs 224-px images with sigma 5, about 1/45 of the
  side, which leaves a 32-px shape readable, so sigma here is 1/8 of the side). The score is the area under the
  class probability against the fraction of pixels changed (trapezoids, x from 0 to 1): **deletion lower is
  better, insertion higher**.
- **ROAD** (Rong et al. 2022, "A Consistent and Efficient Evaluation Strategy for Attribution Methods"). Remove the
  p% most relevant pixels (MoRF) or the p% least relevant (LeRF), p = 10, 20, ..., 90, and fill them by noisy
  linear imputation: every removed pixel is the weighted mean of its 8 neighbours (1/6 for the 4 edge neighbours,
  1/12 for the corners), solved for all removed pixels at once as one sparse linear system, plus N(0, 0.01)
  noise. Unlike a constant, the fill does not draw the removed region's outline for the model to read. The score
  is the mean class probability over p: **MoRF lower is better, LeRF higher**.
- **Baselines**: a random map (uniform noise, seeded per image) and the centre prior (closeness to the image's
  centre). A method is worth reading only where it beats both.

Every score is of the class the map explains (by default the model's fp32 top-1), from fp32 forwards.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF

STEPS = 32
BLUR = 1 / 8  # insertion's substrate: Gaussian sigma as a fraction of the image side
ROAD_PERCENTS = (10, 20, 30, 40, 50, 60, 70, 80, 90)
ROAD_NOISE = 0.01  # the ROAD reference code's default (tleemann/road_evaluation, imputations.py)
FORWARD_BATCH = 64
BASELINES = ("random", "centre")
# (offset in rows, offset in columns, weight): ROAD's neighbourhood
NEIGHBOURS = ((1, 1, 1 / 12), (0, 1, 1 / 6), (-1, 1, 1 / 12), (1, -1, 1 / 12), (0, -1, 1 / 6), (-1, -1, 1 / 12),
              (1, 0, 1 / 6), (-1, 0, 1 / 6))
SUBSTRATES = {"deletion": "constant: the model's normalisation mean (0 after normalising)",
              "insertion": f"Gaussian blur, sigma {BLUR:.3g} x the image side",
              "road": f"noisy linear imputation (8 neighbours, noise {ROAD_NOISE})"}

ProbFn = Callable[[torch.Tensor], torch.Tensor]  # normalised (N, C, H, W) -> class probability (N,)


def order(heat: np.ndarray) -> np.ndarray:
    """Pixel indices (row-major) from the most to the least salient; ties keep raster order."""
    return np.argsort(-np.asarray(heat, dtype=np.float64).reshape(-1), kind="stable")


def auc(p: np.ndarray) -> np.ndarray:
    """Area under probability curves (..., S + 1) sampled at x = 0, 1/S, ..., 1: the trapezoid rule."""
    p = np.asarray(p, dtype=np.float64)
    s = p.shape[-1] - 1
    return (p.sum(-1) - (p[..., 0] + p[..., -1]) / 2) / s


def counts(n_pixels: int, steps: int) -> list[int]:
    """Pixels changed after each of `steps` steps (0 first, all last), as even as whole pixels allow."""
    steps = min(steps, n_pixels)
    return [round(k * n_pixels / steps) for k in range(steps + 1)]


def blurred(x: torch.Tensor, blur: float = BLUR) -> torch.Tensor:
    """Insertion's start: (1, C, H, W) blurred with a Gaussian of sigma `blur` x the shorter side."""
    sigma = blur * min(x.shape[-2:])
    k = min(2 * math.ceil(3 * sigma) + 1, 2 * min(x.shape[-2:]) - 1)  # odd, and its reflect padding fits
    return TF.gaussian_blur(x, [k, k], [sigma, sigma]) if k >= 3 else x.clone()


def _probabilities(prob: ProbFn, batch: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return torch.cat([prob(batch[i:i + FORWARD_BATCH]).float().cpu()
                          for i in range(0, len(batch), FORWARD_BATCH)]).numpy().astype(np.float64)


def deletion_insertion(prob: ProbFn, x: torch.Tensor, heat: np.ndarray, steps: int = STEPS, blur: float = BLUR,
                       insert_onto: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(deletion curve, insertion curve), each the class probability after 0..steps steps. Insertion starts from
    `insert_onto` (default: the image blurred)."""
    _, c, h, w = x.shape
    rank = torch.as_tensor(order(heat), device=x.device)
    ks = counts(h * w, steps)
    changed = torch.zeros(len(ks), h * w, dtype=torch.bool, device=x.device)
    for i, k in enumerate(ks):
        changed[i, rank[:k]] = True
    changed = changed.reshape(len(ks), 1, h, w)
    deleted = torch.where(changed, torch.zeros_like(x), x)  # (S + 1, C, H, W)
    inserted = torch.where(changed, x, blurred(x, blur) if insert_onto is None else insert_onto)
    p = _probabilities(prob, torch.cat([deleted, inserted]))
    return p[:len(ks)], p[len(ks):]


def impute(img: np.ndarray, removed: np.ndarray, noise: float = ROAD_NOISE,
           rng: np.random.Generator | None = None) -> np.ndarray:
    """ROAD's noisy linear imputation: (C, H, W) `img` with the `removed` (H, W) pixels replaced by the solution
    of x_i = sum_j w_ij x_j / sum_j w_ij over each removed pixel's in-image neighbours j, plus N(0, noise)."""
    # lazy: scipy (a scikit-learn dependency) takes ~0.3 s to import; only ROAD needs a sparse solver
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import spsolve

    c, h, w = img.shape
    out = np.array(img, dtype=np.float64, copy=True)
    todo = np.flatnonzero(removed.reshape(-1))
    if len(todo) == 0:
        return out.astype(img.dtype)
    var = np.full(h * w, -1)
    var[todo] = np.arange(len(todo))
    r, q = np.divmod(todo, w)
    flat = out.reshape(c, -1)
    rows, cols, vals = [], [], []
    diag = np.zeros(len(todo))
    rhs = np.zeros((len(todo), c))
    for dr, dc, wt in NEIGHBOURS:
        rr, cc = r + dr, q + dc
        inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
        eq = np.flatnonzero(inside)
        nb = rr[inside] * w + cc[inside]
        diag[eq] += wt
        unknown = var[nb] >= 0
        rows.append(eq[unknown])
        cols.append(var[nb[unknown]])
        vals.append(np.full(unknown.sum(), -wt))
        rhs[eq[~unknown]] += wt * flat[:, nb[~unknown]].T
    rows.append(np.arange(len(todo)))
    cols.append(np.arange(len(todo)))
    vals.append(diag)
    a = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                   shape=(len(todo), len(todo))).tocsc()
    sol = np.asarray(spsolve(a, rhs)).reshape(len(todo), c)
    if noise:
        sol = sol + (rng or np.random.default_rng(0)).normal(0, noise, sol.shape)
    flat[:, todo] = sol.T
    return out.astype(img.dtype)


def road(prob: ProbFn, x: torch.Tensor, heat: np.ndarray, percents: tuple[int, ...] = ROAD_PERCENTS,
         seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(MoRF curve, LeRF curve): the class probability with each percentage of the most / least relevant pixels
    removed and imputed (the noise seeded by `seed`, the same for every map of an image)."""
    _, c, h, w = x.shape
    rank = order(heat)
    img = x[0].detach().cpu().numpy()
    batch = []
    for most in (True, False):
        for p in percents:
            k = round(p / 100 * h * w)
            removed = np.zeros(h * w, dtype=bool)
            removed[rank[:k] if most else rank[h * w - k:]] = True
            batch.append(impute(img, removed.reshape(h, w), rng=np.random.default_rng([seed, p, most])))
    probs = _probabilities(prob, torch.as_tensor(np.stack(batch), device=x.device))
    return probs[:len(percents)], probs[len(percents):]


def baseline_map(name: str, hw: tuple[int, int], seed: int = 0) -> np.ndarray:
    """The random map (uniform, seeded) or the centre prior (1 at the centre, falling linearly with distance)."""
    h, w = hw
    if name == "random":
        return np.random.default_rng(seed).random((h, w)).astype(np.float32)
    if name == "centre":
        yy, xx = np.mgrid[0:h, 0:w]
        d = np.hypot((yy - (h - 1) / 2) / h, (xx - (w - 1) / 2) / w)
        return (1 - d / d.max()).astype(np.float32)
    raise ValueError(name)


@dataclass
class Scores:
    """One map's curves for one image and class, and their summaries."""

    deletion: np.ndarray  # (S + 1,) class probability
    insertion: np.ndarray
    morf: np.ndarray  # (len(ROAD_PERCENTS),)
    lerf: np.ndarray

    def summary(self) -> dict:
        return {"deletion_auc": float(auc(self.deletion)), "insertion_auc": float(auc(self.insertion)),
                "road_morf": float(self.morf.mean()) if self.morf.size else None,
                "road_lerf": float(self.lerf.mean()) if self.lerf.size else None}


def class_probability(logits: Callable[[torch.Tensor], torch.Tensor], index: int) -> ProbFn:
    """A classifier's softmax probability of class `index`, computed in fp32."""
    return lambda batch: torch.softmax(logits(batch).float(), -1)[:, index]


def score_map(prob: ProbFn, x: torch.Tensor, heat: np.ndarray, *, steps: int = STEPS, blur: float = BLUR,
              road_seed: int = 0, with_road: bool = True) -> Scores:
    """Deletion, insertion and (`with_road`) ROAD of one (H, W) map over the normalised (1, C, H, W) input."""
    if heat.shape != tuple(x.shape[-2:]):
        raise ValueError(f"a {heat.shape} map over a {tuple(x.shape[-2:])} input")
    d, i = deletion_insertion(prob, x, heat, steps, blur)
    m, le = road(prob, x, heat, seed=road_seed) if with_road else (np.zeros(0), np.zeros(0))
    return Scores(d, i, m, le)
